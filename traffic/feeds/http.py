"""Serving feed bytes: built once per change of the source data, cached, and answered conditionally.

Every feed module (WZDx, DATEX II, CIFS, ...) supplies three things:

- a *fingerprint*: a short string from one cheap query that changes whenever any row the feed shows
  changes, appears or disappears (see ``traffic.feeds.wzdx.workzone_fingerprint``);
- a *build* callable that turns the rows into bytes, called only when the cache has nothing for
  that fingerprint;
- the *variant*: the validated query parameters and anything else the bytes depend on.

The fingerprint is taken on every request, so a change shows in the very next answer; the expensive
build runs once per change and the result is shared by all workers through the Django cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, quote_etag
from django.utils.http import http_date

# How long built bytes stay in the cache. A change to the data makes a new key at once, so this
# only bounds two things: how old feed_info.update_date (the build time) can get while nothing
# changes, and how long bytes for a variant nobody asks for again (an odd bbox) take up memory.
CACHE_SECONDS = 3600

CACHE_KEY_PREFIX = "feed"

# (body, etag, built_at as a Unix timestamp). A plain tuple, not a class: a pickled class would
# break cache reads whenever it is renamed or moved.
CachedFeed = tuple[bytes, str, int]


def cache_key(name: str, fingerprint: str, variant: Mapping[str, str]) -> str:
    """The cache key for one feed, state of the data and set of parameters."""
    material = "\x1f".join([fingerprint, *(f"{k}={v}" for k, v in sorted(variant.items()))])
    return f"{CACHE_KEY_PREFIX}:{name}:{hashlib.sha256(material.encode()).hexdigest()}"


def _cors(response: HttpResponse) -> HttpResponse:
    # Feeds are public data for any web client. ETag is not a CORS-safelisted response header,
    # so scripts polling with If-None-Match must be allowed to read it.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = "ETag"
    return response


def bad_request(errors: Mapping[str, list[str]]) -> JsonResponse:
    """A 400 naming each bad parameter, shaped like the REST API's errors; readable cross-origin."""
    response = JsonResponse({name: [str(message) for message in messages] for name, messages in errors.items()})
    response.status_code = 400
    return _cors(response)


def _build_entry(build: Callable[[datetime], bytes]) -> CachedFeed:
    now = timezone.now()
    body = build(now)
    # A strong ETag: it names these exact bytes, so byte-range and If-Match semantics hold too.
    etag = quote_etag(hashlib.blake2b(body, digest_size=16).hexdigest())
    return body, etag, int(now.timestamp())


def serve_feed(
    request: HttpRequest,
    *,
    name: str,
    fingerprint: str,
    build: Callable[[datetime], bytes],
    content_type: str,
    variant: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Answer a GET or HEAD for a feed: cached bytes when the fingerprint is unchanged, else a fresh build.

    ``build(now)`` gets the build time, which the feed should write as its own generation time.

    Last-Modified is that build time, not the newest ``updated_at`` among the rows: a deleted row, or
    one that left the feed because its status or end changed, leaves max(updated_at) where it was,
    and a client sending only If-Modified-Since would then be told "304" about a changed feed.
    The build time moves forward with every change the fingerprint sees. It has one-second
    resolution, like every HTTP date; clients that need more send If-None-Match, which wins.

    The fingerprint must be taken before ``build`` reads the rows: bytes built from data newer
    than the fingerprint are harmless (the next request sees a new fingerprint and rebuilds),
    bytes older than their key would be stale until the data changed again.
    """
    key = cache_key(name, fingerprint, variant or {})
    entry: CachedFeed | None = cache.get(key)
    if entry is None:
        entry = _build_entry(build)
        cache.set(key, entry, CACHE_SECONDS)
    body, etag, built_at = entry

    response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    response["Last-Modified"] = http_date(built_at)
    patch_cache_control(response, public=True, max_age=settings.AUMAN_FEED_MAX_AGE)
    # Django's own precondition logic (RFC 9110 13.2.2): If-None-Match first, If-Modified-Since only
    # without it; a 304 keeps ETag, Last-Modified and Cache-Control from the full response.
    return _cors(get_conditional_response(request, etag=etag, last_modified=built_at, response=response))
