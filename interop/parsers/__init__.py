"""Parsers of external feeds: pure functions from the bytes a source sent to normalised items.

Each module (one per format) has `parse(data: bytes) -> ParseResult`. A parser is lenient: a record it cannot use
(no id, no usable geometry, an unknown kind of thing) is skipped and named in `skipped` with the reason, and the rest
goes on. Only a body that is not the format at all (not JSON, not XML, the wrong root) raises FeedError.

Geometry leaves the parsers as GeoJSON geometry objects in WGS84 (lon/lat); the ingestion checks the service area
and transforms them in PostGIS.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

MSG_NO_ID = _("no id")
MSG_NO_GEOMETRY = _("no usable geometry")
MSG_BAD_COORDINATES = _("coordinates out of range or not numbers")
MSG_DUPLICATE_ID = _("the id occurs more than once in the feed; the first record was kept")
MSG_UNSUPPORTED_RECORD = _("record type {kind} is not read")


class FeedError(ValueError):
    """The body is not a feed of the expected format at all; nothing of it can be used."""


@dataclass
class Item:
    source_item_id: str
    kind: str  # interop.models.ItemKind
    geometry: dict[str, Any]  # GeoJSON geometry, WGS84
    title: str = ""
    description: str = ""
    start: datetime | None = None
    end: datetime | None = None
    restriction: str = ""  # interop.models.Restriction
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    record: str  # the source's id, or where in the feed the record was
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"record": self.record, "reason": self.reason}


@dataclass
class ParseResult:
    items: list[Item] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, record: Any, reason: Any, **kwargs: Any) -> None:
        self.skipped.append(Skipped(str(record)[:300], str(reason).format(**kwargs)))

    def add(self, item: Item) -> None:
        self.items.append(item)

    def deduplicated(self) -> ParseResult:
        """The same id twice would make one upsert touch one row twice: the first wins, the others are skipped."""
        seen: set[str] = set()
        result = ParseResult(skipped=list(self.skipped))
        for item in self.items:
            if item.source_item_id in seen:
                result.skip(item.source_item_id, MSG_DUPLICATE_ID)
                continue
            seen.add(item.source_item_id)
            result.items.append(item)
        return result


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time as feeds write it (with or without seconds' fractions, 'Z', or '+0200'); None if unusable.
    A time without offset is taken as UTC: feeds are machine-made and UTC is the common default."""
    raw = text(value)
    if not raw:
        return None
    raw = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", raw.replace("Z", "+00:00"))
    # Python's parser takes at most six digits of a second's fraction; some feeds send seven.
    raw = re.sub(r"(\.\d{6})\d+", r"\1", raw)
    try:
        parsed = parse_datetime(raw)
    except ValueError:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _position(value: Any) -> list[float] | None:
    if not isinstance(value, list | tuple) or len(value) < 2:
        return None
    try:
        lon, lat = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    return [lon, lat]


def clean_geometry(geometry: Any) -> dict[str, Any] | None:
    """A GeoJSON Point, LineString, MultiPoint, MultiLineString, Polygon or MultiPolygon with valid lon/lat, reduced
    to 2D; a line of one distinct position becomes a point. None when nothing usable is left."""
    if not isinstance(geometry, dict):
        return None
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Point":
        position = _position(coords)
        return {"type": "Point", "coordinates": position} if position else None
    if kind in ("LineString", "MultiPoint"):
        positions = [_position(c) for c in coords] if isinstance(coords, list) else [None]
        if not positions or any(p is None for p in positions):
            return None
        if kind == "LineString":
            return line(positions)
        return {"type": "MultiPoint", "coordinates": positions}
    if kind == "MultiLineString" and isinstance(coords, list):
        parts = [clean_geometry({"type": "LineString", "coordinates": part}) for part in coords]
        lines = [p["coordinates"] for p in parts if p and p["type"] == "LineString"]
        if len(lines) != len(parts) or not lines:
            return None
        return {"type": "MultiLineString", "coordinates": lines}
    if kind in ("Polygon", "MultiPolygon") and isinstance(coords, list):
        rings = coords if kind == "Polygon" else [ring for polygon in coords for ring in polygon]
        for ring in rings:
            positions = [_position(c) for c in ring] if isinstance(ring, list) else [None]
            if len(positions) < 4 or any(p is None for p in positions):
                return None
        return {"type": kind, "coordinates": coords}
    return None


def line(positions: list[list[float]]) -> dict[str, Any] | None:
    """A LineString from lon/lat positions, repeated positions dropped; one position left: a Point."""
    distinct: list[list[float]] = []
    for position in positions:
        if not distinct or distinct[-1] != position:
            distinct.append(position)
    if not distinct:
        return None
    if len(distinct) == 1:
        return {"type": "Point", "coordinates": distinct[0]}
    return {"type": "LineString", "coordinates": distinct}


def lat_lon_list(values: list[str]) -> list[list[float]] | None:
    """Numbers in latitude-longitude order (GML posList, CIFS polyline) as lon/lat positions; None if unusable."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return None
    if not numbers or len(numbers) % 2:
        return None
    positions = [_position([numbers[i + 1], numbers[i]]) for i in range(0, len(numbers), 2)]
    return None if any(p is None for p in positions) else positions  # type: ignore[return-value]


def get_parser(fmt: str):
    """The parse function of a source format (interop.models.SourceFormat)."""
    from . import autobahn, datex2, waze_cifs, wzdx

    return {"wzdx": wzdx.parse, "datex2": datex2.parse, "waze_cifs": waze_cifs.parse, "autobahn": autobahn.parse}[fmt]
