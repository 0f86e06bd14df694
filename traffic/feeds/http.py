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

import functools
import gzip
import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers, quote_etag
from django.utils.http import http_date

# How long built bytes stay in the cache. A change to the data makes a new key at once, so this
# only bounds two things: how old feed_info.update_date (the build time) can get while nothing
# changes, and how long bytes for a variant nobody asks for again (an odd bbox) take up memory.
CACHE_SECONDS = 3600

CACHE_KEY_PREFIX = "feed"

# (body, etag, built_at as a Unix timestamp). A plain tuple, not a class: a pickled class would
# break cache reads whenever it is renamed or moved.
CachedFeed = tuple[bytes, str, int]

# Bodies smaller than this go out as they are: gzip's header would eat the saving (Django's GZipMiddleware
# uses the same bound).
GZIP_MIN_BYTES = 200
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")
# (etag, built_at, body length): what a 304 needs, under the body's key plus this suffix.
FeedHeader = tuple[str, int, int]
HEADER_KEY_SUFFIX = ":h"
# The gzipped variant has its own cache entry under the identity entry's key plus this suffix, made on the
# first request that accepts gzip: a build that no gzip client asks for costs no compression.
GZIP_KEY_SUFFIX = ":gz"


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


def _accepts_gzip(request: HttpRequest) -> bool:
    # q=0 ("gzip;q=0") is a refusal; nobody sends it, but honouring it costs one check.
    header = request.headers.get("Accept-Encoding", "")
    return bool(_ACCEPTS_GZIP.search(header)) and not re.search(r"\bgzip\s*;\s*q=0(\.0*)?\b", header)


def gzip_etag(etag: str) -> str:
    """The strong ETag of the gzipped variant. A different representation needs a different strong ETag
    (RFC 9110 8.8.3); derived from the identity one, it changes exactly when the content does, and a 304 can be
    answered without reading the compressed bytes."""
    return quote_etag(etag.strip('"') + "-gzip")


# The gzipped bodies this process sent last, by the identity ETag they were compressed from, newest last, up to
# this many bytes in all. A full answer to a gzip client then costs one small Redis read (the header entry, which
# still decides what is current) instead of reading megabytes from Redis and unpickling them on every request.
# The ETag names the uncompressed bytes (a hash of them) and gzip with mtime=0 always makes the same bytes of
# them, so an entry can never be paired with other content, whichever feed, variant or fingerprint it came from.
LOCAL_GZIP_BYTES = 32 * 1024 * 1024
_local_gzip: OrderedDict[str, bytes] = OrderedDict()
_local_gzip_lock = threading.Lock()


def _remember_gzip(etag: str, compressed: bytes) -> None:
    if len(compressed) > LOCAL_GZIP_BYTES // 4:  # one huge body must not push out every other feed
        return
    with _local_gzip_lock:
        _local_gzip[etag] = compressed
        _local_gzip.move_to_end(etag)
        total = sum(len(body) for body in _local_gzip.values())
        while total > LOCAL_GZIP_BYTES:
            total -= len(_local_gzip.popitem(last=False)[1])


def _cached_gzip(key: str, etag: str) -> bytes | None:
    """The gzipped variant of the body with this identity ETag, if it was compressed already."""
    with _local_gzip_lock:
        compressed = _local_gzip.get(etag)
    if compressed is not None:
        return compressed
    entry: tuple[bytes, str] | None = cache.get(key + GZIP_KEY_SUFFIX)
    # The identity ETag is part of the entry, so compressed bytes can never be paired with another body.
    if entry is None or entry[1] != etag:
        return None
    _remember_gzip(etag, entry[0])
    return entry[0]


def _gzip_and_cache(key: str, body: bytes, etag: str) -> bytes:
    # mtime=0: the same body always compresses to the same bytes.
    compressed = gzip.compress(body, compresslevel=6, mtime=0)
    cache.set(key + GZIP_KEY_SUFFIX, (compressed, etag), CACHE_SECONDS)
    _remember_gzip(etag, compressed)
    return compressed


