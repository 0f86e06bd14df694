"""Roadworks and incidents as rows for the situation feeds (Waze CIFS and DATEX II), fetched in PostGIS.

Both formats describe the same things, so they share this selector: one query for the roadworks (with their
separate parts as lines, and their detours) and one for the incidents (with their accident classification),
in one transaction, and one fingerprint query over exactly the rows those queries read.

PostgreSQL does the geometry work and the text formatting both formats need:

- lines come out as position lists, ``"lat lon lat lon ..."`` with six decimals (about 0.1 m): CIFS's polyline
  and GML's posList (EPSG:4326, latitude first) are the same string;
- a roadwork's line is in the affected direction of travel (reversed for works against the digitising
  direction); touching strokes of a MultiLineString are merged, parts that stay apart are separate lines;
- a polygon becomes the long centre line of its minimum rotated rectangle, as in the WZDx feed: consumers
  match lines to their road network, and the outline of a site would go round the block and back;
- times are written in the configured local time zone (TIME_ZONE) with their UTC offset
  (``2027-03-01T07:00:00+01:00``),
  which both formats accept and which keeps a daily window (07:00-17:00) readable next to them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction

from roadworks.models import Direction, RoadworkStatus
from traffic.models import ACTIVE_INCIDENT_STATUSES, IncidentDirection, IncidentStatus

from .filters import FeedFilters
from .wzdx import PART_AS_LINE_SQL

# Works on the road or coming, as in the WZDx feed; with active_on, also works that have been completed,
# so a consumer can look back.
FEED_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)
LOOK_BACK_STATUSES = (*FEED_STATUSES, RoadworkStatus.COMPLETED)
# A work whose end passed less than this long ago stays in the feeds, so a rare poller still sees its end.
ENDED_GRACE = timedelta(days=1)
# Incidents: the active ones; looking back (active_on) also cleared ones. A cancelled report was never true.
INCIDENT_LOOK_BACK_STATUSES = (*ACTIVE_INCIDENT_STATUSES, IncidentStatus.CLEARED)


class DetourRow(NamedTuple):
    id: int
    name: str
    description: str
    start: str | None  # local time with offset; None: the roadwork's period
    end: str | None
    lines: list[str]  # position lists, one per separate part


class RoadworkRow(NamedTuple):
    id: str
    version: int
    reference: str
    title: str
    description: str
    street_names: list[str]
    organisation_name: str
    start: str  # local time with offset
    end: str
    created: str
    updated: str
    status: str
    work_kind: str
    traffic_management: str
    direction: str
    lanes_affected: int | None
    category: str
    is_emergency: bool
    daily_start: str | None  # "HH:MM" local time
    daily_end: str | None
    weekdays: list[int]  # 0 = Monday; empty: every day
    from_area: bool  # the lines were derived from a polygon: no direction of travel
    lines: list[str]  # position lists in the direction of travel, one per separate part
    detours: list[DetourRow]


class IncidentRow(NamedTuple):
    id: str
    version: int
    kind: str
    status: str
    description: str
    street_name: str
    lanes_blocked: int | None
    direction: str
    occurred: str
    reported: str
    cleared: str | None
    expected_clearance: str | None
    created: str
    updated: str
    point: str  # "lat lon"
    line: str | None  # position list of the affected stretch, in the direction of travel
    # The accident classification (EUSKA codes), all None when the incident is no accident or not yet classified.
    category: int | None
    accident_kind: int | None  # Unfallart
    accident_type: int | None  # Unfalltyp
    involves_bicycle: bool | None
    involves_car: bool | None
    involves_pedestrian: bool | None
    involves_motorcycle: bool | None
    involves_goods_vehicle: bool | None
    involves_other: bool | None
    killed: int | None
    seriously_injured: int | None
    slightly_injured: int | None


def _local(column: str) -> str:
    # TZH:TZM is the offset in the session time zone, which situation_rows sets to TIME_ZONE around its queries.
    return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')"""


def _poslist(geometry: str) -> str:
    """SQL for a geometry's vertices in WGS84 as "lat lon lat lon ...", at most six decimals (about 0.1 m).

    Cut from the WKT of the flipped geometry: measured ten times faster than formatting each vertex of
    ST_DumpPoints with to_char. WKT drops trailing zeros (49.4846 is 49.484600), which changes no position.
    Only for a Point or a LineString, whose WKT has one pair of parentheses: the text between them is cut with
    split_part, a third of the cost of a regular expression (at 10,000 works: 15 ms against 60 ms); an empty
    geometry ("LINESTRING EMPTY") gives NULL.
    """
    wkt = f"ST_AsText(ST_FlipCoordinates(ST_Transform({geometry}, 4326)), 6)"
    return f"translate(NULLIF(split_part(split_part({wkt}, '(', 2), ')', 1), ''), ',', ' ')"


