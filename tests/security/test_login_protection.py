"""Guessing passwords or API tokens is stopped: login lockout (django-axes) and a limit on invalid tokens."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import translation

from auman.security import MSG_LOCKED_OUT, MSG_TOKEN_GUESSING, TOKEN_FAILURE_WINDOW_S

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.delete_pattern("token-failures:*")
    yield
    cache.delete_pattern("token-failures:*")


def _try(client: Client, password: str):
    return client.post(LOGIN, {"username": "alice", "password": password})


def test_it_locks_a_user_name_out_after_five_wrong_passwords_from_one_address(alice, settings):
    settings.AXES_FAILURE_LIMIT = 5
    client = Client(REMOTE_ADDR="203.0.113.50")
    codes = [_try(client, f"guess-{n}").status_code for n in range(5)]
    assert codes[:4] == [200, 200, 200, 200]  # the form again, with its error
    locked = _try(client, "pw-alice-1")  # even the right password no longer works
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    with translation.override("de"):
        german = str(MSG_LOCKED_OUT).format(minutes=minutes)
    assert german in locked.content.decode()
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())


def test_the_lockout_holds_the_user_name_and_address_pair_only(alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    guesser = Client(REMOTE_ADDR="203.0.113.52")
    for _ in range(3):
        _try(guesser, "wrong")
    assert _try(guesser, "pw-alice-1").status_code == 429
    # alice at her own desk still gets in.
    desk = Client(REMOTE_ADDR="198.51.100.52")
    response = _try(desk, "pw-alice-1")
    assert response.status_code == 302 and desk.session["_auth_user_id"] == str(alice.pk)


def test_a_successful_login_resets_the_count(alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client(REMOTE_ADDR="203.0.113.53")
    _try(client, "wrong")
    _try(client, "wrong")
    assert _try(client, "pw-alice-1").status_code == 302
    client.post("/accounts/logout/")
    _try(client, "wrong")
    _try(client, "wrong")
    assert _try(client, "pw-alice-1").status_code == 302


def test_the_admin_login_is_locked_too(alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client(REMOTE_ADDR="203.0.113.54")
    for _ in range(2):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/admin/login/", {"username": "alice", "password": "wrong"}).status_code == 429


def test_guessing_api_tokens_is_stopped_per_address(settings, api, alice):
    settings.AUMAN_TOKEN_FAILURE_LIMIT = 3
    guesser = Client(REMOTE_ADDR="203.0.113.55")
    codes = [guesser.get("/api/v1/roadworks/", HTTP_AUTHORIZATION=f"Token {n:040x}").status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]
    refused = guesser.get("/api/v1/roadworks/", HTTP_AUTHORIZATION="Token 0")
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith(str(MSG_TOKEN_GUESSING).format(seconds=TOKEN_FAILURE_WINDOW_S))
    assert int(refused["Retry-After"]) == TOKEN_FAILURE_WINDOW_S
    # Other addresses and valid tokens elsewhere are unaffected.
    assert api(alice).get("/api/v1/roadworks/", REMOTE_ADDR="198.51.100.55").status_code == 200
