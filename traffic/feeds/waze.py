"""Waze CIFS 2.0 (Closure and Incident Feed Specification): roadworks and incidents, as XML and as JSON.

Specification: https://developers.google.com/waze/data-feed/cifs-specification; the XSD is
../shared/data/schemas/waze-cifs/incidents_feed-2.0.0.xsd. Rows come from ``traffic.feeds.situations`` (PostGIS
writes the polylines and the local times); ``build_xml`` and ``build_json`` are pure and assemble the document as
text, without an object model per item.

Choices the specification leaves to the producer (docs/feeds.md has them as a table):

- Only a full closure routes traffic around the works (``ROAD_CLOSED`` / ``ROAD_CLOSED_CONSTRUCTION``); every
  other roadwork is a ``HAZARD`` that alerts drivers: lane closures and one-way or alternating traffic
  ``HAZARD_ON_ROAD_LANE_CLOSED``, a closed cycle lane (cyclists on the carriageway) ``HAZARD_ON_ROAD_CONSTRUCTION``,
  works off the carriageway ``HAZARD_ON_SHOULDER``.
- Accidents are ``ACCIDENT_MAJOR`` when someone was killed or seriously injured (Unfallkategorie 1 or 2, or such
  casualties counted), else ``ACCIDENT_MINOR``, which includes accidents not yet classified: the police add the
  classification within minutes and the feed follows.
- A police operation with an affected stretch is a closure (``ROAD_CLOSED_HAZARD``); without one, a hazard.
- The JSON feed is the CIFS 2.0 element tree as JSON, one key per element (``location`` nested, attributes as
  keys), so it converts one-to-one to the XML and is validated against the same XSD.
- ``polyline`` is "lat lon" pairs in the direction of travel. A point incident repeats its point, because CIFS
  wants at least two coordinates. A roadwork with separate parts is one CIFS incident per part; part 1 keeps the
  roadwork's id, further parts get UUIDs derived from it, stable across builds.
- A daily working window becomes a ``schedule`` (``everyday`` or the listed weekdays); a window across midnight
  (20:00-05:00) is split into 20:00-23:59 on its day and 00:00-05:00 on the next.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from lxml import etree

from roadworks.models import Direction, TrafficManagement
from traffic.models import AccidentCategory, IncidentDirection, IncidentKind

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .situations import IncidentRow, RoadworkRow, situation_fingerprint, situation_rows

XML_CONTENT_TYPE = "application/xml; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
# A copy of the official XSD ships with AUMAn (auman/data/SOURCES.md), so check_feeds works without ../shared.
SCHEMA_PATH = Path(settings.BASE_DIR) / "auman" / "data" / "schemas" / "waze-cifs" / "incidents_feed-2.0.0.xsd"

# traffic management -> (type, subtype)
ROADWORK_TYPES: dict[str, tuple[str, str]] = {
    TrafficManagement.FULL_CLOSURE: ("ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION"),
    TrafficManagement.LANE_CLOSURE: ("HAZARD", "HAZARD_ON_ROAD_LANE_CLOSED"),
    TrafficManagement.ALTERNATING_ONE_WAY: ("HAZARD", "HAZARD_ON_ROAD_LANE_CLOSED"),
    TrafficManagement.ONE_WAY: ("HAZARD", "HAZARD_ON_ROAD_LANE_CLOSED"),
    TrafficManagement.CYCLE_LANE_CLOSURE: ("HAZARD", "HAZARD_ON_ROAD_CONSTRUCTION"),
    TrafficManagement.FOOTWAY_CLOSURE: ("HAZARD", "HAZARD_ON_SHOULDER"),
    TrafficManagement.NO_CARRIAGEWAY_INCURSION: ("HAZARD", "HAZARD_ON_SHOULDER"),
}

# incident kind -> (type, subtype); accidents and police operations are decided per row.
INCIDENT_TYPES: dict[str, tuple[str, str]] = {
    IncidentKind.BREAKDOWN: ("HAZARD", "HAZARD_ON_ROAD_CAR_STOPPED"),
    IncidentKind.OBSTRUCTION: ("HAZARD", "HAZARD_ON_ROAD_OBJECT"),
    IncidentKind.SPILL: ("HAZARD", "HAZARD_ON_ROAD_OIL"),
    IncidentKind.HAZARD: ("HAZARD", "HAZARD_ON_ROAD"),
    IncidentKind.POLICE_OPERATION: ("HAZARD", "HAZARD_ON_ROAD"),
    IncidentKind.OTHER: ("HAZARD", "HAZARD_ON_ROAD"),
}
MAJOR_ACCIDENT_CATEGORIES = (AccidentCategory.KILLED, AccidentCategory.SERIOUSLY_INJURED)

WEEKDAY_ELEMENTS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DESCRIPTION_MAX = 1000

# What Waze refuses for a closure (https://developers.google.com/waze/data-feed/road-closure-information).
CLOSURE_MIN_M = 35
CLOSURE_MAX_M = 10_000
MSG_CLOSURE_TOO_FEW_POINTS = _("Closure {id}: Waze needs at least two distinct points.")
MSG_CLOSURE_TOO_SHORT = _("Closure {id} is {length} m long: Waze refuses closures shorter than 35 m.")
MSG_CLOSURE_TOO_LONG = _("Closure {id} is {length} m long: Waze refuses closures longer than 10 km.")
WARNING_PREFIX = "warning: "

# Characters XML 1.0 cannot carry at all; a description pasted from elsewhere may hold them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Most texts hold nothing to escape and no character XML cannot carry: one regex search finds out, far cheaper
# than escape()'s replace calls on every text (measured at 10,000 items: a fifth of the build).
_NEEDS_ESCAPING = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ATTRIBUTE_NEEDS_QUOTING = re.compile("[&<>\"'\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _attribute(value: str) -> str:
    """quoteattr(value), without its work for the usual value (an id, a language code) that needs none."""
    return quoteattr(_NOT_XML.sub("", value)) if _ATTRIBUTE_NEEDS_QUOTING.search(value) else f'"{value}"'


# --- Mapping ---------------------------------------------------------------------------------------------------


def accident_subtype(category: int | None, killed: int | None, seriously_injured: int | None) -> str:
    """ACCIDENT_MAJOR when someone was killed or seriously injured, else ACCIDENT_MINOR (also when unclassified)."""
    if category in MAJOR_ACCIDENT_CATEGORIES or (killed or 0) > 0 or (seriously_injured or 0) > 0:
        return "ACCIDENT_MAJOR"
    return "ACCIDENT_MINOR"


def schedule(daily_start: str | None, daily_end: str | None, weekdays: Iterable[int]) -> dict[str, str]:
    """CIFS schedule elements (in XSD order) for a daily window on some weekdays (none: every day); {} without one."""
    days = sorted(set(weekdays))
    if not daily_start or not daily_end:
        # Weekdays without a window: all of each listed day.
        return {WEEKDAY_ELEMENTS[day]: "00:00-23:59" for day in days}
    if daily_start < daily_end:
        windows = {day: [f"{daily_start}-{daily_end}"] for day in days}
        if not days:
            return {"everyday": windows_text([f"{daily_start}-{daily_end}"])}
    else:  # across midnight: the evening on the day it starts, the early hours on the next
        evening, morning = f"{daily_start}-23:59", f"00:00-{daily_end}"
        if not days:
            return {"everyday": windows_text([morning, evening])}
        windows = {}
        for day in days:
            windows.setdefault(day, []).append(evening)
            windows.setdefault((day + 1) % 7, []).append(morning)
    return {WEEKDAY_ELEMENTS[day]: windows_text(windows[day]) for day in sorted(windows)}


def windows_text(windows: list[str]) -> str:
    return ",".join(sorted(windows))


def _part_id(roadwork_id: str, part: int) -> str:
    return roadwork_id if part == 1 else str(uuid.uuid5(uuid.UUID(roadwork_id), f"part-{part}"))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"


def _street(names: Iterable[str], fallback: str) -> str:
    street = ", ".join(name for name in names if name.strip())
    return street if len(street) >= 2 else fallback


def cifs_items(roadworks: Iterable[RoadworkRow], incidents: Iterable[IncidentRow]) -> Iterator[dict[str, Any]]:
    """One dict per CIFS incident, keys in XSD element order (``id`` first, for the attribute)."""
    publisher = settings.AUMAN_FEED_PUBLISHER
    # Looked up once, in the active language (the builders set it): a lazy label costs a gettext per incident.
    labels = {kind.value: str(kind.label) for kind in IncidentKind}
    for work in roadworks:
        kind, subtype = ROADWORK_TYPES.get(work.traffic_management, ("HAZARD", "HAZARD_ON_ROAD_CONSTRUCTION"))
        both = work.from_area or work.direction == Direction.BOTH
        description = work.title if not work.description else f"{work.title}: {work.description}"
        times = {"starttime": work.start, "endtime": work.end}
        days = schedule(work.daily_start, work.daily_end, work.weekdays)
        if days:
            times["schedule"] = days
        for number, polyline in enumerate(work.lines, start=1):
            yield {
                "id": _part_id(work.id, number),
                "creationtime": work.created,
                "updatetime": work.updated,
                "source": {"reference": publisher, "name": work.organisation_name},
                "type": kind,
                "subtype": subtype,
                "description": _clip(description),
                "location": {
                    "street": _street(work.street_names, work.title),
                    "polyline": polyline,
                    "location_description": work.reference,
                    "direction": "BOTH_DIRECTIONS" if both else "ONE_DIRECTION",
                },
                **times,
            }
    for incident in incidents:
        if incident.kind == IncidentKind.ACCIDENT:
            kind, subtype = "ACCIDENT", accident_subtype(incident.category, incident.killed, incident.seriously_injured)
        elif incident.kind == IncidentKind.POLICE_OPERATION and incident.line:
            kind, subtype = "ROAD_CLOSED", "ROAD_CLOSED_HAZARD"
        else:
            kind, subtype = INCIDENT_TYPES.get(incident.kind, ("HAZARD", "HAZARD_ON_ROAD"))
        location: dict[str, str] = {
            "street": _street([incident.street_name], settings.AUMAN_CITY_NAME),
            "polyline": incident.line or f"{incident.point} {incident.point}",
        }
        if incident.direction == IncidentDirection.BOTH:
            location["direction"] = "BOTH_DIRECTIONS"
        elif incident.direction in (IncidentDirection.FORWARD, IncidentDirection.BACKWARD):
            location["direction"] = "ONE_DIRECTION"
        item: dict[str, Any] = {
            "id": incident.id,
            "creationtime": incident.created,
            "updatetime": incident.updated,
            "source": {"reference": publisher, "name": publisher},
            "type": kind,
            "subtype": subtype,
            "description": _clip(incident.description or labels[incident.kind]),
            "location": location,
            "starttime": incident.occurred,
        }
        end = incident.cleared or incident.expected_clearance
        if end:
            item["endtime"] = end
        yield item


# --- Writing ---------------------------------------------------------------------------------------------------


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value)) if _NEEDS_ESCAPING.search(value) else value


def _element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, inner in value.items():
            _element(key, inner, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_text(str(value))}</{name}>")


def _timestamp(now: datetime) -> str:
    return timezone.localtime(now).isoformat(timespec="seconds")


def xml_document(items: Iterable[dict[str, Any]], *, now: datetime) -> bytes:
    """The <incidents> document for CIFS items (dicts as cifs_items makes them)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<incidents timestamp={quoteattr(_timestamp(now))}>"]
    out.extend(_incident_xml(item) for item in items)
    out.append("</incidents>\n")
    return "".join(out).encode()


