"""Waze CIFS 2.0 (Closure and Incident Feed Specification): roadworks and incidents, as XML and as JSON.

Specification: https://developers.google.com/waze/data-feed/cifs-specification; the XSD is
../shared/data/schemas/waze-cifs/incidents_feed-2.0.0.xsd.

PostgreSQL writes each whole document in one query (``document``), with the WHERE clauses and the geometry and
time fragments of ``traffic.feeds.situations`` (shared with DATEX II). One SQL template holds what both formats
share: the CIFS items with their fields (type and subtype from the mapping tables below, the clipped description,
the street with its fallback, the polyline, the schedule, the derived ids from uuid_generate_v5), sorted and joined
with string_agg; only the rendering of an item differs, XML with its text escaped in SQL, JSON with to_json. The
mapping tables stay here in Python and go into the query as parameters; Python takes the UTF-8 bytes as they come.

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
  roadwork's id, further parts get UUIDs derived from it (UUIDv5 of "part-N"), stable across builds.
- A daily working window becomes a ``schedule`` (``everyday`` or the listed weekdays); a window across midnight
  (20:00-05:00) is split into 20:00-23:59 on its day and 00:00-05:00 on the next.
- The description is the text with its whitespace collapsed, cut to ``DESCRIPTION_MAX`` characters (the last one
  an ellipsis); the street is the work's non-blank street names, or its title when they make less than two
  characters (an incident: its street, or the city).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from lxml import etree

from roadworks.models import Direction, TrafficManagement
from traffic.models import AccidentCategory, IncidentDirection, IncidentKind

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .situations import (
    INCIDENT_LINE_SQL,
    ROADWORK_LINES_SQL,
    feed_where,
    fetch_document,
    local_time_sql,
    poslist_sql,
    situation_fingerprint,
)
from .sql import incident_labels

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
ROADWORK_FALLBACK_TYPE = ("HAZARD", "HAZARD_ON_ROAD_CONSTRUCTION")

# incident kind -> (type, subtype); accidents and police operations are decided per row.
INCIDENT_TYPES: dict[str, tuple[str, str]] = {
    IncidentKind.BREAKDOWN: ("HAZARD", "HAZARD_ON_ROAD_CAR_STOPPED"),
    IncidentKind.OBSTRUCTION: ("HAZARD", "HAZARD_ON_ROAD_OBJECT"),
    IncidentKind.SPILL: ("HAZARD", "HAZARD_ON_ROAD_OIL"),
    IncidentKind.HAZARD: ("HAZARD", "HAZARD_ON_ROAD"),
    IncidentKind.POLICE_OPERATION: ("HAZARD", "HAZARD_ON_ROAD"),
    IncidentKind.OTHER: ("HAZARD", "HAZARD_ON_ROAD"),
}
INCIDENT_FALLBACK_TYPE = ("HAZARD", "HAZARD_ON_ROAD")
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

# Characters XML 1.0 cannot carry at all; a description pasted from elsewhere may hold them. (NUL too, which no
# PostgreSQL text can hold, so the SQL class leaves it out.)
NOT_XML_CHARACTERS = "\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
# What Python's str.split() and str.strip() take for whitespace (str.isspace()): the description collapses it,
# a street name of nothing else is blank. tests/feeds/test_waze.py checks this against str.isspace().
WHITESPACE_CHARACTERS = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

_NOT_XML = re.compile(f"[\x00{NOT_XML_CHARACTERS}]")
_NEEDS_ESCAPING = re.compile(f"[&<>\x00{NOT_XML_CHARACTERS}]")


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value)) if _NEEDS_ESCAPING.search(value) else value


# --- The document in SQL ---------------------------------------------------------------------------------------


def _pg_class(characters: str, *, negated: bool = False) -> str:
    """A PostgreSQL regular expression bracket expression for these characters ('a-z' a range): every character
    outside printable ASCII written as a \\uXXXX escape, so the SQL text carries no control character."""
    body = "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in characters)
    return f"[{'^' if negated else ''}{body}]"


def _xml_text(value: str) -> str:
    """SQL for a text as XML character data, as ``_text`` writes it: characters XML cannot carry removed, & < >
    escaped. The usual text needs neither, and one regular expression match finds out (measured: cheaper than
    the replace calls on every text)."""
    return (
        f"CASE WHEN {value} ~ '{_pg_class('&<>' + NOT_XML_CHARACTERS)}' "
        f"THEN replace(replace(replace(regexp_replace({value}, '{_pg_class(NOT_XML_CHARACTERS)}', '', 'g'), "
        f"'&', '&amp;'), '<', '&lt;'), '>', '&gt;') ELSE {value} END"
    )


def _json_text(value: str) -> str:
    """SQL for a text as a JSON string: to_json escapes exactly what Python's json (ensure_ascii=False) does."""
    return f"to_json({value})::text"


