"""Getting a source's bytes: HTTP with requests (timeouts, a size limit, conditional GET) or a file on disk.

The Autobahn API is many small requests (the roads, then each road's services); they are collected into one JSON
body of the shape interop.parsers.autobahn reads, so the parse step is the same for every source."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import ExternalSource, SourceFormat

MSG_TOO_LARGE = _("The source sent more than {limit} bytes.")
MSG_HTTP_STATUS = _("The source answered HTTP {status}.")
MSG_UNREACHABLE = _("The source could not be reached: {detail}")
MSG_FILE_UNREADABLE = _("The file could not be read: {detail}")

AUTOBAHN_SERVICES = ("roadworks", "warning", "closure")


class FetchError(Exception):
    pass


@dataclass
class Fetched:
    body: bytes | None  # None: not modified since the last poll
    etag: str = ""
    last_modified: str = ""


def _limit() -> int:
    return settings.AUMAN_INTEROP_MAX_BYTES


def _headers() -> dict[str, str]:
    return {"User-Agent": settings.AUMAN_INTEROP_USER_AGENT, "Accept-Encoding": "gzip, deflate"}


@dataclass
class _Answer:
    status: int
    headers: Mapping[str, str]  # case-insensitive (requests' own)
    body: bytes


def _get(session: requests.Session, url: str, headers: dict[str, str]) -> _Answer:
    """GET with both timeouts; the body is read up to the limit (decompressed size: a small gzip cannot blow up)."""
    timeout = settings.AUMAN_INTEROP_TIMEOUT
    try:
        with session.get(url, headers=headers, timeout=(min(timeout, 10), timeout), stream=True) as response:
            chunks: list[bytes] = []
            size = 0
            if response.status_code == 200:
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > _limit():
                        raise FetchError(str(MSG_TOO_LARGE).format(limit=_limit()))
                    chunks.append(chunk)
            return _Answer(response.status_code, response.headers, b"".join(chunks))
    except requests.RequestException as exc:
        raise FetchError(str(MSG_UNREACHABLE).format(detail=exc)) from exc


def fetch_url(url: str, *, etag: str = "", last_modified: str = "") -> Fetched:
    headers = _headers()
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    with requests.Session() as session:
        response = _get(session, url, headers)
    if response.status == 304:
        return Fetched(None, etag, last_modified)
    if response.status != 200:
        raise FetchError(str(MSG_HTTP_STATUS).format(status=response.status))
    return Fetched(response.body, response.headers.get("ETag", ""), response.headers.get("Last-Modified", ""))


def fetch_file(path: str) -> Fetched:
    try:
        file = Path(path)
        if file.stat().st_size > _limit():
            raise FetchError(str(MSG_TOO_LARGE).format(limit=_limit()))
        return Fetched(file.read_bytes())
    except OSError as exc:
        raise FetchError(str(MSG_FILE_UNREADABLE).format(detail=exc)) from exc


def fetch_autobahn(base_url: str, roads: list[str]) -> Fetched:
    """Every listed road's roadworks, warnings and closures (or those of the given roads) as one body."""
    base = base_url.rstrip("/")
    collected: dict[str, list] = {service: [] for service in AUTOBAHN_SERVICES}
    total = 0
    with requests.Session() as session:

        def get_json(url: str) -> dict:
            nonlocal total
            response = _get(session, url, _headers())
            if response.status in (204, 404):  # the API's "nothing here"
                return {}
            if response.status != 200:
                raise FetchError(str(MSG_HTTP_STATUS).format(status=response.status))
            total += len(response.body)
            if total > _limit():
                raise FetchError(str(MSG_TOO_LARGE).format(limit=_limit()))
            try:
                answer = json.loads(response.body)
            except ValueError as exc:
                raise FetchError(str(MSG_UNREACHABLE).format(detail=exc)) from exc
            return answer if isinstance(answer, dict) else {}

        if not roads:
            listed = get_json(f"{base}/").get("roads") or []
            roads = [str(road) for road in listed if isinstance(road, str)]
        for road in roads:
            for service in AUTOBAHN_SERVICES:
                entries = get_json(f"{base}/{quote(road.strip(), safe='')}/services/{service}").get(service)
                if isinstance(entries, list):
                    collected[service].extend(entries)
    return Fetched(json.dumps(collected).encode())


def fetch_source(source: ExternalSource) -> Fetched:
    if source.file_path:
        return fetch_file(source.file_path)
    if source.format == SourceFormat.AUTOBAHN:
        roads = [road.strip() for road in source.roads.split(",") if road.strip()]
        return fetch_autobahn(source.url, roads)
    return fetch_url(source.url, etag=source.etag, last_modified=source.last_modified)
