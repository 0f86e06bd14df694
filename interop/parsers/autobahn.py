"""The Autobahn GmbH traffic API (verkehr.autobahn.de/o/autobahn): roadworks, warnings and closures.

The API answers per road and per service (`/{road}/services/roadworks` -> {"roadworks": [...]}, `warning` ->
{"warning": [...]}, `closure` -> {"closure": [...]}). The poller (interop.fetch) collects every road's answers into
one JSON object of that shape; one road's answer parses as well. An item on several roads (an interchange) comes
once per road with the same identifier and is kept once.

The end of a measure is only in the text ("Ende: 31.08.26 um 00:00 Uhr"), in German local time; read where it is
there. `point` is "lat,long" in real answers though the OpenAPI document shows "long,lat": the `coordinate` object,
which names its members, is used instead.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.translation import gettext_lazy as _

from . import MSG_NO_GEOMETRY, MSG_NO_ID, FeedError, Item, ParseResult, clean_geometry, lat_lon_list, moment, text

MSG_NOT_AUTOBAHN = _("This is not an answer of the Autobahn API: expected roadworks, warning or closure lists.")

SERVICES = {"roadworks": "roadworks", "warning": "warning", "closure": "closure"}
DISPLAY_KINDS = {
    "ROADWORKS": "roadworks",
    "SHORT_TERM_ROADWORKS": "roadworks",
    "WARNING": "warning",
    "CLOSURE": "closure",
    "CLOSURE_ENTRY_EXIT": "closure",
}
BERLIN = ZoneInfo("Europe/Berlin")
_END = re.compile(r"Ende:\s*(\d{1,2})\.(\d{1,2})\.(\d{2,4})(?:\D+(\d{1,2}):(\d{2}))?")


def parse(data: bytes) -> ParseResult:
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{MSG_NOT_AUTOBAHN} ({exc})") from exc
    if not isinstance(answer, dict) or not any(isinstance(answer.get(key), list) for key in SERVICES):
        raise FeedError(str(MSG_NOT_AUTOBAHN))
    result = ParseResult()
    seen: set[str] = set()
    for service, default_kind in SERVICES.items():
        for index, entry in enumerate(answer.get(service) or []):
            item = _item(result, f"{service}[{index}]", entry, default_kind)
            if item is not None and item.source_item_id not in seen:
                seen.add(item.source_item_id)
                result.add(item)
    return result


def _end(lines: list[str]) -> datetime | None:
    for line_ in lines:
        match = _END.search(line_)
        if match:
            day, month, year, hour, minute = match.groups()
            full_year = int(year) + 2000 if len(year) == 2 else int(year)
            try:
                return datetime(full_year, int(month), int(day), int(hour or 0), int(minute or 0), tzinfo=BERLIN)
            except ValueError:
                return None
    return None


def _item(result: ParseResult, where: str, entry: Any, default_kind: str) -> Item | None:
    if not isinstance(entry, dict) or not text(entry.get("identifier")):
        result.skip(where, MSG_NO_ID)
        return None
    identifier = text(entry["identifier"])
    geometry = clean_geometry(entry.get("geometry"))
    coordinate = entry.get("coordinate")
    if geometry is None and isinstance(coordinate, dict):
        pair = lat_lon_list([text(coordinate.get("lat")), text(coordinate.get("long"))])
        geometry = {"type": "Point", "coordinates": pair[0]} if pair else None
    if geometry is None:
        result.skip(identifier, MSG_NO_GEOMETRY)
        return None
    kind = DISPLAY_KINDS.get(text(entry.get("display_type")), default_kind)
    lines = [text(line_) for line_ in entry.get("description") or [] if isinstance(line_, str)]
    blocked = text(entry.get("isBlocked")).lower() == "true"
    impact = entry.get("impact") if isinstance(entry.get("impact"), dict) else {}
    symbols = [text(s) for s in impact.get("symbols") or []]
    if kind == "closure" or blocked:
        restriction = "closure"
    elif "CLOSED" in symbols:
        restriction = "lane_closure"
    else:
        restriction = ""
    return Item(
        source_item_id=identifier,
        kind=kind,
        geometry=geometry,
        title=text(entry.get("title")),
        description="\n".join(line_ for line_ in lines if line_),
        start=moment(entry.get("startTimestamp")),
        end=_end(lines),
        restriction=restriction,
        properties={
            "display_type": text(entry.get("display_type")),
            "subtitle": text(entry.get("subtitle")),
            "is_blocked": blocked,
            "future": bool(entry.get("future")),
            "impact": impact,
        },
    )
