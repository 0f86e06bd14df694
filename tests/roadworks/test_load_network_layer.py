"""python manage.py load_network_layer KIND FILE [--replace] [--strict]: checked features in, rejects reported,
rule C7 re-run."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from auman.geo import MSG_GEOMETRY_OUTSIDE, MSG_GEOMETRY_TYPE
from roadworks.models import NETWORK_GEOMETRY_TYPES, Conflict, NetworkFeature, NetworkKind, TrafficManagement
from roadworks.network_layers import MSG_DUPLICATE_ID, MSG_FEATURE, MSG_NO_NAME, MSG_NOT_A_FEATURE, MSG_STRICT
from tests.conftest import KAISERRING, NECKARAU, line, make_roadwork

pytestmark = pytest.mark.django_db


def line_feature(coords, **properties) -> dict:
    feature_id = properties.pop("id", None)
    body = {"type": "Feature", "properties": properties, "geometry": {"type": "LineString", "coordinates": coords}}
    if feature_id is not None:
        body["id"] = feature_id
    return body


def write(tmp_path: Path, features: list, name: str = "layer.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def load(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("load_network_layer", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


TRAM = [list(c) for c in KAISERRING]


def feature_label(number: int) -> str:
    return str(MSG_FEATURE).format(number=number)


POINT_OUTSIDE = {"type": "Point", "coordinates": [8.70, 49.41]}


def test_it_loads_valid_features_and_reports_the_rejects(tmp_path):
    path = write(
        tmp_path,
        [
            line_feature(TRAM, id="t1", name="Linie 1", ref="1"),
            line_feature(TRAM, name=""),  # no name
            {"type": "Feature", "properties": {"name": "Punkt"}, "geometry": {"type": "Point", "coordinates": TRAM[0]}},
            line_feature([[8.70, 49.40], [8.71, 49.41]], name="Heidelberg"),  # outside the service area
            line_feature(TRAM, id="t1", name="Linie 1 doppelt"),
            "kein Feature",
        ],
    )
    out, err = load("tram_line", str(path))

    assert "tram_line: 1 created, 0 updated, 0 removed, 5 rejected." in out
    types = ", ".join(NETWORK_GEOMETRY_TYPES[NetworkKind.TRAM_LINE])
    for label, message in (
        (feature_label(2), MSG_NO_NAME),
        (feature_label(3), str(MSG_GEOMETRY_TYPE).format(given="Point", allowed=types)),
        (feature_label(4), str(MSG_GEOMETRY_OUTSIDE).format(city=settings.AUMAN_CITY_NAME)),
        (feature_label(5) + " (id t1)", MSG_DUPLICATE_ID),
        (feature_label(6), MSG_NOT_A_FEATURE),
    ):
        assert f"rejected {label}: {message}" in err, err
    tram = NetworkFeature.objects.get()
    assert (tram.kind, tram.name, tram.ref, tram.source_id, tram.geometry.srid) == (
        "tram_line",
        "Linie 1",
        "1",
        "t1",
        25832,
    )


def test_loading_again_updates_features_by_their_id(tmp_path):
    load("tram_line", str(write(tmp_path, [line_feature(TRAM, id="t1", name="Linie 1")])))
    out, _err = load("tram_line", str(write(tmp_path, [line_feature(TRAM, id="t1", name="Linie 1 (neu)")])))
    assert "0 created, 1 updated" in out
    assert list(NetworkFeature.objects.values_list("name", flat=True)) == ["Linie 1 (neu)"]


def test_replace_makes_the_file_the_layer_of_its_kind_only(tmp_path):
    load(
        "tram_line", str(write(tmp_path, [line_feature(TRAM, id="t1", name="Alt"), line_feature(TRAM, name="Ohne Id")]))
    )
    load("bus_line", str(write(tmp_path, [line_feature(TRAM, id="b1", name="Bus 60")])))
    out, _err = load("tram_line", str(write(tmp_path, [line_feature(TRAM, id="t2", name="Neu")])), "--replace")

    assert "1 created, 0 updated, 2 removed" in out
    assert sorted(NetworkFeature.objects.values_list("kind", "name")) == [("bus_line", "Bus 60"), ("tram_line", "Neu")]


def test_stops_take_points(tmp_path):
    stop = {
        "type": "Feature",
        "properties": {"name": "Wasserturm"},
        "geometry": {"type": "Point", "coordinates": TRAM[0]},
    }
    out, _err = load("stop", str(write(tmp_path, [stop])))
    assert "1 created" in out and NetworkFeature.objects.get().kind == NetworkKind.STOP


def test_strict_loads_nothing_when_a_feature_is_rejected(tmp_path):
    path = write(tmp_path, [line_feature(TRAM, id="t1", name="Linie 1"), line_feature(TRAM, name="")])
    with pytest.raises(CommandError, match=re.escape(str(MSG_STRICT).format(count=1))):
        load("tram_line", str(path), "--strict")
    assert not NetworkFeature.objects.exists()


@pytest.mark.parametrize("content", ["{kaputt", json.dumps({"type": "Point", "coordinates": [8.47, 49.48]})])
def test_an_unreadable_file_loads_nothing(tmp_path, content):
    path = tmp_path / "bad.geojson"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError):
        load("tram_line", str(path))
    assert not NetworkFeature.objects.exists()


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(CommandError, match="invalid choice: 'ferry'"):
        load("ferry", str(write(tmp_path, [])))


def test_loading_re_runs_rule_c7(tmp_path, stadtwerke):
    make_roadwork(stadtwerke, reference="ON-TRACK", traffic_management=TrafficManagement.FULL_CLOSURE)
    make_roadwork(stadtwerke, reference="ELSEWHERE", geometry=line(NECKARAU))
    out, _err = load("tram_line", str(write(tmp_path, [line_feature(TRAM, id="t1", name="Linie 1")])))

    assert "C7: 1 conflicts hold; 1 new or changed, 0 resolved." in out
    conflict = Conflict.objects.get(rule="C7")
    assert (conflict.roadwork_a.reference, conflict.layer, conflict.severity) == (
        "ON-TRACK",
        "public_transport",
        "error",
    )
    # Replaced by a file without that line: the conflict is resolved.
    out, _err = load("tram_line", str(write(tmp_path, [])), "--replace")
    assert "C7: 0 conflicts hold; 0 new or changed, 1 resolved." in out
