"""WZDx 4.2 WorkZoneFeed: every kind of roadwork valid against the official schema, one road event per direction
of travel, detours as DetourRoadEvents, lanes, types of work, stable ids, and the spec's business rules."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from roadworks.models import Detour, Direction, RoadworkStatus, TrafficManagement, WorkKind
from tests.conftest import KAISERRING, NECKARAU, line, local, make_roadwork, period
from traffic.feeds import validation, wzdx
from traffic.feeds.http import CACHE_KEY_PREFIX

from .conftest import LUISENRING, WZDX_URL, by_id, feed_of, multi_line, official_errors

pytestmark = pytest.mark.django_db

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def events_of(document: dict, work) -> list[dict]:
    """The road events of one work: its own id and the UUIDv5s derived from it."""
    ids = {str(work.pk)} | {
        str(uuid.uuid5(work.pk, key))
        for key in ("part-1-backward", "part-2", "part-2-backward", "part-3", "part-3-backward")
    }
    return [
        f for f in document["features"] if f["id"] in ids and f["properties"]["core_details"]["event_type"] != "detour"
    ]


def coordinates(coords) -> list[list[float]]:
    return [list(c) for c in coords]


def test_a_feed_with_every_kind_of_roadwork_and_detour_is_valid_against_the_official_schema(
    client, official, every_roadwork
):
    document = feed_of(client, WZDX_URL)
    assert official_errors(official, "wzdx-workzones", document) == []
    assert validation.road_event_rule_errors(document) == []
    types = {f["properties"]["core_details"]["event_type"] for f in document["features"]}
    assert types == {"work-zone", "detour"}


def test_the_self_check_agrees_with_the_official_schema(client, every_roadwork):
    assert wzdx.validate(client.get(WZDX_URL).content) == []
    assert wzdx.validate(b'{"type": "FeatureCollection"}')  # no feed_info, no features


def test_a_work_on_both_sides_is_one_road_event_per_direction_with_coordinates_in_the_direction_of_travel(
    client, stadtwerke
):
    work = make_roadwork(stadtwerke, direction=Direction.BOTH)
    forward, backward = events_of(feed_of(client, WZDX_URL), work)
    assert forward["id"] == str(work.pk)
    assert backward["id"] == str(uuid.uuid5(work.pk, "part-1-backward"))
    assert forward["geometry"]["coordinates"] == coordinates(KAISERRING)
    assert backward["geometry"]["coordinates"] == coordinates(reversed(KAISERRING))
    assert forward["properties"]["core_details"]["direction"] == "undefined"
    assert backward["properties"]["core_details"]["direction"] == "undefined"
    # the two directions name each other
    assert forward["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-work-zone", "id": backward["id"]}
    ]


@pytest.mark.parametrize(
    ("direction", "expected"),
    [(Direction.FORWARD, KAISERRING), (Direction.BACKWARD, list(reversed(KAISERRING)))],
)
def test_a_work_on_one_side_is_one_road_event_in_its_direction_of_travel(client, stadtwerke, direction, expected):
    work = make_roadwork(stadtwerke, direction=direction)
    (event,) = events_of(feed_of(client, WZDX_URL), work)
    assert event["id"] == str(work.pk)
    assert event["geometry"]["coordinates"] == coordinates(expected)


def test_one_way_traffic_closes_the_affected_direction(client, stadtwerke):
    one_side = make_roadwork(stadtwerke, traffic_management=TrafficManagement.ONE_WAY, direction=Direction.FORWARD)
    both = make_roadwork(stadtwerke, traffic_management=TrafficManagement.ONE_WAY, direction=Direction.BOTH)
    document = feed_of(client, WZDX_URL)
    assert [e["properties"]["vehicle_impact"] for e in events_of(document, one_side)] == ["all-lanes-closed"]
    assert {e["properties"]["vehicle_impact"] for e in events_of(document, both)} == {"some-lanes-closed"}


def test_every_kind_of_works_but_other_has_a_wzdx_type_of_work(client, official, stadtwerke):
    assert set(wzdx.TYPE_OF_WORK) == set(WorkKind) - {WorkKind.OTHER}
    works = {kind: make_roadwork(stadtwerke, work_kind=kind, direction=Direction.FORWARD) for kind in WorkKind}
    events = by_id(feed_of(client, WZDX_URL))
    for kind, work in works.items():
        properties = events[str(work.pk)]["properties"]
        if kind == WorkKind.OTHER:
            assert "types_of_work" not in properties
        else:
            assert properties["types_of_work"] == [{"type_name": wzdx.TYPE_OF_WORK[kind]}]
    assert events[str(works[WorkKind.ROAD_MARKING].pk)]["properties"]["types_of_work"] == [{"type_name": "painting"}]


def test_it_lists_the_lanes_of_a_full_closure_and_of_alternating_one_way_traffic(client, stadtwerke):
    closed = make_roadwork(
        stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE, lanes_affected=2, direction=Direction.FORWARD
    )
    alternating = make_roadwork(
        stadtwerke, traffic_management=TrafficManagement.ALTERNATING_ONE_WAY, direction=Direction.FORWARD
    )
    lane_closure = make_roadwork(
        stadtwerke, traffic_management=TrafficManagement.LANE_CLOSURE, lanes_affected=1, direction=Direction.FORWARD
    )
    events = by_id(feed_of(client, WZDX_URL))
    assert events[str(closed.pk)]["properties"]["lanes"] == [
        {"order": 1, "status": "closed", "type": "general"},
        {"order": 2, "status": "closed", "type": "general"},
    ]
    assert events[str(alternating.pk)]["properties"]["lanes"] == [
        {"order": 1, "status": "alternating-flow", "type": "general"}
    ]
    # which lane closes and how many stay open is not recorded: vehicle_impact says it, no lanes are guessed
    assert "lanes" not in events[str(lane_closure.pk)]["properties"]
    assert events[str(lane_closure.pk)]["properties"]["vehicle_impact"] == "some-lanes-closed"


def test_detours_are_detour_road_events_linked_both_ways_to_the_work(client, official, stadtwerke):
    work = make_roadwork(stadtwerke, direction=Direction.FORWARD, traffic_management=TrafficManagement.FULL_CLOSURE)
    whole = Detour.objects.create(
        roadwork=work, name="Umleitung über Luisenring", description="U1", geometry=line(LUISENRING)
    )
    short = Detour.objects.create(
        roadwork=work,
        name="Umleitung Süd",
        geometry=line(NECKARAU),
        period=period(local(2027, 3, 2, 7), 2),
    )
    document = feed_of(client, WZDX_URL)
    assert official_errors(official, "wzdx-workzones", document) == []
    events = by_id(document)
    whole_id, short_id = (str(uuid.uuid5(work.pk, f"detour-{d.pk}")) for d in (whole, short))
    detour = events[whole_id]["properties"]
    assert detour["core_details"]["event_type"] == "detour"
    assert detour["core_details"]["name"] == "Umleitung über Luisenring"
    assert detour["core_details"]["description"] == "U1"
    assert detour["core_details"]["related_road_events"] == [{"type": "related-work-zone", "id": str(work.pk)}]
    # the work's own period, or the detour's when it has one
    assert (detour["start_date"], detour["end_date"]) == ("2027-03-01T06:00:00Z", "2027-03-11T06:00:00Z")
    assert (events[short_id]["properties"]["start_date"], events[short_id]["properties"]["end_date"]) == (
        "2027-03-02T06:00:00Z",
        "2027-03-04T06:00:00Z",
    )
    assert events[whole_id]["geometry"]["coordinates"] == coordinates(LUISENRING)
    assert events[str(work.pk)]["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-detour", "id": whole_id},
        {"type": "related-detour", "id": short_id},
    ]


def test_a_detour_in_separate_parts_is_a_road_event_per_part(client, stadtwerke):
    work = make_roadwork(stadtwerke, direction=Direction.FORWARD)
    detour = Detour.objects.create(roadwork=work, name="Umleitung", geometry=multi_line(LUISENRING, NECKARAU))
    events = by_id(feed_of(client, WZDX_URL))
    first, second = (
        str(uuid.uuid5(work.pk, f"detour-{detour.pk}")),
        str(uuid.uuid5(work.pk, f"detour-{detour.pk}-part-2")),
    )
    assert events[first]["geometry"]["coordinates"] == coordinates(LUISENRING)
    assert events[second]["geometry"]["coordinates"] == coordinates(NECKARAU)


@pytest.mark.django_db(transaction=True)
def test_a_changed_detour_shows_at_once(client, stadtwerke):
    # Committed for real: a detour has no updated_at, and its row version (xmin) only differs between transactions.
    work = make_roadwork(stadtwerke, direction=Direction.FORWARD)
    feed_of(client, WZDX_URL)
    detour = Detour.objects.create(roadwork=work, name="Umleitung Nord", geometry=line(LUISENRING))
    detour_id = str(uuid.uuid5(work.pk, f"detour-{detour.pk}"))
    assert by_id(feed_of(client, WZDX_URL))[detour_id]["properties"]["core_details"]["name"] == "Umleitung Nord"
    Detour.objects.filter(pk=detour.pk).update(name="Umleitung West")
    assert by_id(feed_of(client, WZDX_URL))[detour_id]["properties"]["core_details"]["name"] == "Umleitung West"
    detour.delete()
    assert detour_id not in by_id(feed_of(client, WZDX_URL))


def test_ids_are_stable_from_one_build_to_the_next(client, every_roadwork):
    first = [f["id"] for f in feed_of(client, WZDX_URL)["features"]]
    cache.delete_pattern(f"{CACHE_KEY_PREFIX}:*")
    assert [f["id"] for f in feed_of(client, WZDX_URL)["features"]] == first
    assert len(set(first)) == len(first)


# --- Business rules -----------------------------------------------------------------------------------


def test_every_road_event_names_a_data_source_of_the_feed(client, every_roadwork, stadtwerke, telekom):
    document = feed_of(client, WZDX_URL)
    sources = {s["data_source_id"]: s for s in document["feed_info"]["data_sources"]}
    used = {f["properties"]["core_details"]["data_source_id"] for f in document["features"]}
    assert used == set(sources) == {str(stadtwerke.pk), str(telekom.pk)}


def test_every_time_is_utc_with_a_z(client, every_roadwork):
    document = feed_of(client, WZDX_URL)
    times = [document["feed_info"]["update_date"]]
    times += [s["update_date"] for s in document["feed_info"]["data_sources"]]
    for feature in document["features"]:
        properties = feature["properties"]
        times += [properties["start_date"], properties["end_date"]]
        times += [properties["core_details"]["creation_date"], properties["core_details"]["update_date"]]
    assert times and all(RFC3339_UTC.match(t) for t in times), times


def test_the_rule_check_finds_a_road_event_without_its_data_source_and_a_local_time(client, stadtwerke):
    make_roadwork(stadtwerke, direction=Direction.FORWARD)
    document = feed_of(client, WZDX_URL)
    document["features"][0]["properties"]["core_details"]["data_source_id"] = "elsewhere"
    document["features"][0]["properties"]["start_date"] = "2027-03-01T07:00:00+01:00"
    errors = validation.road_event_rule_errors(document)
    assert any("names no data source" in e for e in errors)
    assert any("start_date" in e and "UTC" in e for e in errors)


# --- Filters -------------------------------------------------------------------------------------------


def test_active_on_looks_back_at_completed_works_and_ahead_at_coming_ones(client, stadtwerke):
    now = timezone.now()
    past = make_roadwork(
        stadtwerke, period=period(now - timedelta(days=40), 5), status=RoadworkStatus.COMPLETED, direction="forward"
    )
    coming = make_roadwork(stadtwerke, period=period(now + timedelta(days=30), 5), direction="forward")
    cancelled = make_roadwork(
        stadtwerke, period=period(now - timedelta(days=40), 5), status=RoadworkStatus.CANCELLED, direction="forward"
    )
    back = (now - timedelta(days=38)).date().isoformat()
    ahead = (now + timedelta(days=31)).isoformat()
    assert set(by_id(feed_of(client, WZDX_URL, active_on=back))) == {str(past.pk)}
    assert set(by_id(feed_of(client, WZDX_URL, active_on=ahead))) == {str(coming.pk)}
    assert str(past.pk) not in by_id(feed_of(client, WZDX_URL))
    assert str(cancelled.pk) not in by_id(feed_of(client, WZDX_URL, active_on=back))


def test_it_answers_a_bad_active_on_with_400(client):
    response = client.get(WZDX_URL, {"active_on": "morgen"})
    assert response.status_code == 400
    assert list(response.json()) == ["active_on"]


def test_the_document_depends_only_on_the_data_and_its_arguments(stadtwerke):
    make_roadwork(stadtwerke)
    now, moment = timezone.now(), local(2027, 1, 1)
    info = {"publisher": "Stadt Mannheim"}
    first = wzdx.workzone_document(now=now, built_at=moment, feed_info=info)
    assert wzdx.workzone_document(now=now, built_at=moment, feed_info=info) == first
    assert json.loads(first)["feed_info"]["update_date"] == "2026-12-31T23:00:00Z"
