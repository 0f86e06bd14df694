"""The per-process memo of gzipped feed bodies: a full answer to a gzip client reads no body from Redis."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from django.core.cache import cache

from tests.conftest import make_roadwork
from traffic.feeds import http
from traffic.feeds.http import CACHE_KEY_PREFIX, GZIP_KEY_SUFFIX

from .conftest import WZDX_URL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_memo(monkeypatch):
    monkeypatch.setattr(http, "_local_gzip", OrderedDict())


def _gzip_keys() -> list[str]:
    return [key for key in cache.keys(f"{CACHE_KEY_PREFIX}:*") if key.endswith(GZIP_KEY_SUFFIX)]


def test_it_serves_a_gzip_client_from_the_memo_without_reading_or_compressing_the_body_again(client, stadtwerke):
    make_roadwork(stadtwerke)
    first = client.get(WZDX_URL, headers={"Accept-Encoding": "gzip"})
    assert first["Content-Encoding"] == "gzip"
    for key in _gzip_keys():
        cache.delete(key)

    again = client.get(WZDX_URL, headers={"Accept-Encoding": "gzip"})

    assert again.status_code == 200 and again["Content-Encoding"] == "gzip"
    assert again.content == first.content and again["ETag"] == first["ETag"]
    # Nothing was compressed and written again: the bytes came from this process.
    assert _gzip_keys() == []


def test_a_changed_feed_is_not_answered_from_the_memo(client, stadtwerke):
    work = make_roadwork(stadtwerke)
    first = client.get(WZDX_URL, headers={"Accept-Encoding": "gzip"})
    work.title = "Neuer Titel"
    work.save()

    again = client.get(WZDX_URL, headers={"Accept-Encoding": "gzip"})

    assert again["ETag"] != first["ETag"] and again.content != first.content


def test_the_memo_keeps_the_newest_bodies_within_its_bound(monkeypatch):
    monkeypatch.setattr(http, "LOCAL_GZIP_BYTES", 400)
    for number in range(6):
        http._remember_gzip(f'"etag-{number}"', bytes(100))
    http._remember_gzip('"too-big"', bytes(101))  # over a quarter of the bound: not kept at all

    assert list(http._local_gzip) == ['"etag-2"', '"etag-3"', '"etag-4"', '"etag-5"']
