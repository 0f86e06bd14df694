"""Districts: loading them (idempotent), the /api/v1/districts/ collection, and the map's district filter."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from maps.models import District
from maps.services import MSG_DISTRICTS_FILE_MISSING, MSG_DISTRICTS_NONE, districts_load
from maps.tiles import MSG_DAY, MSG_DISTRICT
from tests.conftest import NECKARAU, features_of, line, make_roadwork, period

pytestmark = pytest.mark.django_db

URL = "/api/v1/districts/"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete_pattern("*")  # only this run's prefix: a benchmark may share the Redis database


@pytest.fixture
def districts_file(settings) -> dict:
    with open(settings.AUMAN_DISTRICTS_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def write(tmp_path, data: dict):
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- Loading ---------------------------------------------------------------------------------------------------


def test_it_loads_every_district_of_the_file_with_name_number_and_area(districts_file):
    result = districts_load()
    assert (result.created, result.updated, result.unchanged, result.deleted) == (38, 0, 0, 0)
    assert District.objects.count() == len(districts_file["features"]) == 38
    innenstadt = District.objects.get(name="Innenstadt")
    assert innenstadt.number == "011"  # leading zero kept
    assert innenstadt.geometry.geom_type == "MultiPolygon" and innenstadt.geometry.srid == 25832
    stated = next(f for f in districts_file["features"] if f["properties"]["name"] == "Innenstadt")["properties"]
    assert innenstadt.geometry.area == pytest.approx(stated["fläche_ha"] * 10_000, rel=0.01)


def test_it_loads_again_without_changing_anything_or_the_ids():
    districts_load()
    before = dict(District.objects.values_list("name", "id"))
    stamps = dict(District.objects.values_list("name", "updated_at"))
    result = districts_load()
    assert (result.created, result.updated, result.unchanged, result.deleted) == (0, 0, 38, 0)
    assert dict(District.objects.values_list("name", "id")) == before
    assert dict(District.objects.values_list("name", "updated_at")) == stamps


def test_it_updates_changed_districts_and_removes_those_gone_from_the_file(tmp_path, districts_file):
    districts_load()
    neckarau_id = District.objects.get(name="Neckarau").id
    features = [f for f in districts_file["features"] if f["properties"]["name"] != "Jungbusch"]
    for feature in features:
        if feature["properties"]["name"] == "Neckarau":
            feature["properties"]["id"] = "999"
    result = districts_load(path=write(tmp_path, {**districts_file, "features": features}))
    assert (result.created, result.updated, result.unchanged, result.deleted) == (0, 1, 36, 1)
    assert not District.objects.filter(name="Jungbusch").exists()
    assert District.objects.get(name="Neckarau").number == "999"
    assert District.objects.get(name="Neckarau").id == neckarau_id


def test_it_merges_parts_of_one_district_listed_twice(tmp_path, districts_file):
    neckarau = next(f for f in districts_file["features"] if f["properties"]["name"] == "Neckarau")
    # Sandhofen lies at the other end of the city: the two parts stay two polygons of one district.
    sandhofen = next(f for f in districts_file["features"] if f["properties"]["name"] == "Sandhofen")
    renamed = {**sandhofen, "properties": {**sandhofen["properties"], "name": "Neckarau"}}
    districts_load(path=write(tmp_path, {"type": "FeatureCollection", "features": [neckarau, renamed]}))
    (district,) = District.objects.all()
    assert district.name == "Neckarau" and len(district.geometry) == 2


def test_it_refuses_a_missing_file_or_one_without_named_polygons(tmp_path):
    missing = tmp_path / "nope.geojson"
    with pytest.raises(ValidationError) as error:
        districts_load(path=missing)
    assert error.value.messages == [str(MSG_DISTRICTS_FILE_MISSING).format(path=missing)]
    empty = write(tmp_path, {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]})
    with pytest.raises(ValidationError) as error:
        districts_load(path=empty)
    assert error.value.messages == [str(MSG_DISTRICTS_NONE).format(path=empty, property="name")]
    assert District.objects.count() == 0


def test_the_command_loads_idempotently_and_reports_what_it_did(tmp_path):
    out = StringIO()
    call_command("load_districts", stdout=out)
    call_command("load_districts", stdout=out)
    assert out.getvalue().splitlines() == [
        "Districts: 38 new, 0 changed, 0 unchanged, 0 removed.",
        "Districts: 0 new, 0 changed, 38 unchanged, 0 removed.",
    ]
    with pytest.raises(CommandError):
        call_command("load_districts", file=str(tmp_path / "nope.geojson"))


# --- The collection ------------------------------------------------------------------------------------------------


def test_it_lists_the_districts_as_simplified_wgs84_geojson(districts_file):
    districts_load()
    response = Client().get(URL)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    features = features_of(response)
    assert [f["properties"]["name"] for f in features] == sorted(f["properties"]["name"] for f in features)
    by_name = {f["properties"]["name"]: f for f in features}
    innenstadt = by_name["Innenstadt"]
    assert innenstadt["id"] == innenstadt["properties"]["id"] == District.objects.get(name="Innenstadt").id
    assert innenstadt["properties"]["number"] == "011"
    assert innenstadt["geometry"]["type"] == "MultiPolygon"
    ring = innenstadt["geometry"]["coordinates"][0][0]
    assert all(8.3 < lon < 8.7 and 49.3 < lat < 49.7 for lon, lat in ring)
    original = next(f for f in districts_file["features"] if f["properties"]["name"] == "Innenstadt")
    assert len(ring) < len(original["geometry"]["coordinates"][0])


def test_it_answers_the_collection_with_304_until_a_district_changes(tmp_path, districts_file):
    districts_load()
    first = Client().get(URL)
    assert Client().get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    features = [f for f in districts_file["features"] if f["properties"]["name"] != "Jungbusch"]
    districts_load(path=write(tmp_path, {**districts_file, "features": features}))
    changed = Client().get(URL, HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200
    assert "Jungbusch" not in {f["properties"]["name"] for f in features_of(changed)}


def test_it_answers_an_empty_collection_before_districts_are_loaded():
    assert features_of(Client().get(URL)) == []


# --- The map data endpoint's filters ------------------------------------------------------------------------------


def test_the_map_data_can_be_narrowed_to_a_district(stadtwerke):
    districts_load()
    running = period(timezone.now() - timedelta(days=1), 10)
    kaiserring = make_roadwork(stadtwerke, period=running)
    neckarau = make_roadwork(stadtwerke, period=running, geometry=line(NECKARAU))
    district = District.objects.get(name="Neckarau")
    everything = Client().get("/map/features.geojson", {"layers": "roadworks"})
    assert {f["properties"]["id"] for f in features_of(everything)} == {str(kaiserring.id), str(neckarau.id)}
    narrowed = Client().get("/map/features.geojson", {"layers": "roadworks", "district": district.id})
    assert {f["properties"]["id"] for f in features_of(narrowed)} == {str(neckarau.id)}


def test_the_map_data_can_show_a_chosen_day(stadtwerke):
    later = timezone.localtime() + timedelta(days=30)
    work = make_roadwork(stadtwerke, period=period(later, 2))
    day = later.date().isoformat()
    assert {f["properties"]["id"] for f in features_of(Client().get("/map/features.geojson", {"on": day}))} == {
        str(work.id)
    }
    before = (later - timedelta(days=5)).date().isoformat()
    assert features_of(Client().get("/map/features.geojson", {"layers": "roadworks", "on": before})) == []


def test_the_map_data_refuses_an_unknown_district_or_a_bad_day():
    response = Client().get("/map/features.geojson", {"district": "4711"})
    assert response.status_code == 400
    assert response.json() == {"district": [str(MSG_DISTRICT)]}
    response = Client().get("/map/features.geojson", {"on": "morgen"})
    assert response.status_code == 400
    assert response.json() == {"on": [str(MSG_DAY).format(first="2000-01-01", last="2100-12-31")]}


# --- Admin -----------------------------------------------------------------------------------------------------


def test_the_admin_lists_and_shows_districts_but_leaves_changes_to_the_file():
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    call_command("load_districts", stdout=StringIO())
    root = get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-1")
    web = Client()
    web.force_login(root)
    district = District.objects.get(name="Neckarau")

    listing = web.get(reverse("admin:maps_district_changelist"), {"q": "Neckarau"})
    assert listing.status_code == 200 and "Neckarau" in listing.content.decode()
    shown = web.get(reverse("admin:maps_district_change", args=[district.pk]))
    assert shown.status_code == 200 and 'name="_save"' not in shown.content.decode()
    assert web.get(reverse("admin:maps_district_add")).status_code == 403
    refused = web.post(reverse("admin:maps_district_change", args=[district.pk]), {"name": "Umbenannt"})
    assert refused.status_code == 403
    assert District.objects.get(pk=district.pk).name == "Neckarau"
