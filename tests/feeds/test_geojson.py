"""The plain GeoJSON feed for GIS tools: everything public, geometry as drawn, valid RFC 7946 GeoJSON."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from roadworks.models import RoadworkStatus
from tests.conftest import make_incident, make_roadwork, period
from traffic.feeds import geojson
from traffic.models import IncidentStatus

from .conftest import GEOJSON_URL, by_id, feed_of, official_errors

pytestmark = pytest.mark.django_db


def test_it_is_a_valid_feature_collection_of_every_public_roadwork_and_incident(
    client, official, every_roadwork, every_incident
):
    document = feed_of(client, GEOJSON_URL)
    assert official_errors(official, "geojson-public", document) == []
    assert geojson.validate(client.get(GEOJSON_URL).content) == []
    items = by_id(document)
    assert {str(w.pk) for w in every_roadwork.values()} | {str(i.pk) for i in every_incident.values()} == set(items)
    area = items[str(every_roadwork["area"].pk)]
    assert area["geometry"]["type"] == "Polygon"  # kept as drawn
    assert area["properties"]["item"] == "roadwork" and area["properties"]["impact"] == "restriction"
    assert items[str(every_incident["kind:spill"].pk)]["properties"]["item"] == "incident"


def test_it_shows_what_the_public_map_shows(client, stadtwerke, settings):
    settings.AUMAN_PUBLIC_COMPLETED_DAYS = 14
    now = timezone.now()
    works = {status: make_roadwork(stadtwerke, status=status) for status in RoadworkStatus}
    long_done = make_roadwork(stadtwerke, status=RoadworkStatus.COMPLETED, period=period(now - timedelta(days=40), 5))
    gone = make_incident(status=IncidentStatus.CLEARED, cleared_at=now)
    here = make_incident()
    items = set(by_id(feed_of(client, GEOJSON_URL)))
    public = {RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS, RoadworkStatus.COMPLETED}
    assert items == {str(works[s].pk) for s in public} | {str(here.pk)}
    assert str(long_done.pk) not in items and str(gone.pk) not in items
    # looking back, the long-completed work is there
    assert str(long_done.pk) in by_id(
        feed_of(client, GEOJSON_URL, active_on=(now - timedelta(days=38)).date().isoformat())
    )


def test_it_writes_times_in_utc_and_the_organisation(client, stadtwerke):
    work = make_roadwork(stadtwerke)
    properties = by_id(feed_of(client, GEOJSON_URL))[str(work.pk)]["properties"]
    assert properties["start"] == "2027-03-01T06:00:00Z" and properties["end"] == "2027-03-11T06:00:00Z"
    assert properties["organisation"] == "Stadtwerke Mannheim"