def _incident_xml(item: dict[str, Any]) -> str:
    # One f-string per element of a known shape: about twice as fast as walking the dict for 10,000 items.
    source, location = item["source"], item["location"]
    parts = [
        f"<incident id={_attribute(item['id'])}>"
        f"<creationtime>{item['creationtime']}</creationtime><updatetime>{item['updatetime']}</updatetime>"
        f"<source><reference>{_text(source['reference'])}</reference><name>{_text(source['name'])}</name></source>"
        f"<type>{item['type']}</type><subtype>{item['subtype']}</subtype>"
        f"<description>{_text(item['description'])}</description>"
        f"<location><street>{_text(location['street'])}</street><polyline>{location['polyline']}</polyline>"
    ]
    if "location_description" in location:
        parts.append(f"<location_description>{_text(location['location_description'])}</location_description>")
    if "direction" in location:
        parts.append(f"<direction>{location['direction']}</direction>")
    parts.append(f"</location><starttime>{item['starttime']}</starttime>")
    if "endtime" in item:
        parts.append(f"<endtime>{item['endtime']}</endtime>")
    if "schedule" in item:
        parts.append("<schedule>")
        parts.extend(f"<{day}>{windows}</{day}>" for day, windows in item["schedule"].items())
        parts.append("</schedule>")
    parts.append("</incident>")
    return "".join(parts)