_NOT_BLANK = f"~ '{_pg_class(WHITESPACE_CHARACTERS, negated=True)}'"


def _collapsed(text: str) -> str:
    """SQL for a text with its whitespace collapsed as " ".join(text.split()) does; the usual text, with single
    spaces between words only, skips the replacement (measured: a regular expression match costs a tenth of it)."""
    whitespace = _pg_class(WHITESPACE_CHARACTERS)
    return (
        f"CASE WHEN {text} ~ '{_pg_class(WHITESPACE_CHARACTERS.replace(' ', ''))}|  |^ | $' "
        f"THEN btrim(regexp_replace({text}, '{whitespace}+', ' ', 'g'), ' ') ELSE {text} END"
    )


# A work's street names without the blank ones, joined. Blank names are rare: only a joined text where one could
# hide (whitespace alone between separators or at an end) takes the slow way, name by name.
_STREETS = f"""
    CASE WHEN array_to_string(r.street_names, ', ') ~ '(^|, ){_pg_class(WHITESPACE_CHARACTERS)}*(, |$)'
         THEN array_to_string(ARRAY(SELECT name FROM unnest(r.street_names) AS name WHERE name {_NOT_BLANK}), ', ')
         ELSE array_to_string(r.street_names, ', ') END"""

# A daily window as "HH:MM" texts; compared as text in code point order, as the CIFS windows are sorted.
_SCHEDULE = """
    CASE WHEN (r.daily_start IS NOT NULL AND r.daily_end IS NOT NULL) OR cardinality(r.weekdays) > 0 THEN (
        SELECT array_agg(ARRAY[CASE WHEN days.day < 0 THEN 'everyday'
                                    ELSE (%(weekday_elements)s::text[])[days.day + 1] END, days.windows]
                         ORDER BY days.day)
        FROM (
            SELECT CASE WHEN hours.next_day AND listed.day >= 0 THEN (listed.day + 1) %% 7 ELSE listed.day END AS day,
                   string_agg(hours.window_text, ',' ORDER BY hours.window_text COLLATE "C") AS windows
            -- The listed weekdays (once each), or -1 for every day.
            FROM (SELECT DISTINCT unnest(r.weekdays) AS day UNION ALL SELECT -1 WHERE cardinality(r.weekdays) = 0)
                 AS listed
            CROSS JOIN (SELECT to_char(r.daily_start, 'HH24:MI') COLLATE "C" AS s,
                               to_char(r.daily_end, 'HH24:MI') COLLATE "C" AS e) AS window_times
            -- Weekdays without a window: all of each listed day; a window across midnight: the evening on its
            -- day, the early hours on the next.
            CROSS JOIN LATERAL (
                SELECT false AS next_day,
                       CASE WHEN s IS NULL OR e IS NULL THEN '00:00-23:59'
                            WHEN s < e THEN s || '-' || e ELSE s || '-23:59' END AS window_text
                UNION ALL
                SELECT true, '00:00-' || e WHERE s >= e
            ) AS hours
            GROUP BY 1
        ) AS days
    ) END
"""


