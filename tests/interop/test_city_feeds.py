"""External items in the city's own feeds: only with include_in_city_feeds, and only in the public GeoJSON feed
(the standard feeds carry the city's own works); marked as external, with their source."""

from __future__ import annotations

import json

import pytest

from interop import services
from traffic.feeds import geojson, wzdx

from .conftest import wzdx_feature, wzdx_feed

pytestmark = pytest.mark.django_db


def external_features(body: bytes) -> list[dict]:
    return [f for f in json.loads(body)["features"] if f["properties"]["item"] == "external"]


def test_items_of_a_source_marked_for_the_city_feeds_are_in_the_geojson_feed(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A6-1")), include_in_city_feeds=True)
    services.source_poll(source_id=source.pk, force=True)

    [feature] = external_features(geojson.build_now())
    assert feature["id"] == f"ext-{source.pk}-A6-1"
    assert feature["properties"]["source"] == source.name
    assert feature["geometry"]["type"] == "LineString"
    # The standard feeds stay the city's own works.
    assert "A6-1" not in wzdx.build_now().decode()


def test_items_stay_out_unless_the_source_is_marked_and_enabled(file_source):
    hidden = file_source(wzdx_feed(wzdx_feature("B-1")), name="Nicht markiert")
    off = file_source(wzdx_feed(wzdx_feature("C-1")), name="Abgeschaltet", include_in_city_feeds=True)
    for source in (hidden, off):
        services.source_poll(source_id=source.pk, force=True)
    off.enabled = False
    off.save()
    assert external_features(geojson.build_now()) == []


def test_the_geojson_feeds_fingerprint_sees_a_changed_external_item(file_source):
    from django.utils import timezone

    source = file_source(wzdx_feed(wzdx_feature("A6-1")), include_in_city_feeds=True)
    before = geojson.fingerprint(now=timezone.now())
    services.source_poll(source_id=source.pk, force=True)
    assert geojson.fingerprint(now=timezone.now()) != before
