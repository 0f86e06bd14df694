"""Rate limits per client: 429 with Retry-After on /feeds/, /tiles/ and /api/; trusted aggregators pass."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from auman.ratelimit import MSG_RATE_LIMITED, client_ip, parse_rate
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

FEED = "/feeds/wzdx/v4.2/workzones.geojson"


@pytest.fixture(autouse=True)
def fresh_counters():
    """Each test counts from zero (the counters live in Redis and outlive a test's transaction)."""
    for pattern in ("ratelimit:*", "throttle_*", "token-failures:*"):
        cache.delete_pattern(pattern)
    yield
    for pattern in ("ratelimit:*", "throttle_*", "token-failures:*"):
        cache.delete_pattern(pattern)


def _from(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def test_the_feeds_answer_429_with_retry_after_once_a_client_used_its_share(settings, monkeypatch):
    from auman import ratelimit

    settings.AUMAN_RATE_FEEDS = "3/m"
    # 17.5 s into a one-minute window: the client must wait the rest of it, 42.5 s, rounded up.
    monkeypatch.setattr(ratelimit.time, "time", lambda: 60 * 29_000_000 + 17.5)
    client = _from("203.0.113.7")
    assert [client.get(FEED).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(FEED)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "43"
    assert refused.json()["detail"] == str(MSG_RATE_LIMITED).format(seconds=43)


def test_the_feed_limit_is_per_client(settings):
    settings.AUMAN_RATE_FEEDS = "1/m"
    assert _from("203.0.113.8").get(FEED).status_code == 200
    assert _from("203.0.113.8").get(FEED).status_code == 429
    assert _from("203.0.113.9").get(FEED).status_code == 200


def test_signed_in_users_are_counted_per_user_not_per_address(settings, alice, erin):
    settings.AUMAN_RATE_FEEDS = "1/m"
    first, second = _from("198.51.100.1"), _from("198.51.100.1")
    first.force_login(alice)
    second.force_login(erin)
    assert first.get(FEED).status_code == 200
    assert second.get(FEED).status_code == 200
    assert first.get(FEED).status_code == 429


def test_tiles_are_limited_by_path_before_any_view(settings):
    settings.AUMAN_RATE_TILES = "1/m"
    client = _from("203.0.113.10")
    assert client.get("/tiles/roadworks/1/2/3.mvt").status_code != 429
    refused = client.get("/tiles/roadworks/1/2/3.mvt")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1


def test_other_pages_are_not_limited_by_the_feed_limit(settings):
    settings.AUMAN_RATE_FEEDS = "1/m"
    client = _from("203.0.113.11")
    assert [client.get("/healthz").status_code != 429 for _ in range(3)] == [True, True, True]


def test_trusted_aggregators_are_exempt_by_address_or_token(settings):
    settings.AUMAN_RATE_FEEDS = "1/m"
    settings.AUMAN_RATE_EXEMPT_IPS = ["192.0.2.0/24"]
    settings.AUMAN_RATE_EXEMPT_TOKENS = ["aggregator-secret-1"]
    assert [_from("192.0.2.44").get(FEED).status_code for _ in range(3)] == [200, 200, 200]
    client = _from("203.0.113.12")
    assert [client.get(FEED, HTTP_AUTHORIZATION="Token aggregator-secret-1").status_code for _ in range(3)] == [
        200,
        200,
        200,
    ]


def test_the_api_answers_429_with_retry_after_per_anonymous_address(settings):
    settings.AUMAN_RATE_API_ANON = "2/m"
    client = client_for(None)
    codes = [client.get("/api/v1/accident-codes/", REMOTE_ADDR="203.0.113.20").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = client.get("/api/v1/accident-codes/", REMOTE_ADDR="203.0.113.20")
    assert int(refused["Retry-After"]) >= 1
    assert client.get("/api/v1/accident-codes/", REMOTE_ADDR="203.0.113.21").status_code == 200


def test_the_api_counts_token_users_per_user(settings, alice, erin):
    settings.AUMAN_RATE_API_USER = "2/m"
    alice_client, erin_client = client_for(alice), client_for(erin)
    assert [alice_client.get("/api/v1/roadworks/").status_code for _ in range(3)] == [200, 200, 429]
    assert erin_client.get("/api/v1/roadworks/").status_code == 200


def test_an_exempt_token_is_not_throttled_in_the_api(settings):
    settings.AUMAN_RATE_API_ANON = "1/m"
    settings.AUMAN_RATE_EXEMPT_TOKENS = ["aggregator-secret-2"]
    client = Client(REMOTE_ADDR="203.0.113.22")
    # A configured aggregator key that is no DRF token: the API treats the caller as anonymous but never limits it.
    codes = [
        client.get("/api/v1/accident-codes/", HTTP_AUTHORIZATION="Bearer aggregator-secret-2").status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 200]


def test_a_spoofed_x_forwarded_for_does_not_give_a_fresh_address(settings, rf):
    settings.AUMAN_PROXY_COUNT = 0
    request = rf.get("/", REMOTE_ADDR="203.0.113.30", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert client_ip(request) == "203.0.113.30"
    settings.AUMAN_PROXY_COUNT = 1
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.31")
    assert client_ip(request) == "203.0.113.31"


@pytest.mark.parametrize(("rate", "expected"), [("120/m", (120, 60)), ("5/second", (5, 1)), ("1000/d", (1000, 86400))])
def test_rates_are_read_as_count_per_period(rate, expected):
    assert parse_rate(rate) == expected


def test_a_malformed_rate_stops_the_start_with_a_message():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "auman.settings", "AUMAN_RATE_FEEDS": "viele"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "AUMAN_RATE_FEEDS must look like 120/m" in result.stderr
