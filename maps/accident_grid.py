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

The grid is derived data, rebuilt by one statement (accident_grid_rebuild): as a whole after accident imports,
nightly (beat) and by `manage.py rebuild_accident_grid`; for the calendar years an entry touches after police
entries (through the jobs outbox, maps.tasks). Squares are per year, so rebuilding the squares of some years from
the accidents of those years gives exactly the rows a whole rebuild would. Tiles notice a rebuild: the rows are
rewritten, and the tile fingerprint covers their xmin.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

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


def _rebuild_sql(*, some_years: bool) -> str:
    """The rebuild statement; with some_years, only the squares of the years in %(years)s, from their accidents."""
    table = AccidentCell._meta.db_table
    top = ACCIDENT_GRID_MAX_ZOOM
    cx, cy = square_sql("a.m", top)
    # A year's accidents lie in one range of occurred_at; the range (a day wider on each side, for the time zone)
    # lets the index on occurred_at find them, the exact year test then keeps those of the city's calendar year.
    years_only = (
        f" AND a.occurred_at >= make_timestamptz(%(first_year)s - 1, 12, 31, 0, 0, 0, 'UTC')"
        f" AND a.occurred_at < make_timestamptz(%(last_year)s + 1, 1, 2, 0, 0, 0, 'UTC')"
        f" AND {_YEAR_SQL} = ANY(%(years)s)"
        if some_years
        else ""
    )
    # Zoom `top` from the accidents (those the statistics count: not of incidents cancelled as false reports).
    ctes = [
        f"""src AS (
            SELECT a.id, a.category, a.kind, a.type, a.occurred_at, ST_Transform(a.location, {WEB_MERCATOR}) AS m,
                   {_YEAR_SQL} AS year
            FROM traffic_accident a LEFT JOIN traffic_incident i ON i.id = a.incident_id
            WHERE i.status IS DISTINCT FROM %(cancelled)s{years_only})""",
        f"""z{top} AS (
            SELECT DISTINCT ON (cx, cy, year, category) *, count(*) OVER (PARTITION BY cx, cy, year, category) AS n
            FROM (SELECT a.*, {cx} AS cx, {cy} AS cy FROM src a) AS s
            ORDER BY cx, cy, year, category, occurred_at DESC, id)""",
    ]
    # Each lower zoom from the one above: four squares make one, the counts add up, the newest stays.
    for z in range(top - 1, -1, -1):
        ctes.append(
            f"""z{z} AS (
            SELECT DISTINCT ON (cx, cy, year, category) id, category, kind, type, occurred_at, m, year,
                   cx, cy, sum(n) OVER (PARTITION BY cx, cy, year, category) AS n
            FROM (SELECT id, category, kind, type, occurred_at, m, year, floor(cx / 2.0)::int AS cx,
                         floor(cy / 2.0)::int AS cy, n FROM z{z + 1}) AS s
            ORDER BY cx, cy, year, category, occurred_at DESC, id)"""
        )
    union = " UNION ALL ".join(
        f"SELECT {z} AS zoom, cx, cy, year, category, n, id, kind, type, occurred_at, m FROM z{z}"
        for z in range(top + 1)
    )
    # The DELETE runs in the same statement and snapshot: readers see the old grid until the commit, then the new.
    return f"""
        WITH gone AS (DELETE FROM {table}{" WHERE year = ANY(%(years)s)" if some_years else ""}), {", ".join(ctes)}
        INSERT INTO {table} (zoom, cx, cy, year, category, count, accident_id, kind, type, occurred_at, location,
                             built_at)
        SELECT g.*, statement_timestamp() FROM ({union}) AS g
    """


def accident_grid_rebuild(*, requested_at: datetime | None = None, years: list[int] | None = None) -> int | None:
    """Rebuild the grid in one statement, whole or (years) the squares of those calendar years; returns the number
    of squares written, None when skipped.

    requested_at (the database clock when a rebuild of some years was asked for): when every square of those years
    was rebuilt after it (by a rebuild of those years or a whole one), that rebuild already saw everything, and this
    one is skipped. So a burst of police entries costs one or two rebuilds, not one each. A whole rebuild always
    runs: it is asked for after imports, which may bring years the grid has no square of yet, and nightly.
    Idempotent: the same accidents give the same rows."""
    table = AccidentCell._meta.db_table
    params: dict[str, object] = {"tz": settings.TIME_ZONE, "cancelled": IncidentStatus.CANCELLED.value}
    if years is not None:
        years = sorted(set(years))
        if not years:
            return 0
        params.update(years=years, first_year=years[0], last_year=years[-1])
    with transaction.atomic(), connection.cursor() as cursor:
        # Rebuilds wait for each other: two at once would both delete and both insert.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        if requested_at is not None and years is not None:
            # The oldest build among the squares of these years: a year without squares yet has none, and is built.
            cursor.execute(f"SELECT min(built_at) FROM {table} WHERE year = ANY(%(years)s)", params)
            (built_at,) = cursor.fetchone()
            if built_at is not None and built_at > requested_at:
                return None
        # The sorts of a million accidents spill to disk with the default work_mem.
        cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(_rebuild_sql(some_years=years is not None), params)
        return cursor.rowcount


def accident_year(moment: datetime) -> int:
    """The calendar year the grid counts an accident of this moment in (the city's time zone)."""
    return timezone.localtime(moment, ZoneInfo(settings.TIME_ZONE)).year


def database_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def accident_grid_rebuild_on_commit(*, occurred: list[datetime] | None = None) -> None:
    """Queue a rebuild after the current transaction (jobs outbox): accidents were written. With `occurred`, the
    times of the accidents written, before and after the change: only the squares of their years are rebuilt."""
    from jobs import outbox

    from .tasks import accident_grid_rebuild_task

    if occurred is None:
        outbox.enqueue(accident_grid_rebuild_task)
    else:
        outbox.enqueue(accident_grid_rebuild_task, sorted({accident_year(moment) for moment in occurred}))
