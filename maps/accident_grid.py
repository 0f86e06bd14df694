"""The accident grid: the accident tiles' thinning, done once per rebuild instead of once per tile request.

A zoom-10 accident tile thinned a million accidents at request time (seconds). Accidents change rarely (imports,
police entries), so maps.AccidentCell holds, for zooms 0 to ACCIDENT_GRID_MAX_ZOOM, one row per occupied
(zoom, square, calendar year, category) with the newest accident as its representative and the count. A tile
then reads a few thousand rows and combines them (maps.tiles).

The squares are those of the direct path (maps.tiles): 1/64 of a tile side of the zoom's Web Mercator tile grid,
numbered from the grid's north-west corner. Because a square of zoom z is exactly four squares of zoom z+1 (the
sizes halve exactly in floating point too), each zoom is built from the one above, not from the accidents again.

Precision: the direct path shows the AUMAN_TILE_ACCIDENT_YEARS years up to the chosen day, to the day; the grid
shows whole calendar years, the year of the day and the N-1 before it (see grid_years). Today, that is this year
so far and N-1 full years: at most one year less at the old end, never anything after today. Filters by kind of
accident or by district are not in the grid; those tiles take the direct path.

The grid is derived data. It is rebuilt as a whole by one statement (accident_grid_rebuild) after accident imports,
nightly (beat) and by `manage.py rebuild_accident_grid`. A police entry changes one accident: only the squares it
lay in and lies in now are written again (accident_grid_update, through the jobs outbox, maps.tasks), the top
zoom's from the accidents in them, each lower zoom's from the four squares above, exactly as the whole rebuild
makes them. Tiles notice either: the rows are rewritten, and the tile fingerprint covers their xmin.
"""

from __future__ import annotations

from datetime import date, datetime

from django.conf import settings
from django.db import connection, transaction

from traffic.models import IncidentStatus

from .models import ACCIDENT_GRID_MAX_ZOOM, AccidentCell

WEB_MERCATOR = 3857
# Half the side of the Web Mercator square, the offset from its centre to the west and north edges (metres).
ORIGIN_SHIFT = 20037508.342789244
# Squares per tile side: 4 pixels of a 256-pixel tile, as maps.tiles.ACCIDENT_GRID.
SQUARES_PER_TILE = 64
# Serialises rebuilds (a pg_advisory lock key: any constant of this application's own).
_LOCK_KEY = 7_402_613


def square_side(z: int) -> float:
    """The side of a square of zoom z in Web Mercator metres; a power-of-two fraction of the world's side."""
    return 2 * ORIGIN_SHIFT / 2**z / SQUARES_PER_TILE


def square_sql(point_3857: str, z: int) -> tuple[str, str]:
    """SQL for a Web Mercator point's square column and row at zoom z; maps.tiles' direct path uses the same."""
    side = repr(square_side(z))
    return (
        f"floor((ST_X({point_3857}) + {ORIGIN_SHIFT!r}) / {side})::int",
        f"floor(({ORIGIN_SHIFT!r} - ST_Y({point_3857})) / {side})::int",
    )


def grid_index_sql() -> list[str]:
    """The grid's partial GiST indexes, as migration maps/0003 creates them."""
    return [
        f'CREATE INDEX "accidentcell_z{z}_gist" ON "maps_accidentcell" USING GIST ("location") WHERE "zoom" = {z}'
        for z in range(ACCIDENT_GRID_MAX_ZOOM + 1)
    ]


def grid_years(day: date) -> tuple[int, int]:
    """The calendar years a tile of `day` combines: the year of the day and the N-1 before it."""
    return day.year - settings.AUMAN_TILE_ACCIDENT_YEARS + 1, day.year


# The calendar year of an accident, as the grid counts it: in the city's time zone.
_YEAR_SQL = "extract(year FROM a.occurred_at AT TIME ZONE %(tz)s)::int"
# The accidents the statistics count: not those of incidents cancelled as false reports.
_COUNTED_SQL = """
    FROM traffic_accident a LEFT JOIN traffic_incident i ON i.id = a.incident_id
    WHERE i.status IS DISTINCT FROM %(cancelled)s"""


def _squares_sql(source: str) -> str:
    """SQL for the squares of one zoom from `source` (rows of cx, cy, year, category, id, kind, type, occurred_at, m,
    n: accidents with n = 1, or the squares of the zoom above with their counts): per square, year and category the
    counts add up and the newest accident stays the representative (ties: the smallest id). The one place of that
    rule, for the whole rebuild and the update alike."""
    return f"""
        SELECT DISTINCT ON (cx, cy, year, category) cx, cy, year, category,
               sum(n) OVER (PARTITION BY cx, cy, year, category) AS n, id, kind, type, occurred_at, m
        FROM ({source}) AS s(cx, cy, year, category, id, kind, type, occurred_at, m, n)
        ORDER BY cx, cy, year, category, occurred_at DESC, id"""


