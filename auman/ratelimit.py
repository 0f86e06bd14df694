"""Rate limits per client: DRF throttles for /api/, a middleware for /feeds/ and /tiles/.

A client is its user when signed in, else its address. Limits are fixed windows counted in the Django
cache (Redis): one INCR per request, shared by every web process. Trusted aggregators (AUMAN_RATE_EXEMPT_IPS,
AUMAN_RATE_EXEMPT_TOKENS) are never limited. When Redis is down, requests pass: a feed outage would be worse
than an uncounted minute.

The feed and tile views are other modules' business, so their limit is applied here by path, before any view
runs; a new feed under /feeds/ is limited without touching it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)

MSG_RATE_LIMITED = _("Too many requests. Please wait {seconds} seconds before asking again.")

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Path prefix -> name of the setting holding its limit. Checked in order.
LIMITED_PREFIXES = (("/feeds/", "AUMAN_RATE_FEEDS"), ("/tiles/", "AUMAN_RATE_TILES"))


def parse_rate(rate: str) -> tuple[int, int]:
    """'120/m' -> (120, 60). Also accepts DRF's spelled-out periods ('120/minute')."""
    try:
        count, period = rate.split("/")
        return int(count), PERIODS[period.strip()[0]]
    except (ValueError, KeyError, IndexError) as exc:
        raise ImproperlyConfigured(f"A rate must look like 120/m (count/s, m, h or d), not {rate!r}") from exc


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind AUMAN_PROXY_COUNT proxies, the address the outermost one saw; the rest
    of X-Forwarded-For is the client's own say and must not count (it would let anyone pick a fresh address)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.AUMAN_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return remote


@lru_cache(maxsize=32)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise ImproperlyConfigured(f"AUMAN_RATE_EXEMPT_IPS holds an entry that is no address: {exc}") from exc


def _presented_token(request: HttpRequest) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, key = header.partition(" ")
    return key.strip() if scheme.lower() in ("token", "bearer") and key.strip() else None


def is_exempt(request: HttpRequest) -> bool:
    token = _presented_token(request)
    if token and token in settings.AUMAN_RATE_EXEMPT_TOKENS:
        return True
    if not settings.AUMAN_RATE_EXEMPT_IPS:
        return False
    try:
        address = ipaddress.ip_address(client_ip(request))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(settings.AUMAN_RATE_EXEMPT_IPS)))


def hit(key: str, rate: str) -> int | None:
    """Counts one request against the key's current window; returns the seconds to wait when over the limit,
    else None."""
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    cache_key = f"ratelimit:{key}:{period}:{window}"
    try:
        # add() starts the window (and its expiry) only once; incr() is atomic in Redis.
        cache.add(cache_key, 0, timeout=period + 1)
        count = cache.incr(cache_key)
    except ValueError:
        # The key vanished between add and incr (eviction, or Redis restarted): count this one as the first.
        return None
    except Exception:
        logger.warning("rate limit not counted: cache unavailable", exc_info=True)
        return None
    if count is None or count <= limit:
        return None
    return max(1, math.ceil((window + 1) * period - now))


def client_key(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request)}"


def too_many_requests(wait: int) -> HttpResponse:
    response = JsonResponse({"detail": str(MSG_RATE_LIMITED).format(seconds=wait)}, status=429)
    response["Retry-After"] = str(wait)
    return response


class RateLimitMiddleware:
    """Limits /feeds/ and /tiles/ per client (AUMAN_RATE_FEEDS, AUMAN_RATE_TILES)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for prefix, setting in LIMITED_PREFIXES:
            if request.path.startswith(prefix):
                if not is_exempt(request):
                    wait = hit(f"{prefix.strip('/')}:{client_key(request)}", getattr(settings, setting))
                    if wait is not None:
                        return too_many_requests(wait)
                break
        return self.get_response(request)


class _SettingsRateMixin:
    """Reads the rate from settings at each request (DRF reads it once at import), and lets exempt clients by."""

    rate_setting = ""

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)

    def allow_request(self, request, view) -> bool:
        if is_exempt(request):
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = parse_rate(self.rate)
        return super().allow_request(request, view)  # type: ignore[misc]

    def get_ident(self, request) -> str:
        return client_ip(request)


class ApiAnonThrottle(_SettingsRateMixin, AnonRateThrottle):
    rate_setting = "AUMAN_RATE_API_ANON"


class ApiUserThrottle(_SettingsRateMixin, UserRateThrottle):
    rate_setting = "AUMAN_RATE_API_USER"