def build_xml(roadworks: Iterable[RoadworkRow], incidents: Iterable[IncidentRow], *, now: datetime) -> bytes:
    """The CIFS 2.0 XML document as UTF-8 bytes. Pure: everything it writes comes from its arguments and settings."""
    with translation.override(settings.LANGUAGE_CODE):
        return xml_document(cifs_items(roadworks, incidents), now=now)


def build_json(roadworks: Iterable[RoadworkRow], incidents: Iterable[IncidentRow], *, now: datetime) -> bytes:
    """The same document as JSON: {"timestamp": ..., "incidents": [{"id": ..., "location": {...}, ...}]}."""
    with translation.override(settings.LANGUAGE_CODE):
        encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        items = ",".join(encode(item) for item in cifs_items(roadworks, incidents))
    return f'{{"timestamp":{encode(_timestamp(now))},"incidents":[{items}]}}'.encode()


def json_to_xml(body: bytes) -> bytes:
    """The XML a JSON feed stands for (its validation goes through the XSD)."""
    document = json.loads(body)
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<incidents timestamp={quoteattr(str(document['timestamp']))}>"]
    for item in document["incidents"]:
        out.append(f"<incident id={quoteattr(str(item['id']))}>")
        for key, value in item.items():
            if key != "id":
                _element(key, value, out)
        out.append("</incident>")
    out.append("</incidents>\n")
    return "".join(out).encode()


