"""SQL building blocks every feed shares, and running a feed's one document query.

Each feed writes its whole document in one PostgreSQL query (string_agg of concat()-ed text) and gets back the
bytes to send: fetch_document runs that query with the feeds' planner settings and hands the text over as the
UTF-8 bytes PostgreSQL sent, without decoding and encoding it again.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import translation
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from traffic.models import IncidentKind

# PostGIS declares its functions expensive (to invite parallel plans), and ST_Dump counts as 1000 rows
# per call, so even a 20-row feed looks costly enough for JIT compilation (~300 ms) and a parallel
# worker (10+ ms to start) around a query that runs in about 1 ms. Both are off for this transaction only
# (measured: at 10,000 works parallel saved under 5 %, JIT cost 3x). The final sort carries each event's text
# (about 1 KB): with the default 4 MB of work_mem a 10,000-work feed sorts on disk.
PLANNER_SQL = (
    "SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('work_mem', '64MB', true)"
)


def utc_sql(column: str) -> str:
    """SQL for a time in UTC as RFC 3339 to the second ("2027-03-01T06:00:00Z")."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


# The line for one part: a line as it is; a polygon becomes the long centre line of its minimum rotated rectangle
# (corners c1..c4); NULL for anything else or a degenerate shape. WZDx, Waze and DATEX II send lines.
PART_AS_LINE_SQL = """
    CROSS JOIN LATERAL (
        SELECT CASE WHEN ST_Dimension({part}) = 1 THEN {part}
                    WHEN ST_Distance(c1, c2) >= ST_Distance(c2, c3)
                    THEN ST_MakeLine(ST_Centroid(ST_MakeLine(c4, c1)), ST_Centroid(ST_MakeLine(c3, c2)))
                    ELSE ST_MakeLine(ST_Centroid(ST_MakeLine(c1, c2)), ST_Centroid(ST_MakeLine(c4, c3)))
               END AS geom
        -- OFFSET 0 keeps these subqueries from being pulled up, which would write the envelope's expression into
        -- every use of a corner: it was computed about ten times per polygon (EXPLAIN ANALYZE), now once.
        FROM (SELECT ST_PointN(ring, 1) AS c1, ST_PointN(ring, 2) AS c2,
                     ST_PointN(ring, 3) AS c3, ST_PointN(ring, 4) AS c4
              FROM (SELECT CASE WHEN ST_Dimension({part}) = 2
                                THEN ST_ExteriorRing(ST_OrientedEnvelope({part})) END AS ring
                    OFFSET 0) AS envelope
              OFFSET 0) AS corners
    ) AS line
"""


def incident_labels() -> str:
    """The incident kinds' labels in the feeds' language (LANGUAGE_CODE, whatever language a request asked for:
    the bytes are shared) as a JSON object for a query parameter, looked up once per build."""
    with translation.override(settings.LANGUAGE_CODE):
        return json.dumps({kind.value: str(kind.label) for kind in IncidentKind}, ensure_ascii=False)


# Switches the session time zone for one query (local times with their offset, see situations.local_time_sql) and
# back: Django expects its connection in UTC.
_ZONE_SQL = "SELECT current_setting('TimeZone'), set_config('TimeZone', %s, true)"
_RESTORE_ZONE_SQL = "SELECT set_config('TimeZone', %s, true)"


class _Utf8Loader(Loader):
    """A text value as the bytes PostgreSQL sent, which are UTF-8 already (Django connects with client_encoding
    UTF8): a document is never decoded into a str only to be encoded again (20 ms for 12 MB; DATEX II is 46 MB)."""

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


def fetch_document(sql: str, params: dict[str, Any], *, time_zone: str | None = None) -> bytes:
    """Run a query that writes a whole document as one text value and return its bytes, with PLANNER_SQL's
    settings and, given time_zone, that session time zone for this query only."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(PLANNER_SQL)
        previous_zone = None
        if time_zone is not None:
            cursor.execute(_ZONE_SQL, [time_zone])
            previous_zone = cursor.fetchone()[0]
        try:
            # On this cursor only: every other query of the connection keeps getting str.
            cursor.cursor.adapters.register_loader("text", _Utf8Loader)
            cursor.execute(sql, params)
            return cursor.fetchone()[0]
        finally:
            if previous_zone is not None:
                cursor.execute(_RESTORE_ZONE_SQL, [previous_zone])
