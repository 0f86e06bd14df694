"""WZDx 4.2 WorkZoneFeed: approved and running roadworks, and their detours, as GeoJSON road events.

Specification: https://github.com/usdot-jpo-ode/wzdx (v4.2); schema in ../shared/data/schemas/wzdx/ (and a
bundled copy in auman/data/ for ``manage.py check_feeds``). The module has the shape the GeoJSON feed has: a
fingerprint of the feed's rows (``workzone_fingerprint``), the document written by PostgreSQL in one query
(``workzone_document``) and the view ``workzone_feed``.

PostgreSQL writes the whole document: each road event's properties as JSON text (concat() of pre-quoted parts,
to_json for free text), its geometry as ST_AsGeoJSON's text, its id (uuid_generate_v5 for the derived ones), its
related road events (the ids of its work's events, gathered by a window), the data sources (one per organisation,
grouped), and feed_info around them, spliced from its JSON text as Python's encoder writes it; the bytes come back
as PostgreSQL sent them (``sql.fetch_document``). ``document_sql`` and the helpers it uses are shared with the TDx
feed, which is built the same way.

Choices the specification leaves to the producer, made here once:

- One road event per direction of travel. German streets have no signed direction (no "northbound"), so
  each event says ``undefined`` and its coordinates run in its direction of travel: a work on the
  digitising side keeps the line as drawn, one against it gets the line reversed, and a work on both sides
  gets both events. The first event of a work keeps the work's UUID (what the REST API shows); the others
  get UUIDv5s derived from it ("part-2", "part-1-backward", ...), stable from one build to the next.
- Geometry. WZDx 4.2 allows only LineString (or MultiPoint), in the direction of travel. Touching parts of
  a MultiLineString are merged; parts that stay apart become road events of their own. A polygon becomes the
  centre line of its minimum rotated rectangle along the long side: for the usual polygon, a strip along a
  carriageway, that runs down the middle of the road. A polygon has no digitising direction, so it is one
  road event with direction ``unknown``.
- Related events. The events of one work name each other ``related-work-zone`` and its detours
  ``related-detour``; each detour names the work's events ``related-work-zone``.
- Detours. Each detour (roadworks.Detour) is a DetourRoadEvent with the detour's own period, or the work's
  when it has none; its line is taken as drawn, which is the way traffic is sent along it.
- Lanes, only where the record fixes every lane of the direction: a full closure with a known number of
  lanes (all closed), and alternating one-way traffic (one lane, alternating flow). For a lane closure the
  record says how many lanes close but not which nor how many stay open, so ``vehicle_impact`` says it.
- One-way traffic (one direction closed) closes all lanes of the affected direction when the work names
  one, and reads as some lanes closed when it names both.
- Verification. Times come from the permit and lines are drawn on a map, not measured in the field,
  so every ``is_*_verified`` is false and ``location_method`` is ``unknown``.
- Units. WZDx has centimetres and kilograms but no metres or tonnes: widths and heights are sent in
  centimetres, weights in kilograms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from roadworks.models import Direction, RoadworkStatus, TrafficManagement, WorkKind

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .sql import PART_AS_LINE_SQL, fetch_document, utc_sql

WZDX_VERSION = "4.2"
CONTENT_TYPE = "application/geo+json"
FEED_NAME = "wzdx-4.2-workzones"

# Works that are on the road or will be. Completed, cancelled and revoked works have left the road;
# drafts, submissions and refusals were never public.
FEED_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)
# With active_on a consumer looks back too: works that were on the road then and are completed now.
LOOK_BACK_STATUSES = (*FEED_STATUSES, RoadworkStatus.COMPLETED)
# A work whose end passed less than this long ago stays in the feed, so a consumer that polls
# rarely still sees its final end date instead of having it vanish unexplained.
ENDED_GRACE = timedelta(days=1)

VEHICLE_IMPACT = {
    TrafficManagement.FULL_CLOSURE: "all-lanes-closed",
    TrafficManagement.LANE_CLOSURE: "some-lanes-closed",
    TrafficManagement.ALTERNATING_ONE_WAY: "alternating-one-way",
    # For a work on both sides; a work naming its side closes that direction (see the module docstring).
    TrafficManagement.ONE_WAY: "some-lanes-closed",
    TrafficManagement.FOOTWAY_CLOSURE: "all-lanes-open",
    TrafficManagement.CYCLE_LANE_CLOSURE: "all-lanes-open",
    TrafficManagement.NO_CARRIAGEWAY_INCURSION: "all-lanes-open",
}

# WZDx's work types are few and American; each kind goes to the one that describes where the work happens.
# "other" sends no types_of_work rather than a guess.
TYPE_OF_WORK = {
    WorkKind.GAS: "below-road-work",
    WorkKind.WATER: "below-road-work",
    WorkKind.DISTRICT_HEATING: "below-road-work",
    WorkKind.ELECTRICITY: "below-road-work",
    WorkKind.TELECOM: "below-road-work",
    WorkKind.SEWER: "below-road-work",
    WorkKind.TRAM: "surface-work",  # rails lie in the road surface
    WorkKind.ROAD_RESURFACING: "surface-work",
    WorkKind.ROAD_CONSTRUCTION: "surface-work",
    WorkKind.BUILDING_SITE: "roadside-work",
    WorkKind.STREET_LIGHTING: "overhead-work",
    WorkKind.TRAFFIC_SIGNALS: "roadside-work",
    WorkKind.ROAD_MARKING: "painting",
    WorkKind.BRIDGE: "maintenance",
    WorkKind.GREENERY: "roadside-work",
    WorkKind.SCAFFOLDING: "roadside-work",
    WorkKind.CRANE: "overhead-work",
    WorkKind.REMOVAL: "roadside-work",
}

# The publisher's own data source: for items without an organisation (TDx), and for an empty feed, as WZDx
# requires at least one data source.
PUBLISHER_SOURCE_ID = "publisher"


# The WHERE clause the rows and the fingerprint share, so they always describe the same set.
# period && [since, ∞) is "ends after since" in a form the GiST index on (geometry, period) can use.
_IN_FEED = "r.status = ANY(%(statuses)s) AND r.period && tstzrange(%(since)s, NULL)"
_IN_FEED_ACTIVE_ON = "r.status = ANY(%(statuses)s)"

# The separate parts of a geometry as lines in WGS84, in digitising direction, numbered from 1. A polygon
# becomes the long centre line of its minimum rotated rectangle (corners c1..c4).
_PARTS = (
    """
    SELECT part.n, ST_Transform(line.geom, 4326) AS geom
    -- Join the pieces of a line drawn in several strokes, keeping their direction.
    FROM (SELECT CASE WHEN ST_GeometryType({geometry}) = 'ST_MultiLineString'
                      THEN ST_LineMerge({geometry}, true) ELSE {geometry} END AS whole) AS merged
    -- ST_GeometryN(g, 1) of a single geometry is g itself; this costs a third of ST_Dump, which builds a
    -- result set per row (measured at 10,000 works: 150 ms against 50 ms).
    CROSS JOIN LATERAL generate_series(1, ST_NumGeometries(merged.whole)) AS numbers(n)
    CROSS JOIN LATERAL (SELECT numbers.n, ST_GeometryN(merged.whole, numbers.n) AS geom) AS part"""
    + PART_AS_LINE_SQL.replace("{part}", "part.geom")
    + """    -- A degenerate shape (a zero-area polygon from a raw import; the API refuses those) has no line.
    WHERE line.geom IS NOT NULL AND NOT ST_IsEmpty(line.geom) AND ST_NPoints(line.geom) >= 2
