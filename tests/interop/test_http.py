"""The HTTP poller against a local http.server thread (no internet): conditional GET, errors, the size limit, and
the Autobahn API's roads and services."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from interop import services
from interop.fetch import MSG_HTTP_STATUS, MSG_TOO_LARGE, MSG_UNREACHABLE
from interop.models import ExternalItem, ExternalSource
from tests.interop.conftest import wzdx_feature, wzdx_feed

pytestmark = pytest.mark.django_db


def url_source(url: str, fmt: str = "wzdx", **fields) -> ExternalSource:
    return ExternalSource.objects.create(name=fields.pop("name", "Nachbar"), url=url, format=fmt, **fields)


def poll(source: ExternalSource) -> services.PollResult:
    return services.source_poll(source_id=source.pk, force=True)


def test_it_polls_over_http_and_asks_again_with_the_etag(feed_server):
    headers = {"ETag": '"v1"', "Last-Modified": "Mon, 01 Feb 2027 08:00:00 GMT", "Content-Type": "application/json"}
    feed_server.routes["/wzdx"] = (200, headers, wzdx_feed(wzdx_feature("A")))
    source = url_source(f"{feed_server.url}/wzdx")
    assert poll(source).status == "ok"
    source.refresh_from_db()
    assert (source.etag, source.last_modified) == ('"v1"', "Mon, 01 Feb 2027 08:00:00 GMT")
    first_success = source.last_success_at
    result = poll(source)
    assert result.status == "not_modified"
    sent = feed_server.requests[-1][1]
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == "Mon, 01 Feb 2027 08:00:00 GMT"
    assert sent["User-Agent"].startswith("AUMAn/")
    source.refresh_from_db()
    assert source.last_success_at > first_success and source.item_count == 1
    assert ExternalItem.objects.count() == 1


def test_a_server_error_shows_in_the_health_and_keeps_the_items(feed_server):
    feed_server.routes["/wzdx"] = (200, {}, wzdx_feed(wzdx_feature("A")))
    source = url_source(f"{feed_server.url}/wzdx")
    poll(source)
    feed_server.routes["/wzdx"] = (503, {}, b"maintenance")
    result = poll(source)
    assert result.status == "error" and result.error == str(MSG_HTTP_STATUS).format(status=503)
    source.refresh_from_db()
    assert source.last_error == result.error and not source.healthy
    assert ExternalItem.objects.count() == 1


def test_an_unreachable_server_is_an_error(db):
    source = url_source("http://127.0.0.1:9/feed")  # the discard port: nothing listens
    result = poll(source)
    assert result.status == "error" and result.error.startswith(str(MSG_UNREACHABLE).format(detail=""))


def test_an_answer_over_the_size_limit_is_refused(feed_server):
    feed_server.routes["/big"] = (200, {}, wzdx_feed(*(wzdx_feature(f"id-{n}") for n in range(20))))
    source = url_source(f"{feed_server.url}/big")
    with override_settings(AUMAN_INTEROP_MAX_BYTES=2048):
        result = poll(source)
    assert result.status == "error" and result.error == str(MSG_TOO_LARGE).format(limit=2048)
    assert not ExternalItem.objects.exists()


def autobahn_item(identifier: str, lon: float, lat: float, **fields) -> dict:
    return {
        "identifier": identifier,
        "display_type": fields.pop("display_type", "ROADWORKS"),
        "title": fields.pop("title", f"A6 | {identifier}"),
        "coordinate": {"lat": str(lat), "long": str(lon)},
        "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat + 0.001]]},
        "description": ["Beginn: 01.03.27 um 07:00 Uhr", "Ende: 20.03.27 um 17:00 Uhr"],
        "isBlocked": "false",
        "startTimestamp": "2027-03-01T07:00:00+01:00",
        **fields,
    }


def test_it_reads_the_autobahn_api_road_by_road(feed_server):
    ok = (200, {"Content-Type": "application/json"})
    feed_server.routes["/o/autobahn/"] = (*ok, json.dumps({"roads": ["A6", "A656"]}).encode())
    feed_server.routes["/o/autobahn/A6/services/roadworks"] = (
        *ok,
        json.dumps({"roadworks": [autobahn_item("RW-1", 8.47, 49.52)]}).encode(),
    )
    feed_server.routes["/o/autobahn/A6/services/warning"] = (204, {}, b"")
    feed_server.routes["/o/autobahn/A6/services/closure"] = (
        *ok,
        json.dumps({"closure": [autobahn_item("CL-1", 8.50, 49.47, display_type="CLOSURE")]}).encode(),
    )
    feed_server.routes["/o/autobahn/A656/services/roadworks"] = (
        *ok,
        json.dumps({"roadworks": [autobahn_item("RW-1", 8.47, 49.52), autobahn_item("RW-2", 8.52, 49.47)]}).encode(),
    )
    # A656 warning and closure: 404, the API's answer for nothing
    source = url_source(f"{feed_server.url}/o/autobahn", fmt="autobahn", name="Autobahn GmbH")
    result = poll(source)
    assert result.status == "ok", result.error
    assert sorted(ExternalItem.objects.values_list("source_item_id", "kind", "restriction")) == [
        ("CL-1", "closure", "closure"),
        ("RW-1", "roadworks", ""),
        ("RW-2", "roadworks", ""),
    ]
    assert [path for path, _ in feed_server.requests][:2] == ["/o/autobahn/", "/o/autobahn/A6/services/roadworks"]


def test_it_asks_the_autobahn_api_only_for_the_configured_roads(feed_server):
    feed_server.routes["/o/autobahn/A6/services/roadworks"] = (
        200,
        {},
        json.dumps({"roadworks": [autobahn_item("RW-1", 8.47, 49.52)]}).encode(),
    )
    source = url_source(f"{feed_server.url}/o/autobahn", fmt="autobahn", roads="A6")
    assert poll(source).items == 1
    assert sorted(path for path, _ in feed_server.requests) == [
        "/o/autobahn/A6/services/closure",
        "/o/autobahn/A6/services/roadworks",
        "/o/autobahn/A6/services/warning",
    ]