# The separate parts of a geometry as lines in its own CRS, in digitising direction. A polygon becomes the long
# centre line of its minimum rotated rectangle, as in the WZDx feed (wzdx.PART_AS_LINE_SQL); a degenerate one gives
# no line.
_LINES = (
    """
    SELECT part.path, line.geom
    FROM ST_Dump(CASE WHEN ST_GeometryType({geometry}) = 'ST_MultiLineString'
                      THEN ST_LineMerge({geometry}, true) ELSE {geometry} END) AS part
"""
    + PART_AS_LINE_SQL.replace("{part}", "part.geom")
    + """    WHERE line.geom IS NOT NULL
"""
)


def _lines_array(geometry: str, *, reverse_if: str | None = None) -> str:
    """SQL for the position lists of a geometry's separate parts, in order.

    A plain LineString, the usual case, skips the dump-merge-envelope machinery: measured a third of the query.
    """
    line = f"CASE WHEN {reverse_if} THEN ST_Reverse({{g}}) ELSE {{g}} END" if reverse_if else "{g}"
    return (
        f"CASE WHEN ST_GeometryType({geometry}) = 'ST_LineString' THEN ARRAY[{_poslist(line.format(g=geometry))}]"
        f" ELSE ARRAY(SELECT {_poslist(line.format(g='parts.geom'))}"
        f" FROM ({_LINES.format(geometry=geometry)}) AS parts ORDER BY parts.path) END"
    )


_ROADWORK_LINES = _lines_array("r.geometry", reverse_if="r.direction = %(backward)s")

_DETOURS = f"""
    (SELECT json_agg(json_build_array(
                d.id, d.name, d.description,
                CASE WHEN d.period IS NOT NULL AND NOT lower_inf(d.period) THEN {_local("lower(d.period)")} END,
                CASE WHEN d.period IS NOT NULL AND NOT upper_inf(d.period) THEN {_local("upper(d.period)")} END,
                {_lines_array("d.geometry")}
            ) ORDER BY d.id)
     FROM roadworks_detour AS d WHERE d.roadwork_id = r.id)
"""

_ROADWORKS_SQL = f"""
SELECT r.id::text, r.version, r.reference, r.title, r.description, r.street_names, o.name,
       {_local("lower(r.period)")}, {_local("upper(r.period)")}, {_local("r.created_at")}, {_local("r.updated_at")},
       r.status, r.work_kind, r.traffic_management, r.direction, r.lanes_affected, r.category, r.is_emergency,
       to_char(r.daily_start, 'HH24:MI'), to_char(r.daily_end, 'HH24:MI'), r.weekdays,
       ST_Dimension(r.geometry) = 2,
       {_ROADWORK_LINES},
       {_DETOURS}
FROM roadworks_roadwork AS r
JOIN accounts_organisation AS o ON o.id = r.organisation_id
WHERE {{where}}
ORDER BY lower(r.period), r.id
"""

_INCIDENTS_SQL = f"""
SELECT i.id::text, i.version, i.kind, i.status, i.description, i.street_name, i.lanes_blocked, i.direction,
       {_local("i.occurred_at")}, {_local("i.reported_at")},
       CASE WHEN i.cleared_at IS NOT NULL THEN {_local("i.cleared_at")} END,
       CASE WHEN i.expected_clearance_at IS NOT NULL THEN {_local("i.expected_clearance_at")} END,
       {_local("i.created_at")}, {_local("i.updated_at")},
       {_poslist("i.location")},
       CASE WHEN i.affected_line IS NOT NULL THEN {
    _poslist("CASE WHEN i.direction = %(incident_backward)s THEN ST_Reverse(i.affected_line) ELSE i.affected_line END")
} END,
       a.category, a.kind, a.type,
       a.involves_bicycle, a.involves_car, a.involves_pedestrian, a.involves_motorcycle, a.involves_goods_vehicle,
       a.involves_other, a.killed, a.seriously_injured, a.slightly_injured
FROM traffic_incident AS i
LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
WHERE {{where}}
ORDER BY i.occurred_at, i.id
"""