"""
)


def quoted_sql(expression: str) -> str:
    """SQL for a JSON string of a value that needs no escaping (times, numbers, our own enum values)."""
    return f"""'"' || {expression} || '"'"""


def json_object_sql(*members: tuple[str, str] | tuple[str, str, bool]) -> str:
    """SQL writing a JSON object as text from (key, SQL for the member's JSON text[, optional]) members.

    One concat() call rather than json_build_object: that one cannot leave out a member, and json_strip_nulls
    would parse every object again. concat() skips NULL arguments, so an optional member whose value is NULL
    (and with it `',"key":' || NULL`) is left out. The first member must not be optional (it carries no comma).
    """
    parts = []
    for index, (key, value, *_optional) in enumerate(members):
        parts.append(f"""'{"," if index else ""}"{key}":' || {value}""")
    return "concat('{', " + ", ".join(parts) + ", '}')"


def _core_details(event_type: str, road_names: str, direction: str, name: str, description: str) -> str:
    return json_object_sql(
        ("event_type", f"""'"{event_type}"'"""),
        ("data_source_id", quoted_sql("e.organisation_id")),
        ("road_names", road_names),
        ("direction", direction),
        ("name", f"to_json({name})::text"),
        ("description", f"to_json(NULLIF({description}, ''))::text", True),
        ("creation_date", quoted_sql(utc_sql("e.created_at"))),
        ("update_date", quoted_sql(utc_sql("e.updated_at"))),
    )


_WORK_ZONE_CORE = _core_details(
    "work-zone",
    # WZDx requires a road name; a work drawn without one still has to reach the feed.
    road_names="CASE WHEN cardinality(e.street_names) > 0 THEN to_json(e.street_names)::text "
    "ELSE json_build_array(e.title)::text END",
    direction="""CASE WHEN e.from_area THEN '"unknown"' ELSE '"undefined"' END""",
    name="e.title",
    description="e.description",
)

_WORK_ZONE_PROPERTIES = json_object_sql(
    ("start_date", quoted_sql(utc_sql("lower(e.period)"))),
    ("end_date", quoted_sql(utc_sql("upper(e.period)"))),
    ("is_start_date_verified", "'false'"),
    ("is_end_date_verified", "'false'"),
    ("is_start_position_verified", "'false'"),
    ("is_end_position_verified", "'false'"),
    ("location_method", """'"unknown"'"""),
    ("work_zone_type", """'"static"'"""),
    (
        "vehicle_impact",
        quoted_sql(
            "CASE WHEN e.traffic_management = %(one_way)s AND e.direction <> %(both)s AND NOT e.from_area "
            "THEN 'all-lanes-closed' ELSE %(impact)s::jsonb ->> e.traffic_management END"
        ),
    ),
    ("reduced_speed_limit_kph", "e.speed_limit_kmh::text", True),
    (
        "restrictions",
        """CASE WHEN num_nonnulls(e.width_cm, e.height_cm, e.weight_kg) > 0 THEN (
               SELECT json_agg(json_build_object('type', x.type, 'value', x.value, 'unit', x.unit))::text
               FROM (VALUES ('reduced-width', e.width_cm, 'centimeters'),
                            ('reduced-height', e.height_cm, 'centimeters'),
                            ('reduced-weight', e.weight_kg, 'kilograms')) AS x(type, value, unit)
               WHERE x.value IS NOT NULL) END""",
        True,
    ),
    ("types_of_work", """'[{"type_name":"' || (%(work)s::jsonb ->> e.work_kind) || '"}]'""", True),
    (
        "lanes",
        """CASE WHEN e.traffic_management = %(full_closure)s AND e.lanes_affected > 0
                THEN (SELECT '[' || string_agg('{"order":' || i || ',"status":"closed","type":"general"}', ',') || ']'
                      FROM generate_series(1, e.lanes_affected) AS i)
                WHEN e.traffic_management = %(alternating)s
                THEN '[{"order":1,"status":"alternating-flow","type":"general"}]' END""",
        True,
    ),
)
_DETOUR_CORE = _core_details(
    "detour",
    road_names="json_build_array(e.name)::text",
    direction="""'"undefined"'""",
    name="e.name",
    description="e.description",
)

_DETOUR_PROPERTIES = json_object_sql(
    ("start_date", quoted_sql(utc_sql("lower(coalesce(e.period, e.work_period))"))),
    ("end_date", quoted_sql(utc_sql("upper(coalesce(e.period, e.work_period))"))),
    ("is_start_date_verified", "'false'"),
    ("is_end_date_verified", "'false'"),
)


def doubled_braces(sql: str) -> str:
    # The document SQL templates are str.format templates (for {where}): the JSON braces in the SQL must be doubled.
    return sql.replace("{", "{{").replace("}", "}}")


def related_links_sql(link_type: str, ids: str) -> str:
    """SQL for the related road events of type `link_type`, one per id in the text array `ids`: the JSON objects
    joined with commas, in the array's order; NULL for an empty or NULL array."""
    link = '{"type":"' + link_type + '","id":"'
    return f"""CASE WHEN cardinality({ids}) > 0 THEN '{link}' || array_to_string({ids}, '"}},{link}') || '"}}' END"""


def related_road_events_sql(links: str) -> str:
    """SQL for the related_road_events member (with its leading comma) from `links` (SQL for the JSON objects joined
    with commas); "" when that is empty or NULL."""
    return f"""CASE WHEN {links} <> '' THEN ',"related_road_events":[' || {links} || ']' ELSE '' END"""


def document_sql(*, ctes: str, feature_order: str, source_order: str, version: str) -> str:
    """The SQL (a str.format template for {where}) that writes a whole WZDx-style feed document (WZDx and TDx).

    `ctes` is the body of a WITH (also a template) that defines ``features``, one row per road event with its
    Feature's text as ``feature``, written in the order `feature_order` (SQL on ``f``), and ``sources``, one row per
    organisation with events (``organisation_id``, NULL for events without one, ``organisation_name``,
    ``organisation_email``, ``updated_at`` the newest update among its events), written in the order `source_order`
    (SQL on ``s``) that its first event has among the features. feed_info is the %(feed_info)s text (a JSON object
    as Python's encoder writes it) with update_date (%(built_at)s), version and data_sources added at its end;
    events without an organisation, and an empty feed, have the publisher's source (%(publisher)s).
    """
    publisher = (
        f"""'{{{{"data_source_id":"{PUBLISHER_SOURCE_ID}","organization_name":' || to_json(%(publisher)s::text)"""
    )
    return f"""
WITH {ctes}
SELECT concat(
    '{{{{"feed_info":', left(%(feed_info)s, -1), ',"update_date":"', {utc_sql("%(built_at)s::timestamptz")},
    '","version":"{version}","data_sources":[',
    (SELECT coalesce(string_agg(
                CASE WHEN s.organisation_id IS NULL THEN {publisher}
                     ELSE '{{{{"data_source_id":"' || s.organisation_id
                          || '","organization_name":' || to_json(coalesce(s.organisation_name, '')) END
                || CASE WHEN s.organisation_email <> '' THEN ',"contact_email":' || to_json(s.organisation_email)
                        ELSE '' END
                || ',"update_date":"' || {utc_sql("s.updated_at")} || '"}}}}', ',' ORDER BY {source_order}),
            {publisher} || '}}}}')
     FROM sources AS s),
    ']}}}},"type":"FeatureCollection","features":[',
    (SELECT string_agg(f.feature, ',' ORDER BY {feature_order}) FROM features AS f),
    ']}}}}')
"""


def _links(link_type: str, ids: str) -> str:
    return doubled_braces(related_links_sql(link_type, ids))


_FEATURES = f"""
base AS (
    SELECT r.id, r.organisation_id, o.name AS organisation_name, o.email AS organisation_email,
           r.title, r.description, r.street_names, r.period, r.created_at, r.updated_at,
           r.traffic_management, r.direction, r.work_kind, r.lanes_affected, r.geometry,
           ST_Dimension(r.geometry) = 2 AS from_area,
           ST_GeometryType(r.geometry) = 'ST_LineString' AND ST_NPoints(r.geometry) >= 2 AS simple,
           (r.max_width_m * 100)::integer AS width_cm, (r.max_height_m * 100)::integer AS height_cm,
           (r.max_weight_t * 1000)::integer AS weight_kg, r.speed_limit_kmh
    FROM roadworks_roadwork AS r
    JOIN accounts_organisation AS o ON o.id = r.organisation_id
    WHERE {{where}}
),
-- The texts are the same for every event of a work (both directions, every part): written once per work.
works AS (
    SELECT e.*,
           '","type":"Feature","properties":{{{{"core_details":' || left({doubled_braces(_WORK_ZONE_CORE)}, -1) AS head,
           '}}}},' || substr({doubled_braces(_WORK_ZONE_PROPERTIES)}, 2) || ',"geometry":' AS tail_start
    FROM base AS e
),
-- The separate parts of each work, each transformed once, before the split by direction: a plain LineString (nine
-- in ten works) is its own single part and skips the merge-dump-envelope machinery of _PARTS (measured with
-- EXPLAIN ANALYZE at 10,000 works: the parts and the per-event transform were two thirds of the query).
work_parts AS MATERIALIZED (
    SELECT w.id, w.head, w.tail_start, w.period, w.direction, w.from_area, part.n,
           ST_AsGeoJSON(part.geom, 6) AS forward,
           CASE WHEN w.direction <> %(forward)s AND NOT w.from_area
                THEN ST_AsGeoJSON(ST_Reverse(part.geom), 6) END AS backward
    FROM works AS w
    CROSS JOIN LATERAL (
        SELECT 1 AS n, ST_Transform(w.geometry, 4326) AS geom WHERE w.simple
        UNION ALL
        SELECT parts.n, parts.geom FROM ({_PARTS.format(geometry="w.geometry")}) AS parts WHERE NOT w.simple
    ) AS part
),
work_events AS (
    SELECT p.*, travel.reversed
    FROM work_parts AS p
    -- One event per direction of travel (the module docstring says which).
    CROSS JOIN LATERAL (VALUES (false), (true)) AS travel(reversed)
    WHERE CASE WHEN p.from_area THEN NOT travel.reversed
               WHEN travel.reversed THEN p.direction <> %(forward)s
               ELSE p.direction <> %(backward)s END
),
detour_events AS (
    SELECT w.id, w.organisation_id, w.updated_at, w.created_at, w.period AS work_period,
           d.id AS detour_id, d.name, d.description, d.period,
           part.n, part.geom AS line
    FROM works AS w
    JOIN roadworks_detour AS d ON d.roadwork_id = w.id
    CROSS JOIN LATERAL ({_PARTS.format(geometry="d.geometry")}) AS part
),
-- Each event as the two halves of its Feature text around the place where its related road events go (the end of
-- core_details): "head" follows the event's id, "tail" closes the Feature.
events AS (
    -- The first event of a work (first part; against the digitising direction only for a work on that side
    -- alone) keeps the work's id; the others are named for their derived ids.
    SELECT e.id, 'work-zone' AS event_type,
           CASE WHEN e.n = 1 AND (NOT e.reversed OR e.direction = %(backward)s) THEN ''
                ELSE 'part-' || e.n || CASE WHEN e.reversed THEN '-backward' ELSE '' END END AS key,
           e.head, e.tail_start || CASE WHEN e.reversed THEN e.backward ELSE e.forward END || '}}}}' AS tail,
           lower(e.period) AS start, 0 AS detour_id, e.n, e.reversed
    FROM work_events AS e
    UNION ALL
    SELECT e.id, 'detour', 'detour-' || e.detour_id || CASE WHEN e.n > 1 THEN '-part-' || e.n ELSE '' END,
           '","type":"Feature","properties":{{{{"core_details":' || left({doubled_braces(_DETOUR_CORE)}, -1),
           '}}}},' || substr({doubled_braces(_DETOUR_PROPERTIES)}, 2) || ',"geometry":' || ST_AsGeoJSON(e.line, 6)
           || '}}}}',
           lower(e.work_period), e.detour_id, e.n, false
    FROM detour_events AS e
),
-- Each event's id (the first event of a work keeps the work's, the others get UUIDv5s named by their keys) and the
-- ids of its work's events, in document order: the work zones and the detours.
numbered AS (
    SELECT e.*,
           array_agg(e.event_id) FILTER (WHERE e.event_type = 'work-zone') OVER work AS work_zones,
           array_agg(e.event_id) FILTER (WHERE e.event_type = 'detour') OVER work AS detours
    FROM (SELECT e.*, CASE WHEN e.key = '' THEN e.id ELSE uuid_generate_v5(e.id, e.key) END::text AS event_id
          FROM events AS e) AS e
    -- start is the same for every event of a work: partitioned so, the window sorts the events in document order,
    -- and the document's string_agg finds them sorted.
    WINDOW work AS (PARTITION BY e.start, e.id ORDER BY e.detour_id, e.n, e.reversed
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
-- A work zone names the work's other work zones and its detours; a detour names the work zones.
features AS (
    SELECT e.start, e.id, e.detour_id, e.n, e.reversed,
           concat('{{{{"id":"', e.event_id, e.head, {doubled_braces(related_road_events_sql("related.links"))},
                  e.tail) AS feature
    FROM numbered AS e
    CROSS JOIN LATERAL (
        SELECT CASE WHEN e.event_type = 'detour' THEN {_links("related-work-zone", "e.work_zones")}
                    ELSE concat_ws(',', {_links("related-work-zone", "others.other_work_zones")},
                                   {_links("related-detour", "e.detours")}) END AS links
        FROM (SELECT array_remove(e.work_zones, e.event_id) AS other_work_zones) AS others
    ) AS related
),
-- One source per organisation of the works with events (every part has one, so has every part of a detour), at its
-- first work in document order, with the newest update of those works.
sources AS (
    SELECT DISTINCT ON (w.organisation_id) w.organisation_id, w.organisation_name, w.organisation_email,
           max(w.updated_at) OVER (PARTITION BY w.organisation_id) AS updated_at, lower(w.period) AS start, w.id
    FROM works AS w
    WHERE w.id IN (SELECT p.id FROM work_parts AS p UNION ALL SELECT d.id FROM detour_events AS d)
    ORDER BY w.organisation_id, lower(w.period), w.id
)"""

_DOCUMENT_SQL = document_sql(
    ctes=_FEATURES,
    feature_order="f.start, f.id, f.detour_id, f.n, f.reversed",
    source_order="s.start, s.id",
    version=WZDX_VERSION,
)


# Detours have no updated_at of their own: their count and row versions (xmin) catch every change to them.
_FINGERPRINT_SQL = """
SELECT count(*), max(r.updated_at), sum(r.xmin::text::bigint), sum(o.xmin::text::bigint),
       (SELECT count(*)::text || ':' || coalesce(sum(d.xmin::text::bigint), 0)
        FROM roadworks_detour AS d JOIN roadworks_roadwork AS r ON r.id = d.roadwork_id WHERE {where})
FROM roadworks_roadwork AS r
JOIN accounts_organisation AS o ON o.id = r.organisation_id
WHERE {where}
"""


def _where(now: datetime, filters: FeedFilters) -> tuple[str, dict[str, Any]]:
    extra, params = filters.sql("r")
    if filters.active_on:
        params["statuses"] = list(LOOK_BACK_STATUSES)
        return _IN_FEED_ACTIVE_ON + extra, params
    params.update(statuses=list(FEED_STATUSES), since=now - ENDED_GRACE)
    return _IN_FEED + extra, params


def workzone_document(
    *, now: datetime, built_at: datetime, feed_info: Mapping[str, Any], filters: FeedFilters | None = None
) -> bytes:
    """The WorkZoneFeed document as UTF-8 bytes, written by PostgreSQL in one query.

    `now` decides which works are in the feed, `built_at` is its feed_info.update_date; `feed_info` is the fixed
    part of feed_info (feed_info_from_settings()), written first, in its order.
    """
    where, params = _where(now, filters or FeedFilters())
    params.update(
        forward=Direction.FORWARD,
        backward=Direction.BACKWARD,
        both=Direction.BOTH,
        one_way=TrafficManagement.ONE_WAY,
        full_closure=TrafficManagement.FULL_CLOSURE,
        alternating=TrafficManagement.ALTERNATING_ONE_WAY,
        impact=json.dumps(VEHICLE_IMPACT),
        work=json.dumps(TYPE_OF_WORK),
        **document_params(built_at=built_at, feed_info=feed_info),
    )
    return fetch_document(_DOCUMENT_SQL.format(where=where), params)


def workzone_fingerprint(*, now: datetime, filters: FeedFilters | None = None) -> str:
    """Changes whenever a row of the feed changes, appears or disappears, or its organisation or detours change.

    count(*) catches rows leaving (deleted, status changed, ended); max(updated_at) catches saves.
    xmin, the id of the transaction that wrote a row version, catches every other write, including
    QuerySet.update() calls that leave updated_at alone: a new version always gets a new xmin. Its
    sum over the organisations also catches a renamed organisation, whose name the feed carries.
    """
    where, params = _where(now, filters or FeedFilters())
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(where=where), params)
        count, last_update, row_versions, org_versions, detours = cursor.fetchone()
    stamp = last_update.isoformat() if last_update else "-"
    return f"{count}:{stamp}:{row_versions or 0}:{org_versions or 0}:{detours}"