def preflight(request: HttpRequest) -> HttpResponse:
    """The CORS preflight a browser sends before a GET with If-None-Match (not a safelisted header)."""
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
    response["Access-Control-Allow-Headers"] = "If-None-Match, If-Modified-Since"
    response["Access-Control-Max-Age"] = "86400"
    response["Allow"] = "GET, HEAD, OPTIONS"
    return _cors(response)


def feed_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For feed views: GET and HEAD go to the view, OPTIONS gets the CORS preflight, anything else 405."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            return preflight(request)
        if request.method not in ("GET", "HEAD"):
            response = HttpResponse(status=405)
            response["Allow"] = "GET, HEAD, OPTIONS"
            return _cors(response)
        return view(request, *args, **kwargs)

    return wrapper


def bad_request(errors: Mapping[str, list[str]]) -> JsonResponse:
    """A 400 naming each bad parameter, shaped like the REST API's errors; readable cross-origin."""
    response = JsonResponse({name: [str(message) for message in messages] for name, messages in errors.items()})
    response.status_code = 400
    return _cors(response)


# The fingerprint of each feed variant this process took last, with its monotonic time: within
# AUMAN_FEED_FINGERPRINT_SECONDS it is reused, so polling clients (mostly answered 304) cost a dictionary look-up
# instead of a query over every row of the feed. A change is still served within that many seconds.
_recent_fingerprints: dict[str, tuple[float, str]] = {}
_recent_lock = threading.Lock()


def recent_fingerprint(name: str, variant: Mapping[str, str], take: Callable[[], str]) -> str:
    """take() at most once per AUMAN_FEED_FINGERPRINT_SECONDS per feed variant and process."""
    seconds = settings.AUMAN_FEED_FINGERPRINT_SECONDS
    if seconds <= 0:
        return take()
    key = cache_key(name, "", variant)
    now = time.monotonic()
    with _recent_lock:
        remembered = _recent_fingerprints.get(key)
    if remembered is not None and now - remembered[0] < seconds:
        return remembered[1]
    value = take()
    with _recent_lock:
        if len(_recent_fingerprints) > 10_000:  # odd bboxes: do not grow without bound
            _recent_fingerprints.clear()
        _recent_fingerprints[key] = (now, value)
    return value


def body_etag(body: bytes) -> str:
    """A strong ETag: it names these exact bytes, so byte-range and If-Match semantics hold too, and bytes built
    again unchanged (a GeoJSON feed after its entry was evicted) keep their ETag. SHA-256 because the CPU does it
    (SHA-NI): 6.7 ms for 12 MB where BLAKE2b took 12.7 ms; 128 bits of it are plenty to tell versions apart."""
    return quote_etag(hashlib.sha256(body).hexdigest()[:32])


def _build_entry(build: Callable[[datetime], bytes]) -> CachedFeed:
    now = timezone.now()
    body = build(now)
    return body, body_etag(body), int(now.timestamp())


def _store(key: str, entry: CachedFeed) -> None:
    cache.set(key, entry, CACHE_SECONDS)
    cache.set(key + HEADER_KEY_SUFFIX, (entry[1], entry[2], len(entry[0])), CACHE_SECONDS)


class FeedResponse(HttpResponse):
    """A response that writes the freshly built feed into the cache once it has been sent.

    The WSGI server calls close() after the last byte has gone out (Django's test client does the same), so the
    client that waited for a cold build does not also wait for megabytes to travel into Redis: 50 ms for a 12 MB
    WZDx feed, 200 ms for DATEX II. Requests arriving meanwhile find no entry and build as they would during the
    build itself."""

    after_send: Callable[[], None] | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            job, self.after_send = self.after_send, None
            if job is not None:
                job()