def _rebuild_sql() -> str:
    table = AccidentCell._meta.db_table
    top = ACCIDENT_GRID_MAX_ZOOM
    cx, cy = square_sql("a.m", top)
    # Zoom `top` from the accidents.
    ctes = [
        f"""src AS (
            SELECT a.id, a.category, a.kind, a.type, a.occurred_at, ST_Transform(a.location, {WEB_MERCATOR}) AS m,
                   {_YEAR_SQL} AS year
            {_COUNTED_SQL})""",
    ]
    accidents = f"SELECT {cx}, {cy}, a.year, a.category, a.id, a.kind, a.type, a.occurred_at, a.m, 1 FROM src AS a"
    ctes.append(f"z{top} AS ({_squares_sql(accidents)})")
    # Each lower zoom from the one above.
    for z in range(top - 1, -1, -1):
        above = (
            "SELECT floor(cx / 2.0)::int, floor(cy / 2.0)::int, year, category, id, kind, type, occurred_at, m, n "
            f"FROM z{z + 1}"
        )
        ctes.append(f"z{z} AS ({_squares_sql(above)})")
    union = " UNION ALL ".join(
        f"SELECT {z} AS zoom, cx, cy, year, category, n, id, kind, type, occurred_at, m FROM z{z}"
        for z in range(top + 1)
    )
    # The DELETE runs in the same statement and snapshot: readers see the old grid until the commit, then the new.
    return f"""
        WITH gone AS (DELETE FROM {table}), {", ".join(ctes)}
        INSERT INTO {table} (zoom, cx, cy, year, category, count, accident_id, kind, type, occurred_at, location,
                             built_at)
        SELECT g.*, statement_timestamp() FROM ({union}) AS g
    """


