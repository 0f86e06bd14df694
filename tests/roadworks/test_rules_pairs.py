"""Rules between two roadworks besides C1: C2 same street nearby, C3 detour through works, C10 share the trench.

Each rule fires on one side of its thresholds and not on the other."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.contrib.gis.geos import LineString
from django.test import override_settings

from roadworks.models import Conflict, ConflictStatus, Detour, RoadworkStatus, Severity
from tests.conftest import KAISERRING, line, local, make_roadwork, period
from tests.roadworks.rule_helpers import detect, pairs, rule_parameters, sweep

pytestmark = pytest.mark.django_db

X0, Y0 = line(KAISERRING).coords[0]
START = local(2027, 3, 1, 7)


def segment(*, dx: float = 0, dy: float = 0, length: float = 100) -> LineString:
    """A straight line `length` metres long, east from a point dx/dy metres from the origin on Kaiserring."""
    return LineString([(X0 + dx, Y0 + dy), (X0 + dx + length, Y0 + dy)], srid=25832)


def work(organisation, reference: str, *, dy: float = 0, days_from: int = 0, days: int = 10, **extra):
    values = {"geometry": segment(dy=dy), "period": period(START + timedelta(days=days_from), days), **extra}
    return make_roadwork(organisation, reference=reference, **values)


# --- C2 same street nearby -------------------------------------------------------------------------------------


def test_c2_finds_works_on_the_same_street_within_the_distance(stadtwerke, telekom):
    work(stadtwerke, "A")
    b = work(telekom, "B", dy=200)

    assert detect("C2", b)["found"] == 1
    conflict = Conflict.objects.get(rule="C2")
    assert conflict.severity == Severity.WARNING
    assert conflict.place.geom_type == "MultiPolygon" and conflict.place.area > 0
    assert sweep("C2") == {"found": 1, "changed": 0, "resolved": 0}


def test_c2_ignores_works_beyond_the_distance(stadtwerke, telekom):
    work(stadtwerke, "A")
    b = work(telekom, "B", dy=320)
    assert detect("C2", b)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C2={"distance_m": 400})):
        assert detect("C2", b)["found"] == 1


def test_c2_needs_a_street_name_in_common(stadtwerke, telekom):
    work(stadtwerke, "A", street_names=["Kaiserring"])
    b = work(telekom, "B", dy=200, street_names=["Friedrichsring"])
    assert detect("C2", b)["found"] == 0


@pytest.mark.parametrize("name", ["MOEHLSTRASSE", "Möhlstr.", "moehl strasse", "Möhlstraße"])
def test_c2_compares_street_names_without_case_umlauts_or_abbreviations(stadtwerke, telekom, name):
    work(stadtwerke, "A", street_names=["Möhlstraße"])
    b = work(telekom, "B", dy=200, street_names=["Seckenheimer Straße", name])
    assert detect("C2", b)["found"] == 1


def test_c2_leaves_a_pair_at_the_same_place_to_c1(stadtwerke, telekom):
    work(stadtwerke, "A")
    b = work(telekom, "B", dy=5)
    assert detect("C1", b)["found"] == 1
    assert detect("C2", b)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C2={"skip_when_c1": False})):
        assert detect("C2", b)["found"] == 1
    # Without C1, nothing would report the pair: C2 does.
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"enabled": False})):
        assert detect("C2", b)["found"] == 1


def test_c2_needs_the_works_at_the_same_time(stadtwerke, telekom):
    work(stadtwerke, "A", days=10)
    b = work(telekom, "B", dy=200, days_from=10)
    assert detect("C2", b)["found"] == 0


def test_c2_follows_daily_windows(stadtwerke, telekom):
    work(stadtwerke, "A", daily_start=time(20), daily_end=time(5))
    b = work(telekom, "B", dy=200, daily_start=time(7), daily_end=time(16))
    assert detect("C2", b)["found"] == 0


def test_c2_ignores_works_that_take_no_road_space(stadtwerke, telekom):
    work(stadtwerke, "A", status=RoadworkStatus.DRAFT)
    b = work(telekom, "B", dy=200)
    assert detect("C2", b)["found"] == 0


# --- C3 detour through works -----------------------------------------------------------------------------------


def with_detour(roadwork, geometry: LineString, *, days: int | None = None) -> Detour:
    detour_period = None
    if days is not None:
        detour_period = period(roadwork.period.lower, days)
    return Detour.objects.create(roadwork=roadwork, name="Umleitung", geometry=geometry, period=detour_period)


def test_c3_finds_a_detour_through_another_works_area(stadtwerke, telekom):
    closed = work(stadtwerke, "CLOSED", dy=500)
    other = work(telekom, "OTHER", days_from=3)
    # The detour of the closed street runs north-south right through the other works.
    with_detour(closed, LineString([(X0 + 50, Y0 + 500), (X0 + 50, Y0 - 50)], srid=25832))

    assert detect("C3", closed)["found"] == 1
    conflict = Conflict.objects.get(rule="C3")
    assert conflict.severity == Severity.ERROR
    assert (conflict.overlap_period.lower, conflict.overlap_period.upper) == (other.period.lower, closed.period.upper)
    # The other side's run finds the same conflict; the sweep agrees and changes nothing.
    assert detect("C3", other) == {"found": 1, "changed": 0, "resolved": 0}
    assert sweep("C3") == {"found": 1, "changed": 0, "resolved": 0}
    assert pairs("C3") == {frozenset({"CLOSED", "OTHER"})}


def test_c3_ignores_a_detour_beyond_the_buffer(stadtwerke, telekom):
    closed = work(stadtwerke, "CLOSED", dy=500)
    work(telekom, "OTHER")
    with_detour(closed, LineString([(X0 + 120, Y0 + 500), (X0 + 120, Y0 - 50)], srid=25832))  # 20 m past its end
    assert detect("C3", closed)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C3={"buffer_m": 25})):
        assert detect("C3", closed)["found"] == 1


def test_c3_uses_the_detours_own_period(stadtwerke, telekom):
    closed = work(stadtwerke, "CLOSED", dy=500, days=10)
    work(telekom, "OTHER", days_from=5)
    detour = with_detour(closed, LineString([(X0 + 50, Y0 + 500), (X0 + 50, Y0 - 50)], srid=25832), days=4)
    assert detect("C3", closed)["found"] == 0  # signposted for the first four days, before the other works

    detour.period = None  # the whole period
    detour.save()
    assert detect("C3", closed)["found"] == 1


def test_c3_resolves_when_the_detour_is_gone(stadtwerke, telekom):
    closed = work(stadtwerke, "CLOSED", dy=500)
    other = work(telekom, "OTHER")
    with_detour(closed, LineString([(X0 + 50, Y0 + 500), (X0 + 50, Y0 - 50)], srid=25832))
    detect("C3", closed)
    closed.detours.all().delete()

    assert detect("C3", other) == {"found": 0, "changed": 0, "resolved": 1}
    assert Conflict.objects.get(rule="C3").status == ConflictStatus.RESOLVED


# --- C10 share the trench --------------------------------------------------------------------------------------


def excavation(organisation, reference: str, *, dy: float = 0, days_from: int = 0, **extra):
    return work(organisation, reference, dy=dy, days_from=days_from, excavation=True, **extra)


def test_c10_finds_two_excavations_on_one_street_within_months(stadtwerke, telekom):
    first = excavation(stadtwerke, "GAS")
    second = excavation(telekom, "FIBRE", dy=200, days_from=130)  # about four months after the first ends

    assert detect("C10", second)["found"] == 1
    conflict = Conflict.objects.get(rule="C10")
    assert conflict.severity == Severity.INFO
    # The conflict spans both works: there is no common time, there is a common trench.
    assert conflict.overlap_period.lower == first.period.lower
    assert conflict.overlap_period.upper == second.period.upper
    assert sweep("C10") == {"found": 1, "changed": 0, "resolved": 0}


def test_c10_ignores_excavations_further_apart_in_time(stadtwerke, telekom):
    excavation(stadtwerke, "GAS")
    second = excavation(telekom, "FIBRE", dy=200, days_from=250)  # eight months later
    assert detect("C10", second)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C10={"months": 12})):
        assert detect("C10", second)["found"] == 1


def test_c10_needs_different_organisations(stadtwerke):
    excavation(stadtwerke, "GAS")
    second = excavation(stadtwerke, "WATER", dy=200, days_from=30)
    assert detect("C10", second)["found"] == 0


def test_c10_needs_both_to_dig(stadtwerke, telekom):
    excavation(stadtwerke, "GAS")
    second = work(telekom, "MARKINGS", dy=200, days_from=30)
    assert detect("C10", second)["found"] == 0


def test_c10_takes_works_close_by_as_one_street_whatever_their_names(stadtwerke, telekom):
    excavation(stadtwerke, "GAS", street_names=["Kaiserring"])
    near = excavation(telekom, "NEAR", dy=40, days_from=30, street_names=["Friedrichsring"])
    far = excavation(telekom, "FAR", dy=-80, days_from=30, street_names=["Augustaanlage"])
    assert detect("C10", near)["found"] == 1
    assert detect("C10", far)["found"] == 0


def test_c10_ignores_a_street_in_common_beyond_the_street_distance(stadtwerke, telekom):
    excavation(stadtwerke, "GAS")
    second = excavation(telekom, "FIBRE", dy=350, days_from=30)
    assert detect("C10", second)["found"] == 0