# The CIFS items of both formats, in feed order, with their fields as text (NULL: the element is left out), and
# the rendering of one item ({item}) joined into the document ({head}, {separator}, {tail}).
_DOCUMENT_SQL = f"""
WITH works AS (
    SELECT r.id, lower(r.period) AS sort_time, r.title, r.reference, o.name AS organisation_name,
           {local_time_sql("r.created_at")} AS created, {local_time_sql("r.updated_at")} AS updated,
           {local_time_sql("lower(r.period)")} AS start_time, {local_time_sql("upper(r.period)")} AS end_time,
           coalesce(%(roadwork_types)s::jsonb -> r.traffic_management, %(roadwork_fallback)s::jsonb) AS types,
           {_collapsed("CASE WHEN r.description = '' THEN r.title ELSE r.title || ': ' || r.description END")}
               AS description,
           {_STREETS} AS street, r.title AS street_fallback,
           CASE WHEN ST_Dimension(r.geometry) = 2 OR r.direction = %(both)s
                THEN 'BOTH_DIRECTIONS' ELSE 'ONE_DIRECTION' END AS direction,
           {_SCHEDULE} AS schedule,
           {ROADWORK_LINES_SQL} AS lines
    FROM roadworks_roadwork AS r
    JOIN accounts_organisation AS o ON o.id = r.organisation_id
    WHERE {{works}}
),
incidents AS (
    SELECT i.*, a.category, a.killed, a.seriously_injured, {poslist_sql("i.location")} AS point,
           CASE WHEN i.affected_line IS NOT NULL THEN {INCIDENT_LINE_SQL} END AS line
    FROM traffic_incident AS i
    LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
    WHERE {{incidents}}
    -- The point and the line computed once per incident (the line decides the type and is the polyline, the point
    -- is written twice): without OFFSET 0 the planner writes their expressions into every use.
    OFFSET 0
),
items AS (
    SELECT 0 AS feed_part, w.sort_time, w.id, part.n,
           CASE WHEN part.n = 1 THEN w.id ELSE uuid_generate_v5(w.id, 'part-' || part.n) END::text AS item_id,
           w.created, w.updated, w.organisation_name AS source_name, w.types ->> 0 AS type, w.types ->> 1 AS subtype,
           w.description, w.street, w.street_fallback, part.polyline,
           w.reference AS location_description, w.direction, w.start_time, w.end_time, w.schedule
    FROM works AS w
    CROSS JOIN LATERAL unnest(w.lines) WITH ORDINALITY AS part(polyline, n)
    -- An empty geometry has no position to send (CIFS wants a polyline): such a work or incident is left out.
    WHERE part.polyline IS NOT NULL
    UNION ALL
    SELECT 1, i.occurred_at, i.id, 1, i.id::text, {local_time_sql("i.created_at")}, {local_time_sql("i.updated_at")},
           %(publisher)s,
           CASE WHEN i.kind = %(accident)s THEN 'ACCIDENT'
                WHEN i.kind = %(police_operation)s AND i.line IS NOT NULL THEN 'ROAD_CLOSED'
                ELSE coalesce(%(incident_types)s::jsonb -> i.kind, %(incident_fallback)s::jsonb) ->> 0 END,
           CASE WHEN i.kind = %(accident)s
                THEN CASE WHEN i.category = ANY(%(major_categories)s) OR i.killed > 0 OR i.seriously_injured > 0
                          THEN 'ACCIDENT_MAJOR' ELSE 'ACCIDENT_MINOR' END
                WHEN i.kind = %(police_operation)s AND i.line IS NOT NULL THEN 'ROAD_CLOSED_HAZARD'
                ELSE coalesce(%(incident_types)s::jsonb -> i.kind, %(incident_fallback)s::jsonb) ->> 1 END,
           {_collapsed("CASE WHEN i.description = '' THEN %(labels)s::jsonb ->> i.kind ELSE i.description END")},
           CASE WHEN i.street_name {_NOT_BLANK} THEN i.street_name ELSE '' END, %(city)s,
           coalesce(i.line, i.point || ' ' || i.point),
           NULL,
           CASE WHEN i.direction = %(incident_both)s THEN 'BOTH_DIRECTIONS'
                WHEN i.direction IN (%(incident_forward)s, %(incident_backward)s) THEN 'ONE_DIRECTION' END,
           {local_time_sql("i.occurred_at")},
           CASE WHEN coalesce(i.cleared_at, i.expected_clearance_at) IS NOT NULL
                THEN {local_time_sql("coalesce(i.cleared_at, i.expected_clearance_at)")} END,
           NULL
    FROM incidents AS i
    WHERE i.point IS NOT NULL OR i.line IS NOT NULL
    -- Each field computed once, whatever uses it below.
    OFFSET 0
),
fields AS (
    SELECT item.feed_part, item.sort_time, item.id, item.n, item.item_id, item.created, item.updated,
           item.source_name, item.type, item.subtype,
           CASE WHEN length(item.description) <= %(description_max)s THEN item.description
                ELSE left(item.description, %(description_max)s - 1) || '…' END AS description,
           CASE WHEN length(item.street) >= 2 THEN item.street ELSE item.street_fallback END AS street,
           item.polyline, item.location_description, item.direction, item.start_time, item.end_time, item.schedule
    FROM items AS item
    OFFSET 0
)
SELECT {{head}}
       || coalesce(string_agg({{item}}, {{separator}} ORDER BY item.feed_part, item.sort_time, item.id, item.n), '')
       || {{tail}}
FROM fields AS item
"""

_TIMESTAMP = local_time_sql("%(now)s::timestamptz")


def _schedule_elements(element: str, separator: str) -> str:
    """SQL joining the item's schedule (rows of element name and windows) with each written by `element`."""
    element = element.replace("{day}", "item.schedule[d][1]").replace("{windows}", "item.schedule[d][2]")
    return (
        f"CASE WHEN item.schedule IS NOT NULL THEN (SELECT string_agg({element}, {separator} ORDER BY d)"
        " FROM generate_subscripts(item.schedule, 1) AS d) END"
    )


_XML_SCHEDULE = _schedule_elements("'<' || {day} || '>' || {windows} || '</' || {day} || '>'", "''")
_JSON_SCHEDULE = _schedule_elements("""'"' || {day} || '":"' || {windows} || '"'""", "','")

