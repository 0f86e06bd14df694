"""Rules between a roadwork and a layer the authority records: C4 corridors, C5 moratoria, C6 events, C7 public
transport and emergency routes. Each fires on one side of its thresholds and not on the other."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.contrib.gis.geos import LineString, MultiLineString, MultiPolygon, Point, Polygon
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.test import override_settings

from roadworks import services
from roadworks.models import (
    Conflict,
    ConflictLayer,
    ConflictStatus,
    Corridor,
    Event,
    MoratoriumArea,
    NetworkFeature,
    NetworkKind,
    Roadwork,
    Severity,
    TrafficManagement,
)
from tests.conftest import KAISERRING, line, local, make_roadwork, period
from tests.roadworks.rule_helpers import detect, hits, rule_parameters, sweep

pytestmark = pytest.mark.django_db

X0, Y0 = line(KAISERRING).coords[0]
START = local(2027, 3, 1, 7)


def segment(*, dx: float = 0, dy: float = 0, length: float = 100) -> LineString:
    return LineString([(X0 + dx, Y0 + dy), (X0 + dx + length, Y0 + dy)], srid=25832)


def square(*, dx: float = 0, dy: float = 0, size: float = 200) -> MultiPolygon:
    x, y = X0 + dx, Y0 + dy
    return MultiPolygon(Polygon.from_bbox((x, y, x + size, y + size)), srid=25832)


def work(organisation, reference: str, *, days_from: int = 0, days: int = 10, **extra):
    values = {"geometry": segment(), "period": period(START + timedelta(days=days_from), days), **extra}
    return make_roadwork(organisation, reference=reference, **values)


# --- C4 corridors ----------------------------------------------------------------------------------------------


@pytest.fixture
def corridor(db) -> Corridor:
    return Corridor.objects.create(
        name="Rheinquerung", geometry=MultiLineString(segment(dx=-500, length=2000)), max_simultaneous=1
    )


def test_c4_warns_when_more_works_restrict_a_corridor_at_once_than_it_allows(stadtwerke, telekom, corridor):
    first = work(stadtwerke, "A", days=10)
    second = work(telekom, "B", days_from=5, days=10, geometry=segment(dx=600))

    assert detect("C4", second)["found"] == 2
    assert hits("C4") == {
        ("A", ConflictLayer.CORRIDOR, str(corridor.pk)),
        ("B", ConflictLayer.CORRIDOR, str(corridor.pk)),
    }
    conflict = Conflict.objects.get(rule="C4", roadwork_a=first)
    assert conflict.severity == Severity.WARNING
    # Crowded while both run: from the second's start to the first's end.
    assert (conflict.overlap_period.lower, conflict.overlap_period.upper) == (second.period.lower, first.period.upper)
    assert sweep("C4") == {"found": 2, "changed": 0, "resolved": 0}


def test_c4_allows_as_many_works_as_the_corridor_allows(stadtwerke, telekom, corridor):
    work(stadtwerke, "A")
    assert sweep("C4")["found"] == 0
    work(telekom, "B", days_from=10)  # starts when A ends
    assert sweep("C4")["found"] == 0
    corridor.max_simultaneous = 2
    corridor.save()
    work(telekom, "C", days_from=5, geometry=segment(dx=800))
    assert sweep("C4")["found"] == 0


def test_c4_counts_works_at_the_same_instant_not_all_that_overlap_a_period(stadtwerke, telekom, corridor):
    # B overlaps A and C, but A and C never run at once: at most two works restrict the corridor at any time.
    corridor.max_simultaneous = 2
    corridor.save()
    work(stadtwerke, "A", days=10)
    work(telekom, "B", days_from=5, days=10, geometry=segment(dx=300))
    work(stadtwerke, "C", days_from=10, days=10, geometry=segment(dx=600))
    assert sweep("C4")["found"] == 0

    # A fourth work running with A and B makes three at once: those three are over the limit, C is not.
    work(telekom, "D", days_from=6, days=2, geometry=segment(dx=900))
    sweep("C4")
    assert {ref for ref, _layer, _item in hits("C4")} == {"A", "B", "D"}


def test_c4_counts_only_closures_and_restrictions_by_default(stadtwerke, telekom, corridor):
    work(stadtwerke, "A")
    second = work(telekom, "B", traffic_management=TrafficManagement.FOOTWAY_CLOSURE, geometry=segment(dx=300))
    assert detect("C4", second)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C4={"impacts": ["closure", "restriction", "minor"]})):
        assert detect("C4", second)["found"] == 2


def test_c4_ignores_works_beside_the_corridor(stadtwerke, telekom, corridor):
    work(stadtwerke, "A")
    second = work(telekom, "B", geometry=segment(dx=300, dy=30))  # a parallel street
    assert detect("C4", second)["found"] == 0


def test_c4_rechecks_the_other_works_on_the_corridor_when_one_moves_away(stadtwerke, telekom, corridor):
    work(stadtwerke, "A")
    second = work(telekom, "B", geometry=segment(dx=300))
    detect("C4", second)
    second.geometry = segment(dx=300, dy=500)
    second.save()

    assert detect("C4", second) == {"found": 0, "changed": 0, "resolved": 2}
    assert set(Conflict.objects.filter(rule="C4").values_list("status", flat=True)) == {ConflictStatus.RESOLVED}


def test_c4_rechecks_the_works_a_move_in_time_concerns_and_leaves_the_others_alone(stadtwerke, telekom, corridor):
    work(stadtwerke, "A", days=10)
    second = work(telekom, "B", days_from=5, days=10, geometry=segment(dx=300))
    work(stadtwerke, "C", days_from=100, geometry=segment(dx=600))
    work(telekom, "D", days_from=105, geometry=segment(dx=900))
    sweep("C4")
    assert {ref for ref, _layer, _item in hits("C4")} == {"A", "B", "C", "D"}

    # B moves three weeks later: A is alone again; C and D, months away, are not B's business.
    Roadwork.objects.filter(pk=second.pk).update(period=period(START + timedelta(days=20), 10))
    assert detect("C4", second) == {"found": 0, "changed": 0, "resolved": 2}
    assert {ref for ref, _layer, _item in hits("C4")} == {"C", "D"}
    assert sweep("C4") == {"found": 2, "changed": 0, "resolved": 0}


def test_c4_ignores_an_inactive_corridor_and_resolves_its_conflicts(stadtwerke, telekom, corridor):
    work(stadtwerke, "A")
    work(telekom, "B", geometry=segment(dx=300))
    sweep("C4")
    corridor.active = False
    corridor.save()
    assert sweep("C4") == {"found": 0, "changed": 0, "resolved": 2}


# --- C5 moratorium ---------------------------------------------------------------------------------------------


@pytest.fixture
def moratorium(db) -> MoratoriumArea:
    # Resurfaced on 1 January 2025 for five years: no digging until 1 January 2030.
    return MoratoriumArea.objects.create(
        name="Kaiserring", geometry=square(dx=-50, dy=-50), resurfaced_on=date(2025, 1, 1), years=5
    )


def test_c5_finds_excavation_in_a_moratorium_area(stadtwerke, moratorium):
    dig = work(stadtwerke, "DIG", excavation=True)
    assert detect("C5", dig)["found"] == 1
    assert sweep("C5") == {"found": 1, "changed": 0, "resolved": 0}
    conflict = Conflict.objects.get(rule="C5")
    assert conflict.severity == Severity.ERROR
    assert (conflict.layer, conflict.layer_object_id) == (ConflictLayer.MORATORIUM, str(moratorium.pk))
    assert conflict.overlap_period.lower == dig.period.lower


def test_c5_ignores_works_that_do_not_dig(stadtwerke, moratorium):
    assert detect("C5", work(stadtwerke, "MARKINGS"))["found"] == 0


def test_c5_ends_with_the_moratorium(stadtwerke, moratorium):
    before_end = make_roadwork(
        stadtwerke,
        reference="LATE",
        geometry=segment(),
        excavation=True,
        period=DateTimeTZRange(local(2029, 12, 20), local(2030, 1, 5), "[)"),
    )
    after_end = make_roadwork(
        stadtwerke, reference="AFTER", geometry=segment(), excavation=True, period=period(local(2030, 1, 1), 5)
    )
    assert detect("C5", before_end)["found"] == 1
    # The moratorium ends at local midnight on 1 January 2030.
    assert Conflict.objects.get(rule="C5").overlap_period.upper == local(2030, 1, 1)
    assert detect("C5", after_end)["found"] == 0


def test_c5_exempts_emergency_works(stadtwerke, moratorium):
    burst = work(stadtwerke, "BURST", excavation=True, is_emergency=True)
    assert detect("C5", burst)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C5={"exempt_emergency": False})):
        assert detect("C5", burst)["found"] == 1


def test_c5_counts_only_works_touching_the_area_unless_given_a_buffer(stadtwerke, moratorium):
    beside = work(stadtwerke, "BESIDE", excavation=True, geometry=segment(dy=-55))  # 5 m south of the area
    assert detect("C5", beside)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C5={"buffer_m": 10})):
        assert detect("C5", beside)["found"] == 1


def test_a_moratorium_lasts_the_configured_years_by_default(bob, settings):
    settings.AUMAN_MORATORIUM_YEARS = 7
    area = services.moratorium_create(
        user=bob, data={"name": "Neu", "geometry": square(), "resurfaced_on": date(2026, 6, 1)}
    )
    assert area.years == 7 and area.ends_on == date(2033, 6, 1)


# --- C6 events -------------------------------------------------------------------------------------------------


@pytest.fixture
def event(db) -> Event:
    # Saturday 6 March 2027, 10:00 to 22:00, on a square north of the works.
    return Event.objects.create(
        name="Stadtfest",
        area=square(dy=50),
        period=DateTimeTZRange(local(2027, 3, 6, 10), local(2027, 3, 6, 22), "[)"),
        expected_visitors=20000,
    )


def test_c6_warns_of_works_near_an_event_while_it_runs(stadtwerke, event):
    near = work(stadtwerke, "NEAR")  # 50 m south of the area
    assert detect("C6", near)["found"] == 1
    assert sweep("C6") == {"found": 1, "changed": 0, "resolved": 0}
    conflict = Conflict.objects.get(rule="C6")
    assert conflict.severity == Severity.WARNING
    assert conflict.overlap_period == event.period


def test_c6_ignores_works_further_away(stadtwerke, event):
    far = work(stadtwerke, "FAR", geometry=segment(dy=-60))  # 110 m from the area
    assert detect("C6", far)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C6={"distance_m": 150})):
        assert detect("C6", far)["found"] == 1


def test_c6_ignores_works_before_or_after_the_event(stadtwerke, event):
    assert detect("C6", work(stadtwerke, "AFTER", days_from=6))["found"] == 0


def test_c6_ignores_night_works_during_a_daytime_event(stadtwerke, event):
    night = work(stadtwerke, "NIGHT", daily_start=time(22), daily_end=time(6))
    assert detect("C6", night)["found"] == 0
    night.daily_start = time(21)
    night.save()
    assert detect("C6", night)["found"] == 1


# --- C7 public transport and emergency routes ------------------------------------------------------------------


def feature(kind: str, geometry, name: str = "Linie 1") -> NetworkFeature:
    return NetworkFeature.objects.create(kind=kind, name=name, geometry=geometry)


def test_c7_warns_of_works_on_a_tram_line_and_errs_on_a_closure(stadtwerke):
    tram = feature(NetworkKind.TRAM_LINE, segment(dx=-200, dy=5, length=600))
    lane = work(stadtwerke, "LANE")

    assert detect("C7", lane)["found"] == 1
    assert sweep("C7") == {"found": 1, "changed": 0, "resolved": 0}  # the sweep cuts lines up: the same result
    conflict = Conflict.objects.get(rule="C7")
    assert (conflict.layer, conflict.layer_object_id, conflict.severity) == (
        ConflictLayer.PUBLIC_TRANSPORT,
        str(tram.pk),
        Severity.WARNING,
    )
    # The same works closing the road cut the line: the same conflict becomes an error.
    lane.traffic_management = TrafficManagement.FULL_CLOSURE
    lane.save()
    assert detect("C7", lane) == {"found": 1, "changed": 1, "resolved": 0}
    assert Conflict.objects.get(rule="C7").severity == Severity.ERROR


def test_c7_names_emergency_routes_as_their_own_layer(stadtwerke):
    feature(NetworkKind.EMERGENCY_ROUTE, segment(dx=-200, length=600), name="Feuerwehrzufahrt")
    assert detect("C7", work(stadtwerke, "A"))["found"] == 1
    assert Conflict.objects.get(rule="C7").layer == ConflictLayer.EMERGENCY_ROUTE


def test_c7_ignores_lines_beyond_the_buffer(stadtwerke):
    feature(NetworkKind.BUS_LINE, segment(dx=-200, dy=15, length=600))
    a = work(stadtwerke, "A")
    assert detect("C7", a)["found"] == 0


def test_c7_reaches_further_around_stops(stadtwerke):
    feature(NetworkKind.STOP, Point(X0 + 50, Y0 + 20, srid=25832), name="Wasserturm")
    a = work(stadtwerke, "A")
    assert detect("C7", a)["found"] == 1  # 20 m: within the 25 m around a stop
    assert sweep("C7") == {"found": 1, "changed": 0, "resolved": 0}
    a.geometry = segment(dy=-10)
    a.save()
    assert detect("C7", a) == {"found": 0, "changed": 0, "resolved": 1}


def test_c7_checks_only_the_configured_kinds(stadtwerke):
    feature(NetworkKind.BUS_LINE, segment(dx=-200, length=600))
    a = work(stadtwerke, "A")
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C7={"kinds": ["tram_line"]})):
        assert detect("C7", a)["found"] == 0
    assert detect("C7", a)["found"] == 1
