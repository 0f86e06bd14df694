"""Protection against guessing (logins and API tokens) and the headers Django has no setting for.

See docs/security.md for the whole picture (CSP, cookies, lockout, rate limits).
"""

from __future__ import annotations

from collections.abc import Callable

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from .ratelimit import client_ip, is_exempt

MSG_TOKEN_GUESSING = _("Too many requests with an invalid token. Please wait {seconds} seconds.")
MSG_LOCKED_OUT = _(
    "Too many failed logins. For your protection this sign-in is blocked for {minutes} minutes. "
    "Please try again later or ask your administrator to reset your password."
)

# Failed token look-ups are counted in windows of this many seconds.
TOKEN_FAILURE_WINDOW_S = 15 * 60


class SecurityHeadersMiddleware:
    """Permissions-Policy (Django has no setting for it before 6.0)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", settings.AUMAN_PERMISSIONS_POLICY)
        return response


class LockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for the login page and the admin's.

    Without a request (manage.py shell, a test client's login()) there is no address to lock: such calls come
    from someone already on the server, so they are let through to the password check instead of failing.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _token_failures_key(request) -> str:
    return f"token-failures:{client_ip(request)}"


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF token authentication that stops an address after AUMAN_TOKEN_FAILURE_LIMIT invalid tokens in
    15 minutes. DRF throttles run only after authentication succeeded, so they cannot see token guessing."""

    def authenticate(self, request):
        key = _token_failures_key(request)
        limit = settings.AUMAN_TOKEN_FAILURE_LIMIT
        exempt = is_exempt(request)
        if not exempt and (cache.get(key) or 0) >= limit:
            raise exceptions.Throttled(
                wait=TOKEN_FAILURE_WINDOW_S,
                detail=str(MSG_TOKEN_GUESSING).format(seconds=TOKEN_FAILURE_WINDOW_S),
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if not exempt:
                try:
                    cache.add(key, 0, timeout=TOKEN_FAILURE_WINDOW_S)
                    cache.incr(key)
                except Exception:  # noqa: BLE001, S110 - counting is best effort when the cache is down
                    pass
            raise


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login: the login page's look, 429 and when to come back."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    response = render(
        request, "registration/locked_out.html", {"message": str(MSG_LOCKED_OUT).format(minutes=minutes)}, status=429
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
