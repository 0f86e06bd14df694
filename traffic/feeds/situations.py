"""What the situation feeds (Waze CIFS and DATEX II) share: which rows they show, the SQL fragments both documents
are written with, the fingerprint over exactly those rows, and running a document query.

Both formats describe the same things, and PostgreSQL writes each whole document in one query (waze.document,
datex2.document). The geometry work and the text formatting both formats need are here:

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
from typing import Any

from django.conf import settings
from django.db import connection

from roadworks.models import RoadworkStatus
from traffic.models import ACTIVE_INCIDENT_STATUSES, IncidentStatus

from .filters import FeedFilters
from .sql import PART_AS_LINE_SQL
from .sql import fetch_document as sql_fetch_document

# Works on the road or coming, as in the WZDx feed; with active_on, also works that have been completed,
# so a consumer can look back.
FEED_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)
LOOK_BACK_STATUSES = (*FEED_STATUSES, RoadworkStatus.COMPLETED)
# A work whose end passed less than this long ago stays in the feeds, so a rare poller still sees its end.
ENDED_GRACE = timedelta(days=1)
# Incidents: the active ones; looking back (active_on) also cleared ones. A cancelled report was never true.
INCIDENT_LOOK_BACK_STATUSES = (*ACTIVE_INCIDENT_STATUSES, IncidentStatus.CLEARED)


def local_time_sql(column: str) -> str:
    """SQL for a time as local time with its offset ("2027-03-01T07:00:00+01:00").

    TZH:TZM is the offset in the session time zone, which fetch_document sets to TIME_ZONE around the query."""
    return f"""to_char({column}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')"""


def poslist_sql(geometry: str) -> str:
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


def lines_array_sql(geometry: str, *, reverse_if: str | None = None) -> str:
    """SQL for the position lists of a geometry's separate parts, in order.

    A plain LineString, the usual case, skips the dump-merge-envelope machinery: measured a third of the query.
    """
    line = f"CASE WHEN {reverse_if} THEN ST_Reverse({{g}}) ELSE {{g}} END" if reverse_if else "{g}"
    return (
        f"CASE WHEN ST_GeometryType({geometry}) = 'ST_LineString' THEN ARRAY[{poslist_sql(line.format(g=geometry))}]"
        f" ELSE ARRAY(SELECT {poslist_sql(line.format(g='parts.geom'))}"
        f" FROM ({_LINES.format(geometry=geometry)}) AS parts ORDER BY parts.path) END"
    )


# A roadwork's lines in its direction of travel (reversed for a work against the digitising direction), and an
# incident's affected stretch likewise.
ROADWORK_LINES_SQL = lines_array_sql("r.geometry", reverse_if="r.direction = %(backward)s")
INCIDENT_LINE_SQL = poslist_sql(
    "CASE WHEN i.direction = %(incident_backward)s THEN ST_Reverse(i.affected_line) ELSE i.affected_line END"
)

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


def feed_where(now: datetime, filters: FeedFilters) -> tuple[str, str, dict[str, Any]]:
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


def situation_fingerprint(*, now: datetime, filters: FeedFilters | None = None) -> str:
    """Changes whenever a roadwork, detour, incident or accident of the feeds changes, appears or disappears."""
    works, incidents, params = feed_where(now, filters or FeedFilters())
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(works=works, incidents=incidents), params)
        return "|".join(cursor.fetchone())


def fetch_document(sql: str, params: dict[str, Any]) -> bytes:
    """A situation document's query run (traffic.feeds.sql.fetch_document) with its local times in TIME_ZONE."""
    return sql_fetch_document(sql, params, time_zone=settings.TIME_ZONE)