# --- Checking --------------------------------------------------------------------------------------------------


@cache
def xml_schema() -> etree.XMLSchema:
    """The CIFS 2.0 XSD, loaded once per process."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def schema_errors(body: bytes) -> list[str]:
    try:
        document = etree.fromstring(body)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = xml_schema()
    if schema.validate(document):
        return []
    errors = list(schema.error_log)
    if len(document) == 0 and document.tag == "incidents":
        # The XSD wants at least one <incident>, so a city with nothing on its roads could publish no valid
        # document at all. An empty <incidents> is the honest answer (Waze reads it as "nothing to show").
        errors = [error for error in errors if "Missing child element" not in error.message]
    return [f"line {error.line}: {error.message}" for error in errors]


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    # Haversine on the mean Earth radius: within 0.5 % of the ellipsoid, plenty for 35 m and 10 km bounds.
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def closure_warnings(body: bytes) -> list[str]:
    """Closures in a CIFS XML document that Waze would refuse: < 2 distinct points, < 35 m or > 10 km long."""
    warnings: list[str] = []
    for incident in etree.fromstring(body).iterfind("incident"):
        if incident.findtext("type") != "ROAD_CLOSED":
            continue
        numbers = [float(value) for value in (incident.findtext("location/polyline") or "").split()]
        points = list(zip(numbers[0::2], numbers[1::2], strict=False))
        closure = incident.get("id")
        if len(set(points)) < 2:
            warnings.append(str(MSG_CLOSURE_TOO_FEW_POINTS).format(id=closure))
            continue
        length = sum(_metres(a, b) for a, b in itertools.pairwise(points))
        if length < CLOSURE_MIN_M:
            warnings.append(str(MSG_CLOSURE_TOO_SHORT).format(id=closure, length=round(length)))
        elif length > CLOSURE_MAX_M:
            warnings.append(str(MSG_CLOSURE_TOO_LONG).format(id=closure, length=round(length)))
    return warnings


def validate_xml(body: bytes) -> list[str]:
    """Errors against the CIFS 2.0 XSD, then the self-check's warnings (prefixed "warning: ")."""
    errors = schema_errors(body)
    if errors:
        return errors
    return [WARNING_PREFIX + warning for warning in closure_warnings(body)]


