"""Waze CIFS (Closure and Incident Feed Specification 2.0), XML (`<incidents><incident id=...>`) or JSON
(`{"incidents": [...]}`). The polyline is "lat lon lat lon ..."; street, direction and polyline may also sit in a
`location` element, as some publishers write them."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy as _
from lxml import etree

from . import (
    MSG_NO_GEOMETRY,
    MSG_NO_ID,
    MSG_UNSUPPORTED_RECORD,
    FeedError,
    Item,
    ParseResult,
    lat_lon_list,
    line,
    moment,
    text,
)

MSG_NOT_CIFS = _("This is not a Waze CIFS feed: {detail}")

KINDS = {
    "ROAD_CLOSED": ("closure", "closure"),
    "CONSTRUCTION": ("roadworks", ""),
    "HAZARD": ("warning", ""),
    "ACCIDENT": ("incident", ""),
    "JAM": ("warning", ""),
    "POLICE": ("other", ""),
}
FIELDS = ("type", "subtype", "polyline", "street", "direction", "starttime", "endtime", "description", "updatetime")


def parse(data: bytes) -> ParseResult:
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        return _records(_json(data))
    return _records(_xml(data))


def _json(data: bytes) -> list[dict[str, Any]]:
    try:
        feed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(str(MSG_NOT_CIFS).format(detail=exc)) from exc
    incidents = feed.get("incidents") if isinstance(feed, dict) else feed
    if not isinstance(incidents, list):
        raise FeedError(str(MSG_NOT_CIFS).format(detail="no 'incidents' list"))
    records = []
    for incident in incidents:
        if not isinstance(incident, dict):
            records.append({})
            continue
        record = dict(incident)
        location = incident.get("location")
        if isinstance(location, dict):
            for key in ("street", "direction", "polyline"):
                record.setdefault(key, location.get(key))
        records.append(record)
    return records


def _xml(data: bytes) -> list[dict[str, Any]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(str(MSG_NOT_CIFS).format(detail=exc)) from exc
    if etree.QName(root).localname != "incidents":
        raise FeedError(str(MSG_NOT_CIFS).format(detail=f"root element {etree.QName(root).localname}"))
    records = []
    for incident in root:
        if not isinstance(incident.tag, str) or etree.QName(incident).localname != "incident":
            continue
        record: dict[str, Any] = {"id": incident.get("id")}
        for node in incident.iter():
            name = etree.QName(node).localname if isinstance(node.tag, str) else ""
            if name in FIELDS and name not in record and text(node.text):
                record[name] = text(node.text)
        records.append(record)
    return records


def _records(records: list[dict[str, Any]]) -> ParseResult:
    result = ParseResult()
    for index, record in enumerate(records):
        item_id = text(record.get("id"))
        if not item_id:
            result.skip(f"incidents[{index}]", MSG_NO_ID)
            continue
        incident_type = text(record.get("type")).upper()
        if incident_type not in KINDS:
            result.skip(item_id, MSG_UNSUPPORTED_RECORD, kind=incident_type or "?")
            continue
        positions = lat_lon_list(text(record.get("polyline")).replace(",", " ").split())
        geometry = line(positions) if positions else None
        if geometry is None:
            result.skip(item_id, MSG_NO_GEOMETRY)
            continue
        kind, restriction = KINDS[incident_type]
        subtype = text(record.get("subtype"))
        if incident_type == "CONSTRUCTION" and subtype.startswith("ROAD_CLOSED"):
            restriction = "closure"
        street = text(record.get("street"))
        result.add(
            Item(
                source_item_id=item_id,
                kind=kind,
                geometry=geometry,
                title=street or incident_type,
                description=text(record.get("description")),
                start=moment(record.get("starttime")),
                end=moment(record.get("endtime")),
                restriction=restriction,
                properties={
                    "type": incident_type,
                    "subtype": subtype,
                    "street": street,
                    "direction": text(record.get("direction")),
                },
            )
        )
    return result
