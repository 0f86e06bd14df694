"""What every feed does over HTTP: filters, ETag and Last-Modified with 304, gzip with its own ETag, Cache-Control
from the setting, CORS for GET (with preflight), content types, and a change in every feed within 2 seconds."""

from __future__ import annotations

import gzip
import hashlib
import json
import re

import pytest
from django.urls import reverse

from accounts.models import Organisation
from auman.filters import MSG_BBOX
from roadworks.models import Roadwork, RoadworkStatus, TrafficManagement
from tests.conftest import make_incident, make_roadwork
from traffic.feeds.registry import FEEDS
from traffic.models import Incident, IncidentStatus

from .conftest import MY_FEEDS

pytestmark = pytest.mark.django_db

MY_URLS = list(MY_FEEDS.values())


@pytest.fixture
def some_data(stadtwerke):
    make_roadwork(stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE)
    make_incident()


def test_my_feeds_are_registered_under_their_urls():
    for key, url in MY_FEEDS.items():
        assert reverse(FEEDS[key].url_name) == url


@pytest.mark.parametrize("url", MY_URLS)
def test_it_sends_content_type_etag_last_modified_cache_control_and_cors(client, some_data, settings, url):
    settings.AUMAN_FEED_MAX_AGE = 123
    response = client.get(url)
    assert response["Content-Type"] == "application/geo+json"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response["ETag"])
    assert response["Last-Modified"]
    assert "public" in response["Cache-Control"] and "max-age=123" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Accept-Encoding" in response["Vary"]


@pytest.mark.parametrize("url", MY_URLS)
def test_it_answers_if_none_match_and_if_modified_since_with_304(client, some_data, url):
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == first["ETag"]
    assert client.get(url, headers={"If-Modified-Since": first["Last-Modified"]}).status_code == 304


@pytest.mark.parametrize("url", MY_URLS)
def test_it_gzips_for_clients_that_accept_it_with_an_etag_of_its_own(client, some_data, url):
    plain = client.get(url)
    zipped = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == plain.content
    assert zipped["ETag"] != plain["ETag"] and zipped["ETag"].startswith('"')
    # the compressed bytes are the same every time, so the ETag holds for conditional requests
    assert client.get(url, headers={"Accept-Encoding": "gzip"}).content == zipped.content
    conditional = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped["ETag"]})
    assert conditional.status_code == 304
    assert "Content-Encoding" not in client.get(url, headers={"Accept-Encoding": "gzip;q=0"})


@pytest.mark.parametrize("url", MY_URLS)
def test_it_answers_the_cors_preflight_and_refuses_writes(client, url):
    preflight = client.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "If-None-Match" in preflight["Access-Control-Allow-Headers"]
    assert "GET" in preflight["Access-Control-Allow-Methods"]
    assert client.post(url).status_code == 405
    assert client.delete(url).status_code == 405


@pytest.mark.parametrize("url", MY_URLS)
def test_it_answers_bad_filters_with_400_naming_each(client, url):
    response = client.get(url, {"bbox": "8.5,49.5,8.4,49.4", "updated_since": "gestern", "active_on": "bald"})
    assert response.status_code == 400
    body = response.json()
    assert body["bbox"] == [str(MSG_BBOX)]
    assert set(body) == {"bbox", "updated_since", "active_on"}
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("url", MY_URLS)
def test_it_filters_by_updated_since(client, stadtwerke, url):
    make_roadwork(stadtwerke)
    make_incident()
    assert json.loads(client.get(url, {"updated_since": "2099-01-01T00:00:00Z"}).content)["features"] == []