def validate_json(body: bytes) -> list[str]:
    try:
        xml = json_to_xml(body)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"not a CIFS JSON document: {exc!r}"]
    return validate_xml(xml)


# --- Serving ---------------------------------------------------------------------------------------------------


def build_now(filters: FeedFilters | None = None, *, now: datetime | None = None, as_json: bool = False) -> bytes:
    """The feed as a request without conditions gets it, built afresh (check_feeds and benchmarks)."""
    now = now or timezone.now()
    roadworks, incidents = situation_rows(now=now, filters=filters)
    return (build_json if as_json else build_xml)(roadworks, incidents, now=now)


def _serve(request: HttpRequest, *, as_json: bool) -> HttpResponse:
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    now = timezone.now()
    builder = build_json if as_json else build_xml

    def build_at(built_at: datetime) -> bytes:
        roadworks, incidents = situation_rows(now=now, filters=filters)
        return builder(roadworks, incidents, now=built_at)

    return serve_feed(
        request,
        name="waze-cifs-json" if as_json else "waze-cifs-xml",
        fingerprint=lambda: situation_fingerprint(now=now, filters=filters),
        build=build_at,
        content_type=JSON_CONTENT_TYPE if as_json else XML_CONTENT_TYPE,
        # The publisher, city and language are written into the bytes too.
        variant={
            **filters.variant(),
            "publisher": settings.AUMAN_FEED_PUBLISHER,
            "city": settings.AUMAN_CITY_NAME,
            "language": settings.LANGUAGE_CODE,
            "tz": settings.TIME_ZONE,
        },
    )


@feed_view
def cifs_xml_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/waze/cifs.xml[?bbox=...][&updated_since=ISO 8601][&active_on=date or date-time]"""
    return _serve(request, as_json=False)


@feed_view
def cifs_json_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/waze/cifs.json[?bbox=...][&updated_since=ISO 8601][&active_on=date or date-time]"""
    return _serve(request, as_json=True)


XML_FEED = register(
    Feed(
        key="waze-cifs-xml",
        title=_("Closures and incidents for Waze (CIFS, XML)"),
        format="Waze CIFS 2.0 (XML)",
        url_name="feeds:waze-cifs-xml",
        content_type=XML_CONTENT_TYPE,
        validate=validate_xml,
        description=_("Roadworks (full closures as closures, the rest as hazards) and active incidents."),
    )
)
JSON_FEED = register(
    Feed(
        key="waze-cifs-json",
        title=_("Closures and incidents for Waze (CIFS, JSON)"),
        format="Waze CIFS 2.0 (JSON)",
        url_name="feeds:waze-cifs-json",
        content_type=JSON_CONTENT_TYPE,
        validate=validate_json,
        description=_("The same as the CIFS XML feed, as JSON."),
    )
)
