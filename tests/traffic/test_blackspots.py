"""Black spots (Unfallhäufungsstellen): the M Uko rules at their thresholds, stable keys, conflict C8, the commission's
page, its CSV export and the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.gis.geos import LineString, Point
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from auman.filters import parse_bbox
from roadworks.models import Conflict, ConflictStatus, RoadworkStatus
from tests.conftest import local, make_roadwork, period
from traffic import blackspot_views, tasks
from traffic.blackspot_selectors import black_spots_geojson, black_spots_list
from traffic.blackspots import (
    BLACK_SPOT_CONFLICT_RULE,
    blackspot_rules,
    blackspots_compute,
    conflicts_detect_black_spots_for,
)
from traffic.models import Accident, AccidentSource, BlackSpot

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, tzinfo=timezone.get_default_timezone())
# A junction on Mannheim's Kaiserring, in the storage SRID (EPSG:25832, metres).
JUNCTION = Point(8.4750, 49.4846, srid=4326).transform(25832, clone=True)
ELSEWHERE = Point(8.4870, 49.4525, srid=4326).transform(25832, clone=True)  # Neckarau, about 4 km south


def accident(
    *,
    east: float = 0,
    north: float = 0,
    days_ago: float = 30,
    category: int = 3,
    type: int = 2,
    origin: Point = JUNCTION,
    base: datetime = NOW,
    n: list[int] = [0],  # noqa: B006 - a counter shared by all calls, for unique keys
    **extra,
) -> Accident:
    n[0] += 1
    values = {
        "location": Point(origin.x + east, origin.y + north, srid=25832),
        "occurred_at": base - timedelta(days=days_ago),
        "category": category,
        "kind": 5,
        "type": type,
        "source": AccidentSource.UNFALLATLAS,
        "source_key": f"test:{n[0]}",
        **extra,
    }
    return Accident.objects.create(**values)


def spots(rule: str | None = None) -> list[BlackSpot]:
    qs = BlackSpot.objects.order_by("key")
    return list(qs.filter(rule=rule) if rule else qs)


def cluster(count: int, **kwargs) -> list[Accident]:
    """`count` accidents around one spot, a few metres apart (within any radius the rules use)."""
    return [accident(east=3 * (i % 3), north=3 * (i // 3), **kwargs) for i in range(count)]


# --- Rule UHS-1J: 5 accidents of the same type within a year ------------------------------------------------


def test_five_accidents_of_one_type_in_a_year_make_a_black_spot():
    members = cluster(5, type=2, category=5)

    result = blackspots_compute(now=NOW)

    assert result["rules"]["UHS-1J"] == 1
    [spot] = spots("UHS-1J")
    assert spot.accident_type == 2
    assert spot.accident_count == 5
    assert {a.pk for a in spot.accidents.all()} == {a.pk for a in members}
    assert spot.period.lower == NOW - timedelta(days=365) and spot.period.upper == NOW
    assert spot.statistics["by_type"]["2"] == 5
    assert spot.statistics["by_category"]["5"] == 5
    assert spot.area.contains(spot.location)
    assert all(spot.area.contains(a.location) for a in members)
    assert spot.location.distance(JUNCTION) < 5


def test_four_accidents_of_one_type_are_no_black_spot():
    cluster(4, type=2, category=5)
    blackspots_compute(now=NOW)
    assert spots() == []


def test_five_accidents_of_different_types_are_no_one_year_black_spot():
    cluster(4, type=2, category=5)
    accident(east=1, type=3, category=5)
    blackspots_compute(now=NOW)
    assert spots("UHS-1J") == []


def test_an_accident_outside_the_radius_does_not_count():
    cluster(4, type=2, category=5)
    accident(east=200, type=2, category=5)
    blackspots_compute(now=NOW)
    assert spots() == []


def test_an_accident_older_than_the_window_does_not_count():
    cluster(4, type=2, category=5)
    accident(days_ago=370, type=2, category=5)
    blackspots_compute(now=NOW)
    assert spots() == []


def test_the_radius_is_a_setting():
    cluster(4, type=2, category=5)
    accident(east=60, type=2, category=5)
    rules = [{"code": "UHS-1J", "years": 1, "radius_m": 100, "min_accidents": 5, "same_type": True}]
    with override_settings(AUMAN_BLACKSPOT_RULES=rules):
        blackspots_compute(now=NOW)
    assert [spot.accident_count for spot in spots()] == [5]


def test_two_types_at_one_junction_make_two_one_year_black_spots():
    cluster(5, type=2, category=5)
    cluster(5, type=3, category=5)
    blackspots_compute(now=NOW)
    assert sorted(spot.accident_type for spot in spots("UHS-1J")) == [2, 3]


# --- Rule UHS-3J-SP: 3 accidents with people killed or seriously injured within 3 years ----------------------


def test_three_serious_accidents_in_three_years_make_a_black_spot():
    accident(category=1, type=1, days_ago=100)
    accident(category=2, type=4, days_ago=500, east=5)
    accident(category=2, type=6, days_ago=1000, north=5)

    blackspots_compute(now=NOW)

    [spot] = spots("UHS-3J-SP")
    assert spot.accident_count == 3
    assert spot.accident_type is None
    assert spot.statistics["by_category"] == {"1": 1, "2": 2, "3": 0, "4": 0, "5": 0, "6": 0}
    assert spot.statistics["by_type"]["4"] == 1


def test_two_serious_accidents_are_no_black_spot():
    accident(category=1, type=1)
    accident(category=2, type=4, east=5)
    accident(category=3, type=6, north=5)  # slightly injured: does not count for this rule
    blackspots_compute(now=NOW)
    assert spots("UHS-3J-SP") == []


def test_a_serious_accident_more_than_three_years_ago_does_not_count():
    accident(category=1, days_ago=100)
    accident(category=2, days_ago=500, east=5)
    accident(category=2, days_ago=3 * 365 + 10, north=5)
    blackspots_compute(now=NOW)
    assert spots("UHS-3J-SP") == []


# --- Rule UHS-3J-SCORE: 2 x slightly injured + 5 x killed or seriously injured >= 15 --------------------------


def _mixed(serious: int, slight: int) -> None:
    # Two years ago and of different types, so that only the score rule can fire.
    for i in range(serious):
        accident(category=2, type=1 + i % 7, days_ago=700, east=2 * i)
    for i in range(slight):
        accident(category=3, type=1 + (i + serious) % 7, days_ago=700, north=2 * i + 1)


def test_a_score_of_15_makes_a_black_spot():
    _mixed(serious=1, slight=5)  # 5 + 10

    blackspots_compute(now=NOW)

    [spot] = spots()
    assert spot.rule == "UHS-3J-SCORE"
    assert spot.score == 15
    assert spot.accident_count == 6


def test_a_score_of_14_is_no_black_spot():
    _mixed(serious=2, slight=2)  # 10 + 4
    blackspots_compute(now=NOW)
    assert spots() == []


def test_accidents_with_property_damage_only_add_nothing_to_the_score():
    _mixed(serious=2, slight=2)
    accident(category=4, type=7, days_ago=700, east=1, north=1)
    accident(category=5, type=6, days_ago=700, east=2, north=2)
    blackspots_compute(now=NOW)
    assert spots("UHS-3J-SCORE") == []


# --- Keys, replacement, configuration ---------------------------------------------------------------------


def test_a_black_spot_keeps_its_id_and_key_while_it_holds():
    cluster(5, type=2, category=5, days_ago=200)
    blackspots_compute(now=NOW)
    [before] = spots()

    newcomer = accident(east=4, north=4, type=2, category=5, days_ago=1)
    blackspots_compute(now=NOW)
    # The window moves on by 300 days: the five old accidents leave it, but new ones keep the spot alive.
    cluster(5, type=2, category=5, days_ago=-250)
    blackspots_compute(now=NOW + timedelta(days=300))

    [after] = spots()
    assert (after.pk, after.key) == (before.pk, before.key)
    assert after.key.startswith("UHS-1J/2/")
    assert after.accident_count == 6
    assert newcomer in after.accidents.all()
    assert after.period.upper == NOW + timedelta(days=300)


def test_computing_twice_gives_the_same_rows():
    cluster(5, type=2, category=5)
    _mixed(serious=3, slight=0)
    blackspots_compute(now=NOW)
    first = {(s.pk, s.key, s.accident_count, s.score) for s in spots()}

    result = blackspots_compute(now=NOW)

    assert {(s.pk, s.key, s.accident_count, s.score) for s in spots()} == first
    assert result["created"] == 0 and result["deleted"] == 0 and result["kept"] == len(first)


def test_black_spots_that_no_longer_hold_are_deleted_with_their_members():
    cluster(5, type=2, category=5, days_ago=300)
    blackspots_compute(now=NOW)
    assert len(spots()) == 1

    result = blackspots_compute(now=NOW + timedelta(days=100))

    assert result["deleted"] == 1
    assert spots() == []
    assert BlackSpot.accidents.through.objects.count() == 0


def test_separate_places_make_separate_black_spots_with_separate_keys():
    cluster(5, type=2, category=5)
    cluster(5, type=2, category=5, origin=ELSEWHERE)
    blackspots_compute(now=NOW)
    found = spots("UHS-1J")
    assert len(found) == 2
    assert len({s.key for s in found}) == 2


def test_a_calendar_window_takes_the_last_complete_years():
    cluster(5, type=2, category=5, days_ago=200)  # December 2025: in calendar year 2025
    cluster(5, type=3, category=5, days_ago=10)  # June 2026: the current year, not yet complete
    rules = [{"code": "UHS-1J", "years": 1, "min_accidents": 5, "same_type": True, "window": "calendar"}]
    with override_settings(AUMAN_BLACKSPOT_RULES=rules):
        blackspots_compute(now=NOW)
    [spot] = spots()
    assert spot.accident_type == 2
    assert spot.period.lower == local(2025, 1, 1) and spot.period.upper == local(2026, 1, 1)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"code": "X", "years": 1}], "give min_accidents, min_score or both"),
        ([{"code": "X", "years": 0, "min_accidents": 3}], "years must be a whole number from 1 to 10"),
        ([{"code": "X", "years": 1, "min_accidents": 3, "radius": 5}], "unknown keys ['radius']"),
        ([{"code": "X", "years": 1, "min_accidents": 3, "categories": [9]}], "a category must be"),
        ([{"code": "X", "years": 1, "min_accidents": 3}, {"code": "X", "years": 3, "min_score": 9}], "repeated"),
        ([{"code": "has space", "years": 1, "min_accidents": 3}], "code must be"),
    ],
)
def test_a_bad_rule_set_is_refused_with_a_message_naming_the_problem(rules, message):
    with override_settings(AUMAN_BLACKSPOT_RULES=rules), pytest.raises(ImproperlyConfigured) as excinfo:
        blackspot_rules()
    assert message in str(excinfo.value)


def test_the_system_check_names_a_bad_rule_set_at_start_up():
    from traffic.checks import check_blackspot_rules

    assert check_blackspot_rules(None) == []
    with override_settings(AUMAN_BLACKSPOT_RULES=[{"code": "X", "years": 1}]):
        [error] = check_blackspot_rules(None)
    assert error.id == "traffic.E001"
    assert "AUMAN_BLACKSPOT_RULES[0]" in error.msg


def test_the_default_rules_are_the_three_of_the_m_uko():
    rules = {rule.code: rule for rule in blackspot_rules()}
    assert set(rules) == {"UHS-1J", "UHS-3J-SP", "UHS-3J-SCORE"}
    assert (rules["UHS-1J"].years, rules["UHS-1J"].min_accidents, rules["UHS-1J"].same_type) == (1, 5, True)
    assert (rules["UHS-3J-SP"].years, rules["UHS-3J-SP"].min_accidents, rules["UHS-3J-SP"].categories) == (3, 3, (1, 2))
    assert (rules["UHS-3J-SCORE"].min_score, rules["UHS-3J-SCORE"].weights) == (15, {1: 5, 2: 5, 3: 2})
    assert rules["UHS-3J-SCORE"].min_points == 3  # 15 points need at least 3 accidents of 5


def test_the_command_and_the_task_compute_black_spots():
    cluster(5, type=2, category=5, days_ago=10, base=timezone.now())
    out = io.StringIO()
    call_command("compute_blackspots", stdout=out)
    assert "UHS-1J: 1 black spots" in out.getvalue()

    BlackSpot.objects.all().delete()
    result = tasks.blackspots_recompute()
    assert result["rules"]["UHS-1J"] == 1


def test_the_command_computes_as_of_a_past_date():
    cluster(5, type=2, category=5, days_ago=1000)
    out = io.StringIO()
    call_command("compute_blackspots", "--at", (NOW - timedelta(days=990)).date().isoformat(), stdout=out)
    assert len(spots("UHS-1J")) == 1


def test_the_nightly_job_is_scheduled():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "traffic.tasks.blackspots_recompute"]
    assert len(entries) == 1


# --- Conflict C8: roadworks through a black spot ------------------------------------------------------------


def _works_through_the_junction(organisation, **overrides):
    geometry = LineString((JUNCTION.x - 60, JUNCTION.y), (JUNCTION.x + 60, JUNCTION.y), srid=25832)
    return make_roadwork(organisation, **{"geometry": geometry, "period": period(local(2026, 7, 1), 20), **overrides})


def test_roadworks_through_a_black_spot_get_a_warning_conflict(stadtwerke):
    works = _works_through_the_junction(stadtwerke, status=RoadworkStatus.SUBMITTED)
    cluster(5, type=2, category=5)

    result = blackspots_compute(now=NOW)

    assert result["conflicts"]["found"] == 1
    [spot] = spots()
    conflict = Conflict.objects.get()
    assert conflict.rule == BLACK_SPOT_CONFLICT_RULE == "C8"
    assert conflict.severity == "warning"
    assert (conflict.roadwork_a_id, conflict.roadwork_b_id) == (works.pk, None)
    assert (conflict.layer, conflict.layer_object_id) == ("black_spot", str(spot.pk))
    assert conflict.overlap_period == works.period
    assert conflict.place.geom_type == "MultiPolygon" and not conflict.place.empty


def test_the_conflict_goes_when_the_black_spot_goes(stadtwerke):
    _works_through_the_junction(stadtwerke)
    cluster(5, type=2, category=5, days_ago=300)
    blackspots_compute(now=NOW)
    assert Conflict.objects.count() == 1

    blackspots_compute(now=NOW + timedelta(days=100))

    # The conflict stays on record, resolved: the black spot no longer holds.
    assert list(Conflict.objects.values_list("status", flat=True)) == [ConflictStatus.RESOLVED]


def test_the_conflict_goes_when_the_roadwork_moves_away(stadtwerke):
    works = _works_through_the_junction(stadtwerke)
    cluster(5, type=2, category=5)
    blackspots_compute(now=NOW)

    works.geometry = LineString((ELSEWHERE.x, ELSEWHERE.y), (ELSEWHERE.x + 50, ELSEWHERE.y), srid=25832)
    works.save()
    result = conflicts_detect_black_spots_for(roadwork_id=works.pk, now=NOW)

    assert result == {"found": 0, "changed": 0, "resolved": 1}
    assert Conflict.objects.get().status == ConflictStatus.RESOLVED


def test_a_roadwork_moved_onto_a_black_spot_gets_the_conflict(stadtwerke):
    cluster(5, type=2, category=5)
    blackspots_compute(now=NOW)
    works = _works_through_the_junction(stadtwerke)

    assert conflicts_detect_black_spots_for(roadwork_id=works.pk, now=NOW)["found"] == 1
    assert conflicts_detect_black_spots_for(roadwork_id=works.pk, now=NOW) == {"found": 1, "changed": 0, "resolved": 0}
    assert Conflict.objects.filter(rule="C8", roadwork_a=works).count() == 1


def test_drafts_and_finished_works_get_no_black_spot_conflict(stadtwerke):
    _works_through_the_junction(stadtwerke, status=RoadworkStatus.DRAFT)
    _works_through_the_junction(stadtwerke, period=period(local(2026, 1, 10), 10))  # over before NOW
    cluster(5, type=2, category=5)
    blackspots_compute(now=NOW)
    assert Conflict.objects.count() == 0


def test_an_acknowledged_conflict_stays_acknowledged_when_black_spots_are_recomputed(stadtwerke):
    _works_through_the_junction(stadtwerke)
    cluster(5, type=2, category=5)
    blackspots_compute(now=NOW)
    Conflict.objects.update(status=ConflictStatus.ACKNOWLEDGED)

    accident(east=2, north=2, type=2, category=5, days_ago=2)
    blackspots_compute(now=NOW)

    assert Conflict.objects.get().status == ConflictStatus.ACKNOWLEDGED


# --- The accident commission's page and CSV -----------------------------------------------------------------


@pytest.fixture
def two_places():
    """At the junction a one-year black spot of 6 turning accidents (score 12); elsewhere 3 serious accidents, a
    black spot under both three-year rules (score 15). Keyed by rule."""
    now = timezone.now()
    cluster(6, type=2, category=3, days_ago=20, base=now)
    for i in range(3):
        accident(category=2, type=1 + i, days_ago=600, origin=ELSEWHERE, east=4 * i, base=now)
    blackspots_compute(now=timezone.now())
    return {spot.rule: spot for spot in BlackSpot.objects.all()}


def test_the_commission_page_needs_a_login(client):
    response = client.get("/unfallkommission/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_commission_page_is_refused_to_users_without_a_staff_role(client, dave, alice):
    for user in (dave, alice):
        client.force_login(user)
        assert client.get("/unfallkommission/").status_code == 403
        assert client.get("/unfallkommission/unfallhaeufungsstellen.csv").status_code == 403


def test_the_commission_lists_black_spots_with_statistics_and_map_links(client, bob, carol, two_places):
    for user in (bob, carol):
        client.force_login(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        response = client.get("/unfallkommission/")
        assert response.status_code == 200
        html = response.content.decode()
        for spot in two_places.values():
            assert f'data-key="{spot.key}"' in html
        assert "Turning accident: 6" in html
        assert "#map=18/49.48" in html


def _keys_in_order(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('data-key="')[1:]]


def test_the_commission_sorts_by_score_or_by_accident_count(client, bob, two_places):
    client.force_login(bob)
    one_year, three_years = two_places["UHS-1J"], two_places["UHS-3J-SP"]

    by_score = _keys_in_order(client.get("/unfallkommission/?sort=-score").content.decode())
    by_count = _keys_in_order(client.get("/unfallkommission/?sort=-count").content.decode())

    # The score rule fires at the serious spot too (15 points): it lists three black spots.
    assert by_score.index(three_years.key) < by_score.index(one_year.key)
    assert by_count[0] == one_year.key


def test_the_commission_filters_by_rule(client, bob, two_places):
    client.force_login(bob)
    keys = _keys_in_order(client.get("/unfallkommission/?rule=UHS-1J").content.decode())
    assert keys == [two_places["UHS-1J"].key]


def test_an_unknown_rule_or_order_answers_400(client, bob, two_places):
    client.force_login(bob)
    assert client.get("/unfallkommission/?rule=NOPE").status_code == 400
    assert client.get("/unfallkommission/?sort=colour").status_code == 400
    assert client.get("/unfallkommission/unfallhaeufungsstellen.csv?sort=colour").status_code == 400


def test_the_csv_export_is_what_german_excel_opens(client, bob, two_places):
    client.force_login(bob)

    response = client.get("/unfallkommission/unfallhaeufungsstellen.csv?rule=UHS-1J")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="unfallhaeufungsstellen.csv"' in response["Content-Disposition"]
    body = response.content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == blackspot_views.CSV_HEADERS
    assert rows[0][:5] == ["Schlüssel", "Regel", "Unfalltyp", "Anzahl Unfälle", "Punktwert"]
    spot = two_places["UHS-1J"]
    [line] = rows[1:]
    record = dict(zip(rows[0], line, strict=True))
    assert record["Schlüssel"] == spot.key
    assert record["Regel"] == "UHS-1J"
    assert record["Unfalltyp"] == "Abbiegen-Unfall"
    assert record["Anzahl Unfälle"] == "6"
    assert record["Punktwert"] == "12"
    assert record["Typ 2 Abbiegen-Unfall"] == "6"
    assert record["Kategorie 3 Leichtverletzte"] == "6"
    assert record["Länge (WGS84)"].startswith("8,47")
    assert record["Breite (WGS84)"].startswith("49,48")
    assert record["Karte"].endswith(blackspot_views.map_url(black_spots_list().get(pk=spot.pk)))


# --- API and map layer --------------------------------------------------------------------------------------


def test_the_api_lists_black_spots_as_geojson_for_staff(api, bob, two_places):
    response = api(bob).get("/api/v1/black-spots/?sort=-count", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    data = response.json()
    assert data["type"] == "FeatureCollection"
    first = data["features"][0]
    assert first["geometry"]["type"] == "Polygon"
    assert first["properties"]["rule"] == "UHS-1J"
    assert first["properties"]["accident_type_label"] == "Turning accident"
    assert first["properties"]["accident_count"] == 6
    assert first["properties"]["centre"]["type"] == "Point"
    lon, lat = first["properties"]["centre"]["coordinates"]
    assert 8.4 < lon < 8.6 and 49.4 < lat < 49.6
    assert set(first["properties"]["period"]) == {"lower", "upper"}


def test_the_api_filters_by_rule_and_bbox(api, carol, two_places):
    by_rule = api(carol).get("/api/v1/black-spots/?rule=UHS-3J-SP").json()
    assert [f["properties"]["key"] for f in by_rule["features"]] == [two_places["UHS-3J-SP"].key]
    around_junction = api(carol).get("/api/v1/black-spots/?bbox=8.474,49.484,8.476,49.486").json()
    assert {f["properties"]["rule"] for f in around_junction["features"]} == {"UHS-1J"}
    assert api(carol).get("/api/v1/black-spots/?bbox=1,2,3").status_code == 400


def test_the_api_refuses_the_public_and_users_without_a_staff_role(api, dave, two_places):
    assert api(None).get("/api/v1/black-spots/").status_code == 401
    assert api(dave).get("/api/v1/black-spots/").status_code == 403


def test_a_city_can_publish_its_black_spots(api, two_places):
    with override_settings(AUMAN_BLACKSPOTS_PUBLIC=True):
        response = api(None).get("/api/v1/black-spots/")
    assert response.status_code == 200
    assert response.json()["count"] == 3


def test_the_map_layer_bytes_are_built_in_postgis_and_filtered_by_bbox(two_places):
    everything = json.loads(black_spots_geojson())
    near = json.loads(black_spots_geojson(bbox=parse_bbox("8.474,49.484,8.476,49.486")))

    assert everything["type"] == "FeatureCollection"
    assert len(everything["features"]) == 3
    assert [f["properties"]["key"] for f in near["features"]] == [two_places["UHS-1J"].key]
    feature = near["features"][0]
    assert feature["geometry"]["type"] == "Polygon"
    assert feature["properties"]["layer"] == "black_spots"
    assert feature["properties"]["statistics"]["by_type"]["2"] == 6


def test_accidents_of_reports_cancelled_as_false_do_not_count():
    """A false report keeps its Accident row for the history, but black spots must not count it."""
    from tests.conftest import make_incident
    from traffic.models import IncidentStatus

    false_report = make_incident(
        status=IncidentStatus.CANCELLED,
        occurred_at=NOW - timedelta(days=30),
        reported_at=NOW - timedelta(days=30),
        cleared_at=NOW,
    )
    cluster(4, type=2, category=5)
    accident(east=1, north=1, type=2, category=5, incident=false_report)

    assert blackspots_compute(now=NOW)["rules"]["UHS-1J"] == 0
    false_report.status = IncidentStatus.CONFIRMED
    false_report.save()
    assert blackspots_compute(now=NOW)["rules"]["UHS-1J"] == 1