def serve_feed(
    request: HttpRequest,
    *,
    name: str,
    fingerprint: str | Callable[[], str],
    build: Callable[[datetime], bytes],
    content_type: str,
    variant: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Answer a GET or HEAD for a feed: cached bytes when the fingerprint is unchanged, else a fresh build.

    ``fingerprint`` is the string, or a callable taking it: a callable is reused for
    AUMAN_FEED_FINGERPRINT_SECONDS (recent_fingerprint), which is what lets busy feeds answer polls cheaply.

    ``build(now)`` gets the build time, which the feed should write as its own generation time.

    Last-Modified is that build time, not the newest ``updated_at`` among the rows: a deleted row, or
    one that left the feed because its status or end changed, leaves max(updated_at) where it was,
    and a client sending only If-Modified-Since would then be told "304" about a changed feed.
    The build time moves forward with every change the fingerprint sees. It has one-second
    resolution, like every HTTP date; clients that need more send If-None-Match, which wins.

    The fingerprint must be taken before ``build`` reads the rows: bytes built from data newer
    than the fingerprint are harmless (the next request sees a new fingerprint and rebuilds),
    bytes older than their key would be stale until the data changed again.

    Bytes this request built go into the cache after the answer has been sent (FeedResponse.close), except on a
    304, which is answered at once anyway.
    """
    if callable(fingerprint):
        fingerprint = recent_fingerprint(name, variant or {}, fingerprint)
    key = cache_key(name, fingerprint, variant or {})
    # The small header entry first: a 304, the answer most polls get, then reads no body at all, and a gzip
    # client reads only the compressed body (a 10,000-item feed is megabytes; unpickling it per request was
    # what limited serving).
    header: FeedHeader | None = cache.get(key + HEADER_KEY_SUFFIX)
    entry: CachedFeed | None = None
    built: CachedFeed | None = None  # built by this request: cached once the answer is out (FeedResponse)
    if header is None:
        entry = cache.get(key)
        if entry is None:
            entry = built = _build_entry(build)
        else:
            cache.set(key + HEADER_KEY_SUFFIX, (entry[1], entry[2], len(entry[0])), CACHE_SECONDS)
        header = (entry[1], entry[2], len(entry[0]))
    etag, built_at, size = header

    # Compressed here rather than by GZipMiddleware: the middleware would compress again on every request and
    # weaken the ETag to W/ (it cannot know the compressed bytes are stable); here both happen once per change.
    compress = size >= GZIP_MIN_BYTES and _accepts_gzip(request)
    identity_etag = etag
    if compress:
        etag = gzip_etag(etag)

    response = FeedResponse(content_type=content_type)
    patch_vary_headers(response, ("Accept-Encoding",))
    response["ETag"] = etag
    response["Last-Modified"] = http_date(built_at)
    patch_cache_control(response, public=True, max_age=settings.AUMAN_FEED_MAX_AGE)
    # Django's own precondition logic (RFC 9110 13.2.2): If-None-Match first, If-Modified-Since only
    # without it; a 304 keeps ETag, Last-Modified and Cache-Control from the full response.
    conditional = get_conditional_response(request, etag=etag, last_modified=built_at, response=response)
    if conditional is not response:  # 304 (or 412): no body needed, none read or compressed
        if built is not None:  # rebuilt to the bytes the client has: a 304 is short, store at once
            _store(key, built)
        return _cors(conditional)

    compressed = _cached_gzip(key, identity_etag) if compress else None
    if compressed is None:
        if entry is None:
            entry = cache.get(key)
        if entry is None or entry[1] != identity_etag:
            # The body was evicted (or replaced) while its header stayed: build again and answer with what
            # was built, under its own ETag, so header and body never disagree.
            entry = built = _build_entry(build)
            identity_etag, built_at = entry[1], entry[2]
            response["ETag"] = gzip_etag(identity_etag) if compress else identity_etag
            response["Last-Modified"] = http_date(built_at)
        if compress:
            compressed = _gzip_and_cache(key, entry[0], identity_etag)
    if compress:
        response.content = compressed
        response["Content-Encoding"] = "gzip"
    else:
        response.content = entry[0]
    if built is not None:
        response.after_send = functools.partial(_store, key, built)
    return _cors(response)
