"""A roadwork created through the API, and approved, appears in the feeds with the same id, times and geometry;
an incident logged through the API likewise."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.urls import reverse

from roadworks.models import Roadwork
from tests.conftest import feature, geojson_line
from traffic.feeds.registry import FEEDS

from .conftest import GEOJSON_URL, LUISENRING, TDX_URL, WZDX_URL, by_id, feed_of

pytestmark = pytest.mark.django_db

LINE = [(8.47401, 49.48401), (8.47523, 49.48467), (8.47618, 49.48519)]
PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-11T17:30:00+01:00"}
PRECISION = 1e-6  # the feeds write six decimals, about 0.1 m


def same_moment(feed_time: str, api_time: str) -> bool:
    return datetime.fromisoformat(feed_time.replace("Z", "+00:00")) == datetime.fromisoformat(api_time)


def assert_same_line(coords: list[list[float]], expected: list[tuple[float, float]]) -> None:
    assert len(coords) == len(expected)
    for (lon, lat), (x, y) in zip(coords, expected, strict=True):
        assert lon == pytest.approx(x, abs=PRECISION) and lat == pytest.approx(y, abs=PRECISION)


def test_a_roadwork_created_through_the_api_appears_in_the_feeds_as_it_was_sent(client, api, alice, bob):
    body = feature(
        geojson_line(LINE),
        title="Fernwärme Kaiserring",
        street_names=["Kaiserring"],
        period=PERIOD,
        status="submitted",
        direction="forward",
        traffic_management="full_closure",
        detours=[{"name": "Umleitung über Luisenring", "geometry": geojson_line(LUISENRING)}],
    )
    created = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert created.status_code == 201, created.content
    work_id = created.json()["id"]
    version = Roadwork.objects.get(pk=work_id).version
    approved = api(bob).post(
        f"/api/v1/roadworks/{work_id}/transition/", {"to": "approved", "version": version}, format="json"
    )
    assert approved.status_code == 200, approved.content

    event = by_id(feed_of(client, WZDX_URL))[work_id]
    assert same_moment(event["properties"]["start_date"], PERIOD["lower"])
    assert same_moment(event["properties"]["end_date"], PERIOD["upper"])
    assert_same_line(event["geometry"]["coordinates"], LINE)
    assert event["properties"]["vehicle_impact"] == "all-lanes-closed"
    assert event["properties"]["core_details"]["related_road_events"][0]["type"] == "related-detour"

    item = by_id(feed_of(client, GEOJSON_URL))[work_id]
    assert same_moment(item["properties"]["start"], PERIOD["lower"])
    assert same_moment(item["properties"]["end"], PERIOD["upper"])
    assert_same_line(item["geometry"]["coordinates"], LINE)

    # and every other registered feed carries it too
    for feed in FEEDS.values():
        if feed.key == "tdx-incidents":
            continue
        assert work_id in client.get(reverse(feed.url_name)).content.decode(), feed.key


def test_an_incident_logged_through_the_api_appears_in_the_feeds(client, api, carol):
    point = {"type": "Point", "coordinates": [8.475012, 49.484634]}
    logged = api(carol).post(
        "/api/v1/incidents/",
        feature(point, kind="accident", street_name="Kaiserring", occurred_at="2026-11-21T08:10:00+01:00"),
        format="json",
    )
    assert logged.status_code == 201, logged.content
    incident_id = logged.json()["id"]

    event = by_id(feed_of(client, TDX_URL))[incident_id]
    assert event["properties"]["start_date"] == "2026-11-21T07:10:00Z"
    assert_same_line(event["geometry"]["coordinates"], [tuple(point["coordinates"])])
    item = by_id(feed_of(client, GEOJSON_URL))[incident_id]
    assert item["geometry"]["coordinates"] == pytest.approx(point["coordinates"], abs=PRECISION)


def test_the_road_event_ids_of_a_work_and_its_detours_stay_when_the_work_is_edited(client, api, alice, bob):
    detours = [{"name": "Umleitung über Luisenring", "geometry": geojson_line(LUISENRING)}]
    body = feature(
        geojson_line(LINE), title="Fernwärme", street_names=["Kaiserring"], period=PERIOD, status="submitted",
        direction="both", detours=detours,
    )  # fmt: skip
    work_id = api(alice).post("/api/v1/roadworks/", body, format="json").json()["id"]
    version = Roadwork.objects.get(pk=work_id).version
    api(bob).post(f"/api/v1/roadworks/{work_id}/transition/", {"to": "approved", "version": version}, format="json")
    before = sorted(by_id(feed_of(client, WZDX_URL)))

    # The authority corrects the title, sending the whole detour list again as a client that rewrites it would.
    version = Roadwork.objects.get(pk=work_id).version
    edited = api(bob).patch(
        f"/api/v1/roadworks/{work_id}/", {"properties": {"title": "Fernwärme Kaiserring", "detours": detours,
                                                         "version": version}}, format="json",
    )  # fmt: skip
    assert edited.status_code == 200, edited.content

    after = by_id(feed_of(client, WZDX_URL))
    assert sorted(after) == before and len(before) == 3  # both directions and the detour, ids unchanged
    assert {event["properties"]["core_details"]["name"] for event in after.values()} >= {"Fernwärme Kaiserring"}