# Every write to a row the feeds show (or to its organisation, detours or accident) gives it a new xmin; count(*)
# catches rows that leave. See traffic.feeds.wzdx.workzone_fingerprint for why both are needed.
_FINGERPRINT_SQL = """
WITH works AS (
    SELECT r.id, r.updated_at, r.xmin::text::bigint AS rx, o.xmin::text::bigint AS ox
    FROM roadworks_roadwork AS r JOIN accounts_organisation AS o ON o.id = r.organisation_id
    WHERE {works}
), incidents AS (
    SELECT i.updated_at, i.xmin::text::bigint AS ix, a.xmin::text::bigint AS ax
    FROM traffic_incident AS i LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
    WHERE {incidents}
)
SELECT (SELECT concat_ws(':', count(*), max(updated_at), sum(rx), sum(ox)) FROM works),
       (SELECT concat_ws(':', count(*), sum(d.xmin::text::bigint))
        FROM roadworks_detour AS d JOIN works ON works.id = d.roadwork_id),
       (SELECT concat_ws(':', count(*), max(updated_at), sum(ix), sum(ax)) FROM incidents)
"""

# JIT and parallel workers cost far more than they save on these small, PostGIS-heavy queries (see wzdx.py);
# both off for this transaction only.
# The roadworks' sort carries each row's texts: with the default 4 MB of work_mem 10,000 works sort on disk
# (EXPLAIN ANALYZE: external merge, 5 MB), so work_mem is raised as in the WZDx feed.
_SESSION_SQL = (
    "SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('work_mem', '64MB', true)"
)
# to_char writes local times with their offset (TZH:TZM) in the session time zone. Django expects its connection
# in UTC, so the zone is switched only around the two queries and switched back in the same transaction.
_ZONE_SQL = "SELECT current_setting('TimeZone'), set_config('TimeZone', %s, true)"
_RESTORE_ZONE_SQL = "SELECT set_config('TimeZone', %s, true)"


def _where(now: datetime, filters: FeedFilters) -> tuple[str, str, dict[str, Any]]:
    works_extra, params = filters.sql("r")
    incidents_extra, incident_params = filters.sql("i", geometry="location")
    params.update(incident_params)
    if filters.active_on:
        params["statuses"] = list(LOOK_BACK_STATUSES)
        params["incident_statuses"] = list(INCIDENT_LOOK_BACK_STATUSES)
        works = "r.status = ANY(%(statuses)s)"
    else:
        params["statuses"] = list(FEED_STATUSES)
        params["incident_statuses"] = list(ACTIVE_INCIDENT_STATUSES)
        params["since"] = now - ENDED_GRACE
        # period && [since, ∞) is "ends after since" in a form the GiST index on (geometry, period) can use.
        works = "r.status = ANY(%(statuses)s) AND r.period && tstzrange(%(since)s, NULL)"
    return works + works_extra, "i.status = ANY(%(incident_statuses)s)" + incidents_extra, params


def situation_rows(*, now: datetime, filters: FeedFilters | None = None) -> tuple[list[RoadworkRow], list[IncidentRow]]:
    """The roadworks and the incidents of the situation feeds: one PostGIS query each, in one transaction."""
    works, incidents, params = _where(now, filters or FeedFilters())
    params.update(backward=Direction.BACKWARD, incident_backward=IncidentDirection.BACKWARD)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SESSION_SQL)
        cursor.execute(_ZONE_SQL, [settings.TIME_ZONE])
        previous_zone = cursor.fetchone()[0]
        try:
            cursor.execute(_ROADWORKS_SQL.format(where=works), params)
            work_rows = cursor.fetchall()
            cursor.execute(_INCIDENTS_SQL.format(where=incidents), params)
            incident_rows = cursor.fetchall()
        finally:
            cursor.execute(_RESTORE_ZONE_SQL, [previous_zone])
    # NULL, not '[]', for the nine in ten works without a detour: psycopg then parses no JSON for them.
    roadworks = [
        RoadworkRow._make((*row[:-1], [DetourRow._make(detour) for detour in row[-1]] if row[-1] else []))
        for row in work_rows
    ]
    return roadworks, [IncidentRow._make(row) for row in incident_rows]


def situation_fingerprint(*, now: datetime, filters: FeedFilters | None = None) -> str:
    """Changes whenever a roadwork, detour, incident or accident of the feeds changes, appears or disappears."""
    works, incidents, params = _where(now, filters or FeedFilters())
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(works=works, incidents=incidents), params)
        return "|".join(cursor.fetchone())