def accident_grid_rebuild() -> int:
    """Rebuild the whole grid in one statement; returns the number of squares. Idempotent: the same accidents give
    the same rows."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Rebuilds and updates wait for each other: two at once would both delete and both insert.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        # The sorts of a million accidents spill to disk with the default work_mem.
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(_rebuild_sql(), {"tz": settings.TIME_ZONE, "cancelled": IncidentStatus.CANCELLED.value})
        return cursor.rowcount


# --- Updating the squares of a few accidents ---------------------------------------------------------------------

# An accident as the grid files it: its place (x, y in AUMAN_SRID), time (ISO 8601) and category. JSON values, so
# the outbox can carry a list of them to the task.
GridPoint = tuple[float, float, str, int]

_KEYS = "accident_grid_keys"


def _square_envelope_sql(z: int, alias: str) -> str:
    """SQL for the square (alias.cx, alias.cy) of zoom z as a Web Mercator box."""
    side = repr(square_side(z))
    west = f"({alias}.cx * {side} - {ORIGIN_SHIFT!r})"
    north = f"({ORIGIN_SHIFT!r} - {alias}.cy * {side})"
    return f"ST_MakeEnvelope({west}, {north} - {side}, {west} + {side}, {north}, {WEB_MERCATOR})"


def _update_statements() -> list[str]:
    """The statements of accident_grid_update, in order (each sees what the one before wrote)."""
    table = AccidentCell._meta.db_table
    top = ACCIDENT_GRID_MAX_ZOOM
    columns = "(zoom, cx, cy, year, category, count, accident_id, kind, type, occurred_at, location, built_at)"
    point_cx, point_cy = square_sql(f"ST_Transform(ST_SetSRID(ST_MakePoint(p.x, p.y), {{srid}}), {WEB_MERCATOR})", top)
    accident_cx, accident_cy = square_sql("a.m", top)
    statements = [
        # Dropped at the commit; dropped first too, for a second update in the same transaction (tests, a shell).
        f"DROP TABLE IF EXISTS pg_temp.{_KEYS}",
        f"CREATE TEMP TABLE {_KEYS} (zoom smallint, cx integer, cy integer, year smallint, category smallint) "
        "ON COMMIT DROP",
        # The squares of the top zoom the points lie in, then their parents, zoom by zoom.
        f"""INSERT INTO {_KEYS}
            SELECT DISTINCT {top}, {point_cx}, {point_cy},
                   extract(year FROM p.occurred_at AT TIME ZONE %(tz)s)::int, p.category
            FROM unnest(%(xs)s::float8[], %(ys)s::float8[], %(times)s::timestamptz[], %(categories)s::int[])
                 AS p(x, y, occurred_at, category)""",
        *(
            f"INSERT INTO {_KEYS} SELECT DISTINCT {z}, floor(cx / 2.0)::int, floor(cy / 2.0)::int, year, category "
            f"FROM {_KEYS} WHERE zoom = {z + 1}"
            for z in range(top - 1, -1, -1)
        ),
    ]
    for z in range(top, -1, -1):
        # The partial GiST index of the zoom finds the squares by their place; the key then picks them exactly.
        statements.append(
            f"""DELETE FROM {table} AS c USING {_KEYS} AS k
                WHERE k.zoom = {z} AND c.zoom = {z} AND c.location && {_square_envelope_sql(z, "k")}
                  AND c.cx = k.cx AND c.cy = k.cy AND c.year = k.year AND c.category = k.category"""
        )
        if z == top:
            # From the accidents in the square (found through their GiST index: the square's box in the storage
            # SRID, widened, because the projections' lines do not run alike).
            margin = repr(square_side(z) / 4 + 1)
            source = f"""
                SELECT k.cx, k.cy, k.year, k.category, a.id, a.kind, a.type, a.occurred_at, a.m, 1 AS n
                FROM {_KEYS} AS k
                CROSS JOIN LATERAL (
                    SELECT a.*, ST_Transform(a.location, {WEB_MERCATOR}) AS m
                    {_COUNTED_SQL}
                      AND a.location && ST_Expand(ST_Transform({_square_envelope_sql(z, "k")}, {{srid}}), {margin})
                      AND a.category = k.category AND {_YEAR_SQL} = k.year
                ) AS a
                WHERE k.zoom = {z} AND {accident_cx} = k.cx AND {accident_cy} = k.cy"""
        else:
            # From the four squares above.
            source = f"""
                SELECT k.cx, k.cy, k.year, k.category, c.accident_id, c.kind, c.type, c.occurred_at, c.location,
                       c.count AS n
                FROM {_KEYS} AS k
                JOIN {table} AS c ON c.zoom = {z + 1} AND c.location && {_square_envelope_sql(z, "k")}
                 AND floor(c.cx / 2.0)::int = k.cx AND floor(c.cy / 2.0)::int = k.cy
                 AND c.year = k.year AND c.category = k.category
                WHERE k.zoom = {z}"""
        statements.append(
            f"INSERT INTO {table} {columns} SELECT {z}, q.*, statement_timestamp() FROM ({_squares_sql(source)}) AS q"
        )
    return [statement.replace("{srid}", str(settings.AUMAN_SRID)) for statement in statements]


def accident_grid_update(points: list[GridPoint]) -> int:
    """Write again the squares, at every zoom, that accidents at these points lie in: what a whole rebuild would write
    for them, from the accidents there now (an accident moved, or of another category or year, names its old state
    and its new one). Returns the number of squares of the top zoom concerned."""
    if not points:
        return 0
    params = {
        "xs": [float(x) for x, _, _, _ in points],
        "ys": [float(y) for _, y, _, _ in points],
        "times": [moment for _, _, moment, _ in points],
        "categories": [int(category) for _, _, _, category in points],
        "tz": settings.TIME_ZONE,
        "cancelled": IncidentStatus.CANCELLED.value,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        statements = _update_statements()
        for statement in statements:
            cursor.execute(statement, params)
        cursor.execute(f"SELECT count(*) FROM {_KEYS} WHERE zoom = %s", [ACCIDENT_GRID_MAX_ZOOM])
        return cursor.fetchone()[0]


def grid_point(location, occurred_at: datetime, category: int) -> GridPoint:
    """An accident's state as accident_grid_update takes it (location in AUMAN_SRID)."""
    return (location.x, location.y, occurred_at.isoformat(), int(category))


def accident_grid_rebuild_on_commit() -> None:
    """Queue a whole rebuild after the current transaction (jobs outbox): many accidents were written (an import)."""
    from jobs import outbox

    from .tasks import accident_grid_rebuild_task

    outbox.enqueue(accident_grid_rebuild_task)


def accident_grid_update_on_commit(points: list[GridPoint]) -> None:
    """Queue the update of these accidents' squares after the current transaction (jobs outbox)."""
    from jobs import outbox

    from .tasks import accident_grid_update_task

    outbox.enqueue(accident_grid_update_task, [list(point) for point in points])