_XML_ITEM = f"""concat(
    '<incident id="', item.item_id, '"><creationtime>', item.created, '</creationtime><updatetime>', item.updated,
    '</updatetime><source><reference>', {_xml_text("%(publisher)s::text")}, '</reference><name>',
    {_xml_text("item.source_name")}, '</name></source><type>', item.type, '</type><subtype>', item.subtype,
    '</subtype><description>', {_xml_text("item.description")}, '</description><location><street>',
    {_xml_text("item.street")}, '</street><polyline>', item.polyline, '</polyline>',
    '<location_description>' || {_xml_text("item.location_description")} || '</location_description>',
    '<direction>' || item.direction || '</direction>', '</location><starttime>', item.start_time, '</starttime>',
    '<endtime>' || item.end_time || '</endtime>',
    '<schedule>' || {_XML_SCHEDULE} || '</schedule>',
    '</incident>'
)"""

_JSON_ITEM = f"""concat(
    '{{"id":"', item.item_id, '","creationtime":"', item.created, '","updatetime":"', item.updated,
    '","source":{{"reference":', {_json_text("%(publisher)s::text")}, ',"name":', {_json_text("item.source_name")},
    '}},"type":"', item.type, '","subtype":"', item.subtype, '","description":', {_json_text("item.description")},
    ',"location":{{"street":', {_json_text("item.street")}, ',"polyline":"', item.polyline, '"',
    ',"location_description":' || {_json_text("item.location_description")},
    ',"direction":"' || item.direction || '"', '}},"starttime":"', item.start_time, '"',
    ',"endtime":"' || item.end_time || '"',
    ',"schedule":{{' || {_JSON_SCHEDULE} || '}}',
    '}}'
)"""


def _document_sql(*, item: str, head: str, separator: str, tail: str) -> str:
    return (
        _DOCUMENT_SQL.replace("{item}", item)
        .replace("{head}", head)
        .replace("{separator}", separator)
        .replace("{tail}", tail)
    )


_XML_SQL = _document_sql(
    item=_XML_ITEM,
    head=f"""E'<?xml version="1.0" encoding="UTF-8"?>\\n<incidents timestamp="' || {_TIMESTAMP} || '">'""",
    separator="''",
    tail="E'</incidents>\\n'",
)
_JSON_SQL = _document_sql(
    item=_JSON_ITEM,
    head=f"""'{{"timestamp":"' || {_TIMESTAMP} || '","incidents":['""",
    separator="','",
    tail="']}'",
)


def document(
    *, now: datetime, built_at: datetime | None = None, filters: FeedFilters | None = None, as_json: bool = False
) -> bytes:
    """The CIFS document (XML, or JSON), written by PostgreSQL in one query; `built_at` is its timestamp."""
    works, incidents, params = feed_where(now, filters or FeedFilters())
    params.update(
        now=built_at or now,
        publisher=settings.AUMAN_FEED_PUBLISHER,
        city=settings.AUMAN_CITY_NAME,
        labels=incident_labels(),
        roadwork_types=json.dumps(ROADWORK_TYPES),
        roadwork_fallback=json.dumps(ROADWORK_FALLBACK_TYPE),
        incident_types=json.dumps(INCIDENT_TYPES),
        incident_fallback=json.dumps(INCIDENT_FALLBACK_TYPE),
        major_categories=[int(category) for category in MAJOR_ACCIDENT_CATEGORIES],
        weekday_elements=list(WEEKDAY_ELEMENTS),
        description_max=DESCRIPTION_MAX,
        accident=IncidentKind.ACCIDENT,
        police_operation=IncidentKind.POLICE_OPERATION,
        both=Direction.BOTH,
        backward=Direction.BACKWARD,
        incident_both=IncidentDirection.BOTH,
        incident_forward=IncidentDirection.FORWARD,
        incident_backward=IncidentDirection.BACKWARD,
    )
    sql = (_JSON_SQL if as_json else _XML_SQL).replace("{works}", works).replace("{incidents}", incidents)
    return fetch_document(sql, params)


# --- The JSON document as XML ----------------------------------------------------------------------------------


def _element(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for key, inner in value.items():
            _element(key, inner, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_text(str(value))}</{name}>")


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
    return document(now=now or timezone.now(), filters=filters, as_json=as_json)


def _serve(request: HttpRequest, *, as_json: bool) -> HttpResponse:
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    now = timezone.now()
    return serve_feed(
        request,
        name="waze-cifs-json" if as_json else "waze-cifs-xml",
        fingerprint=lambda: situation_fingerprint(now=now, filters=filters),
        build=lambda built_at: document(now=now, built_at=built_at, filters=filters, as_json=as_json),
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