@pytest.mark.django_db(transaction=True)
def test_a_change_is_in_every_registered_feeds_next_answer(client):
    # Committed for real: the fingerprints tell transactions apart, one test transaction would hide that.
    # The test settings take the fingerprint on every request; the production memo is tested below.
    org = Organisation.objects.create(name="Stadtwerke Mannheim", kind=Organisation.Kind.UTILITY)
    urls = [reverse(feed.url_name) for feed in FEEDS.values()]
    before = {url: client.get(url)["ETag"] for url in urls}

    work = make_roadwork(org, traffic_management=TrafficManagement.FULL_CLOSURE, status=RoadworkStatus.IN_PROGRESS)
    incident = make_incident()
    after = {url: client.get(url) for url in urls}
    for url in urls:
        assert after[url]["ETag"] != before[url], url
    for key in MY_FEEDS:
        body = after[reverse(FEEDS[key].url_name)].content.decode()
        assert str(work.pk) in body or str(incident.pk) in body, key

    # and leaving: the work ended early, the incident cleared
    Roadwork.objects.filter(pk=work.pk).update(status=RoadworkStatus.COMPLETED)
    Incident.objects.filter(pk=incident.pk).update(status=IncidentStatus.CLEARED, cleared_at=incident.occurred_at)
    gone = {url: client.get(url) for url in urls}
    for url in urls:
        assert gone[url]["ETag"] != after[url]["ETag"], url
    for key in ("wzdx-workzones", "tdx-incidents"):
        body = gone[reverse(FEEDS[key].url_name)].content.decode()
        assert str(work.pk) not in body and str(incident.pk) not in body, key


@pytest.mark.django_db(transaction=True)
def test_with_the_production_memo_a_change_is_served_once_the_fingerprint_seconds_pass(client, settings, monkeypatch):
    from traffic.feeds import http

    settings.AUMAN_FEED_FINGERPRINT_SECONDS = 1.0
    clock = [1000.0]
    monkeypatch.setattr(http.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(http, "_recent_fingerprints", {})
    org = Organisation.objects.create(name="Stadtwerke Mannheim", kind=Organisation.Kind.UTILITY)
    urls = [reverse(feed.url_name) for feed in FEEDS.values()]
    before = {url: client.get(url)["ETag"] for url in urls}

    make_roadwork(org, traffic_management=TrafficManagement.FULL_CLOSURE, status=RoadworkStatus.IN_PROGRESS)
    make_incident()
    clock[0] += 0.5  # within the memo: the polls cost no query and answer what they answered
    assert {url: client.get(url)["ETag"] for url in urls} == before
    clock[0] += 0.5  # the memo's second is over: every feed serves the change (issue 5: within 2 s)
    after = {url: client.get(url)["ETag"] for url in urls}
    assert all(after[url] != before[url] for url in urls), [url for url in urls if after[url] == before[url]]


def test_a_304_needs_only_the_small_header_entry_and_an_evicted_body_is_built_again(client, some_data):
    from django.core.cache import cache

    from traffic.feeds.http import CACHE_KEY_PREFIX, HEADER_KEY_SUFFIX

    url = MY_URLS[0]
    first = client.get(url)
    bodies = [key for key in cache.keys(f"{CACHE_KEY_PREFIX}:*") if not key.endswith(HEADER_KEY_SUFFIX)]
    assert bodies
    for key in bodies:
        cache.delete(key)
    # the header alone answers the poll
    assert client.get(url, headers={"If-None-Match": first["ETag"]}).status_code == 304
    # a full answer builds the body again, and its ETag names the bytes it sends
    again = client.get(url)
    assert again.status_code == 200 and json.loads(again.content)["features"]
    assert again["ETag"] == f'"{hashlib.sha256(again.content).hexdigest()[:32]}"'


def test_a_fresh_build_is_cached_only_once_the_answer_has_been_sent(some_data):
    from django.core.cache import cache
    from django.core.signals import request_finished
    from django.db import close_old_connections
    from django.test import RequestFactory
    from django.urls import resolve

    from traffic.feeds.http import CACHE_KEY_PREFIX

    url = MY_URLS[0]
    response = resolve(url).func(RequestFactory().get(url))
    assert response.status_code == 200
    # The answer is ready, the cache still empty: the client does not wait for the write into Redis.
    assert cache.keys(f"{CACHE_KEY_PREFIX}:*") == []

    # What the WSGI server does after the last byte (without closing the test's database connection, as
    # Django's test client does it).
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)

    entries = cache.keys(f"{CACHE_KEY_PREFIX}:*")
    assert len(entries) == 2  # body and header
    body_key = min(entries, key=len)
    assert cache.get(body_key)[0] == response.content and cache.get(body_key)[1] == response["ETag"]
    # and the next request is answered from it, without a build
    again = resolve(url).func(RequestFactory().get(url, headers={"If-None-Match": response["ETag"]}))
    assert again.status_code == 304
