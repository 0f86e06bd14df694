"""TDx 1.1 RoadIncidentFeed: every kind of incident valid against the official schema, the German police's kinds
mapped to TDx incident types, one road event per direction of travel, and cleared incidents gone at once."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import KAISERRING, line, make_incident
from traffic.feeds import tdx, validation
from traffic.models import IncidentDirection, IncidentKind, IncidentStatus

from .conftest import TDX_URL, by_id, feed_of, official_errors

pytestmark = pytest.mark.django_db

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_a_feed_with_every_kind_of_incident_is_valid_against_the_official_schema(client, official, every_incident):
    document = feed_of(client, TDX_URL)
    assert official_errors(official, "tdx-incidents", document) == []
    assert validation.road_event_rule_errors(document) == []
    assert document["feed_info"]["version"] == "1.1"
    assert tdx.validate(client.get(TDX_URL).content) == []


def test_an_accident_with_casualties_is_a_crash_with_injuries(client, every_incident):
    events = by_id(feed_of(client, TDX_URL))
    injuries = events[str(every_incident["injuries"].pk)]["properties"]["types_of_incident"]
    assert [(t["incident_category"], t["incident_type"]) for t in injuries] == [("crash", "crash"), ("crash", "injury")]
    plain = events[str(every_incident["kind:accident"].pk)]["properties"]["types_of_incident"]
    assert [(t["incident_category"], t["incident_type"]) for t in plain] == [("crash", "crash")]
    assert plain[0]["description"]  # the kind's label


def test_every_kind_but_other_has_a_tdx_incident_type(client, every_incident):
    assert set(tdx.TYPE_OF_INCIDENT) == set(IncidentKind) - {IncidentKind.OTHER}
    events = by_id(feed_of(client, TDX_URL))
    assert events[str(every_incident["kind:other"].pk)]["properties"]["types_of_incident"] == []
    assert (
        events[str(every_incident["kind:spill"].pk)]["properties"]["types_of_incident"][0]["incident_type"] == "spill"
    )


def test_a_stretch_in_both_directions_is_one_road_event_per_direction(client, every_incident):
    events = by_id(feed_of(client, TDX_URL))
    both = every_incident["dir:both"]
    forward, backward = events[str(both.pk)], events[str(uuid.uuid5(both.pk, "backward"))]
    assert forward["geometry"] == {"type": "LineString", "coordinates": [list(c) for c in KAISERRING]}
    assert backward["geometry"]["coordinates"] == [list(c) for c in reversed(KAISERRING)]
    assert forward["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-incident", "id": backward["id"]}
    ]
    against = events[str(every_incident["dir:backward"].pk)]
    assert against["geometry"]["coordinates"] == [list(c) for c in reversed(KAISERRING)]
    assert against["properties"]["core_details"]["direction"] == "undefined"
    assert events[str(every_incident["dir:unknown"].pk)]["properties"]["core_details"]["direction"] == "unknown"


def test_an_incident_without_a_stretch_is_its_point(client, every_incident):
    event = by_id(feed_of(client, TDX_URL))[str(every_incident["kind:hazard"].pk)]
    assert event["geometry"] == {"type": "MultiPoint", "coordinates": [[8.475, 49.4846]]}
    assert event["properties"]["core_details"]["direction"] == "unknown"


def test_it_writes_impact_verification_and_times_in_utc(client, every_incident):
    events = by_id(feed_of(client, TDX_URL))
    confirmed = events[str(every_incident["dir:forward"].pk)]["properties"]
    assert confirmed["vehicle_impact"] == "some-lanes-closed"
    assert confirmed["is_start_date_verified"] is True
    assert RFC3339_UTC.match(confirmed["start_date"]) and RFC3339_UTC.match(confirmed["end_date"])
    assert events[str(every_incident["no_lanes"].pk)]["properties"]["vehicle_impact"] == "all-lanes-open"
    reported = events[str(every_incident["kind:breakdown"].pk)]["properties"]
    assert reported["vehicle_impact"] == "unknown" and reported["is_start_date_verified"] is False
    assert "end_date" not in reported


def test_every_road_event_names_a_data_source_and_one_without_organisation_the_publisher(
    client, every_incident, police_org
):
    document = feed_of(client, TDX_URL)
    sources = {s["data_source_id"]: s for s in document["feed_info"]["data_sources"]}
    assert set(sources) == {str(police_org.pk), "publisher"}
    assert sources["publisher"]["organization_name"] == "Stadt Mannheim"
    assert {f["properties"]["core_details"]["data_source_id"] for f in document["features"]} == set(sources)


def test_a_cleared_or_cancelled_incident_leaves_at_once_and_active_on_looks_back(client):
    cleared = make_incident(kind=IncidentKind.ACCIDENT)
    cancelled = make_incident(kind=IncidentKind.HAZARD)
    assert {str(cleared.pk), str(cancelled.pk)} <= set(by_id(feed_of(client, TDX_URL)))
    now = timezone.now()
    cleared.status, cleared.cleared_at = IncidentStatus.CLEARED, now
    cleared.save()
    cancelled.status = IncidentStatus.CANCELLED
    cancelled.save()
    assert not {str(cleared.pk), str(cancelled.pk)} & set(by_id(feed_of(client, TDX_URL)))
    back = by_id(feed_of(client, TDX_URL, active_on=(now - timedelta(minutes=5)).isoformat()))
    assert str(cleared.pk) in back and str(cancelled.pk) not in back
    assert back[str(cleared.pk)]["properties"]["is_end_date_verified"] is True


def test_it_filters_by_bbox(client):
    here = make_incident(affected_line=line(KAISERRING), direction=IncidentDirection.FORWARD)
    assert set(by_id(feed_of(client, TDX_URL, bbox="8.47,49.48,8.48,49.49"))) == {str(here.pk)}
    assert feed_of(client, TDX_URL, bbox="8.48,49.45,8.49,49.46")["features"] == []