def feed_info_from_settings() -> dict[str, Any]:
    """The fixed part of feed_info; the document adds update_date, version and data_sources after it."""
    info: dict[str, Any] = {"publisher": settings.AUMAN_FEED_PUBLISHER}
    if settings.AUMAN_FEED_CONTACT_EMAIL:
        info["contact_email"] = settings.AUMAN_FEED_CONTACT_EMAIL
    if settings.AUMAN_FEED_MAX_AGE >= 1:  # WZDx wants a positive number of seconds
        info["update_frequency"] = settings.AUMAN_FEED_MAX_AGE
    return info


def document_params(*, built_at: datetime, feed_info: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters document_sql() needs: feed_info's text, as Python's JSON encoder writes it, the build time and
    the publisher (for its data source)."""
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    return {"feed_info": encode(dict(feed_info)), "built_at": built_at, "publisher": feed_info["publisher"]}


def build_now(filters: FeedFilters | None = None, *, now: datetime | None = None) -> bytes:
    """The feed as a request without conditions gets it, built afresh (check_feeds and the benchmark)."""
    now = now or timezone.now()
    return workzone_document(now=now, built_at=now, feed_info=feed_info_from_settings(), filters=filters)


@feed_view
def workzone_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/wzdx/v4.2/workzones.geojson[?bbox=...][&updated_since=ISO 8601][&active_on=date or date-time]"""
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    feed_info = feed_info_from_settings()
    now = timezone.now()

    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=lambda: workzone_fingerprint(now=now, filters=filters),
        build=lambda built_at: workzone_document(now=now, built_at=built_at, feed_info=feed_info, filters=filters),
        content_type=CONTENT_TYPE,
        # The bytes depend on the filters and on the configured header, not only on the rows.
        variant={**filters.variant(), **{f"info.{k}": str(v) for k, v in feed_info.items()}},
    )


def validate(body: bytes) -> list[str]:
    from .validation import validate_wzdx

    return validate_wzdx(body)


FEED = register(
    Feed(
        key="wzdx-workzones",
        title=_("Roadworks and detours (WZDx)"),
        format="WZDx 4.2 WorkZoneFeed (GeoJSON)",
        url_name="feeds:wzdx-workzones",
        content_type=CONTENT_TYPE,
        validate=validate,
        description=_("Approved and running roadworks, one road event per direction of travel, with their detours."),
    )
)
