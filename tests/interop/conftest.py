"""Fixtures of the interop tests: feed files in Mannheim, sources reading them, and a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from interop.models import ExternalSource
from tests.conftest import KAISERRING_NEARBY, NECKARAU

# A point far outside the service area (Honolulu, from the HIDOT example).
HONOLULU = [(-157.88804, 21.33274), (-157.88767, 21.33261)]


def wzdx_feature(item_id: str, coords=KAISERRING_NEARBY, **properties: Any) -> dict:
    core = {
        "data_source_id": "1",
        "event_type": "work-zone",
        "road_names": ["Kaiserring"],
        "direction": "northbound",
        "name": properties.pop("name", f"Baustelle {item_id}"),
        "description": properties.pop("description", ""),
    }
    props = {
        "core_details": core,
        "start_date": "2027-03-01T06:00:00Z",
        "end_date": "2027-03-20T16:00:00Z",
        "location_method": "channel-device-method",
        "is_start_date_verified": False,
        "is_end_date_verified": False,
        "is_start_position_verified": False,
        "is_end_position_verified": False,
        "vehicle_impact": "some-lanes-closed",
        **properties,
    }
    return {
        "id": item_id,
        "type": "Feature",
        "properties": props,
        "geometry": {"type": "LineString", "coordinates": [list(c) for c in coords]},
    }


def wzdx_feed(*features: dict) -> bytes:
    feed = {
        "feed_info": {"publisher": "Rhein-Neckar-Kreis", "version": "4.2", "update_date": "2027-02-01T00:00:00Z"},
        "type": "FeatureCollection",
        "features": list(features),
    }
    return json.dumps(feed).encode()


@pytest.fixture
def feed_file(tmp_path: Path) -> Callable[[bytes, str], Path]:
    def write(body: bytes, name: str = "feed.json") -> Path:
        path = tmp_path / name
        path.write_bytes(body)
        return path

    return write


@pytest.fixture
def file_source(db, feed_file) -> Callable[..., ExternalSource]:
    """file_source(body, format="wzdx", **fields): a source reading `body` from a file (write again to change)."""

    def make(body: bytes, fmt: str = "wzdx", name: str = "Nachbarstadt", **fields: Any) -> ExternalSource:
        path = feed_file(body, f"{name}.feed")
        return ExternalSource.objects.create(
            name=name, file_path=str(path), format=fmt, poll_interval=timedelta(minutes=5), **fields
        )

    return make


def rewrite(source: ExternalSource, body: bytes) -> None:
    Path(source.file_path).write_bytes(body)


class FeedServer:
    """A local HTTP server: routes path -> (status, headers, body); records each request's path and headers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                status, headers, body = server.routes.get(self.path, (404, {}, b""))
                if status == 200 and "ETag" in headers and self.headers.get("If-None-Match") == headers["ETag"]:
                    status, body = 304, b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


__all__ = ["HONOLULU", "NECKARAU", "rewrite", "wzdx_feature", "wzdx_feed"]
