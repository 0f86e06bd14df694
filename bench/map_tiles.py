"""Benchmark: vector tiles (maps/tiles.py) with 1,000,000 accidents and 100,000 roadworks.

Run from the repository root against the dev database (DATABASE_URL, default the local cluster):

    .venv/bin/python bench/map_tiles.py [--accidents 1000000] [--roadworks 100000] [--tiles 12,24,40] [--no-write]

The synthetic rows are generated in SQL (generate_series) inside one transaction that is rolled back at the end,
so the database is left as it was. Tiles are picked at random over the city (their centres drawn like the
accidents, denser in the middle) at zoom 10, 12 and 14. For each tile and layer, in alternating order:

  a) the view function maps.tile_views.tile, cold: the tile cache emptied first, so the request pays the
     fingerprint query, the build and the cache write (Redis);
  b) the bare statement alone: maps.tiles.tile_sql executed and its bytea fetched, the floor for (a);
  c) the same view again, warm: fingerprint query and cache read only (the steady state while nothing changes);
  d) accidents up to zoom 13 only: the bare statement of the direct path (thinning the accidents themselves, as
     every accident tile did before the grid), for comparison in the same run.

After generating the rows, the accident grid (maps/accident_grid.py) is rebuilt and the rebuild timed.

Roadworks are fetched as the public sees them (today's approved and running works), accidents as staff see them
(three years up to today, one point per 4×4 pixels). The results replace the "## Vector tiles" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rollback, machine, machine_lines, ms, setup_django, write_section

setup_django()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_redis.cache import RedisCache  # noqa: E402

import maps.tile_views  # noqa: E402
from accounts.models import Organisation, Role, User  # noqa: E402
from auman.geo import service_area_geometry  # noqa: E402
from maps.accident_grid import accident_grid_rebuild, grid_index_sql  # noqa: E402
from maps.models import AccidentCell  # noqa: E402
from maps.tiles import TILE_WORK_MEM, parse_tile_request, tile_rows, tile_sql, uses_accident_grid  # noqa: E402

SECTION = "## Vector tiles"
MARKER = "BENCH-TILES"
ZOOMS = (10, 12, 14)
LAYERS = ("roadworks", "accidents")
# The bench's own Redis database, emptied before every cold request; the dev site's cache is left alone.
BENCH_REDIS_URL = "redis://127.0.0.1:63799/5"

_ROADWORKS_SQL = """
INSERT INTO roadworks_roadwork (
    id, reference, title, description, street_names, geometry, period, work_kind, traffic_management, direction,
    excavation, status, created_at, updated_at, version, organisation_id, category, contact_email, contact_name,
    contact_phone, is_emergency, purpose, weekdays)
SELECT gen_random_uuid(), %(marker)s || '-' || g, 'Baustelle ' || g, '', ARRAY['Benchstraße'],
       ST_MakeLine(p.geom, ST_Translate(p.geom, 20 + random() * 300, (random() - 0.5) * 300)),
       tstzrange(s.start, s.start + make_interval(days => 1 + floor(random() * 30)::int)),
       (ARRAY['gas','water','electricity','telecom','district_heating','road_resurfacing'])
           [1 + floor(random() * 6)::int],
       (ARRAY['full_closure','lane_closure','alternating_one_way','footway_closure'])[1 + floor(random() * 4)::int],
       'both', false,
       (ARRAY['approved','approved','approved','in_progress','in_progress','submitted','submitted','draft',
              'completed','cancelled'])[1 + floor(random() * 10)::int],
       now(), now(), 1, %(organisation)s, 'standard', '', '', '', false, '', '{}'
FROM generate_series(1, %(count)s) AS g
-- "g * 0" ties each lateral subquery to its row: uncorrelated, PostgreSQL would draw one point for all rows.
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(
    %(cx)s + (random() + random() + random() - 1.5) * %(w)s / 1.5,
    %(cy)s + (random() + random() + random() - 1.5) * %(h)s / 1.5 + g * 0), %(srid)s) AS geom) AS p
CROSS JOIN LATERAL (SELECT now() - interval '365 days' + random() * interval '730 days' + g * interval '0 s'
                    AS start) AS s
"""

_ACCIDENTS_SQL = """
INSERT INTO traffic_accident (
    id, location, occurred_at, time_precision, category, kind, type, involves_bicycle, involves_car,
    involves_pedestrian, involves_motorcycle, involves_goods_vehicle, involves_other, source, source_key,
    region_code, created_at, updated_at)
SELECT gen_random_uuid(),
       ST_SetSRID(ST_MakePoint(%(cx)s + (random() + random() + random() - 1.5) * %(w)s / 1.5,
                               %(cy)s + (random() + random() + random() - 1.5) * %(h)s / 1.5), %(srid)s),
       now() - random() * interval '5 years', 'exact',
       (ARRAY[1,2,2,3,3,3,3,4,5,5,5,5,5,5,6])[1 + floor(random() * 15)::int],
       floor(random() * 10)::int, 1 + floor(random() * 7)::int,
       random() < 0.2, random() < 0.8, random() < 0.1, random() < 0.05, random() < 0.05, false,
       'unfallatlas', '', '', now(), now()
FROM generate_series(1, %(count)s) AS g
"""


def city_box() -> dict[str, float]:
    xmin, ymin, xmax, ymax = service_area_geometry().extent
    return {"cx": (xmin + xmax) / 2, "cy": (ymin + ymax) / 2, "w": (xmax - xmin) / 2, "h": (ymax - ymin) / 2}


def ensure_grid_table() -> None:
    """The grid's table, inside the benchmark's transaction (so rolled back too) where the dev database has not
    migrated maps yet."""
    if AccidentCell._meta.db_table not in connection.introspection.table_names():
        with connection.schema_editor() as editor:
            editor.create_model(AccidentCell)
            for sql in grid_index_sql():
                editor.execute(sql)
        print("created the accident grid's table for this run", flush=True)


def generate(accidents: int, roadworks: int) -> dict[str, float]:
    organisation = Organisation.objects.create(name=f"{MARKER} Versorger")
    box = city_box()
    params = {"marker": MARKER, "organisation": organisation.id, "srid": settings.AUMAN_SRID, **box}
    timings = {}
    with connection.cursor() as cursor:
        # History triggers (if installed) would write a history row per synthetic row and slow the set-up tenfold;
        # the benchmark measures reads. Only a superuser may do this; otherwise the triggers simply run.
        try:
            with transaction.atomic():
                cursor.execute("SET LOCAL session_replication_role = replica")
        except DatabaseError:
            print("triggers stay on (not a superuser)", flush=True)
        started = time.perf_counter()
        cursor.execute(_ROADWORKS_SQL, {**params, "count": roadworks})
        timings["roadworks"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(_ACCIDENTS_SQL, {**params, "count": accidents})
        timings["accidents"] = time.perf_counter() - started
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute("ANALYZE roadworks_roadwork")
        cursor.execute("ANALYZE traffic_accident")
        cursor.execute("SELECT count(*) FROM roadworks_roadwork")
        timings["roadworks_total"] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM traffic_accident")
        timings["accidents_total"] = cursor.fetchone()[0]
    started = time.perf_counter()
    timings["grid_squares"] = accident_grid_rebuild()
    timings["grid"] = time.perf_counter() - started
    # What a police entry costs: the squares of one accident written again, at every zoom (maps.tasks, outbox).
    from maps.accident_grid import accident_grid_update, grid_point
    from traffic.models import Accident

    sample = Accident.objects.order_by("-occurred_at").first()
    started = time.perf_counter()
    accident_grid_update([grid_point(sample.location, sample.occurred_at, sample.category)])
    timings["grid_update"] = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE maps_accidentcell")
    print("generated", timings, flush=True)
    return timings


def random_tiles(rng: random.Random, z: int, count: int) -> list[tuple[int, int, int]]:
    """Tiles whose centre is drawn like the data, in WGS84 through the storage SRID."""
    from django.contrib.gis.geos import Point

    box = city_box()
    tiles = []
    for _ in range(count):
        x = box["cx"] + (rng.random() + rng.random() + rng.random() - 1.5) * box["w"] / 1.5
        y = box["cy"] + (rng.random() + rng.random() + rng.random() - 1.5) * box["h"] / 1.5
        point = Point(x, y, srid=settings.AUMAN_SRID).transform(4326, clone=True)
        n = 2**z
        tx = int((point.x + 180) / 360 * n)
        ty = int((1 - math.asinh(math.tan(math.radians(point.y))) / math.pi) / 2 * n)
        tiles.append((z, tx, ty))
    return tiles


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(tiles_per_zoom: dict[int, int], staff: User) -> dict:
    rng = random.Random(2026)
    factory = RequestFactory()
    bench_cache = RedisCache(BENCH_REDIS_URL, {"KEY_PREFIX": "bench-tiles", "OPTIONS": {"SOCKET_TIMEOUT": 10}})
    maps.tile_views.cache = bench_cache
    results: dict = {}
    for z in ZOOMS:
        tiles = random_tiles(rng, z, tiles_per_zoom[z])
        for layer in LAYERS:
            user = staff if layer == "accidents" else AnonymousUser()
            cold, bare, warm, sizes, direct = [], [], [], [], []
            for index, (tz, tx, ty) in enumerate(tiles):

                def view(tz=tz, tx=tx, ty=ty, layer=layer, user=user):
                    request = factory.get(f"/tiles/{layer}/{tz}/{tx}/{ty}.mvt")
                    request.user = user
                    response = maps.tile_views.tile(request, layer, tz, tx, ty)
                    assert response.status_code == 200, response.content
                    return response.content

                # Compiled outside the timing: the bare figure is PostgreSQL's work alone.
                tile_request = parse_tile_request(layer, tz, tx, ty, {})
                sql, params = tile_sql(tile_request, user, now=timezone.now())
                gridded = uses_accident_grid(tile_request)
                direct_sql, direct_params = tile_sql(
                    tile_request,
                    user,
                    now=timezone.now(),
                    rows=tile_rows(tile_request, user, now=timezone.now(), direct=True),
                )

                def bare_query(sql=sql, params=params):
                    # With the work_mem the view gives the statement (maps.tiles.tile_build), for a fair comparison.
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(f"SET LOCAL work_mem = '{TILE_WORK_MEM}'")
                        cursor.execute(sql, params)
                        body = bytes(cursor.fetchone()[0] or b"")
                        transaction.set_rollback(True)
                    return body

                def timed(func):
                    started = time.perf_counter()
                    value = func()
                    return time.perf_counter() - started, value

                # Alternate which goes first, so neither always gets the other's warmed buffers.
                order = ("cold", "bare") if index % 2 == 0 else ("bare", "cold")
                for kind in order:
                    if kind == "cold":
                        bench_cache.delete_pattern("*")
                        seconds, body = timed(view)
                        cold.append(seconds)
                        sizes.append(len(body))
                    else:
                        seconds, body = timed(bare_query)
                        bare.append(seconds)
                seconds, _ = timed(view)
                warm.append(seconds)
                if gridded:
                    seconds, _ = timed(lambda sql=direct_sql, params=direct_params: bare_query(sql, params))
                    direct.append(seconds)
            plan_sql, plan_params = tile_sql(parse_tile_request(layer, *tiles[0], {}), user, now=timezone.now())
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN {plan_sql}", plan_params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            indexes = sorted(
                set(re.findall(r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using|on) (\w+)", plan))
            )
            results[(z, layer)] = {
                "indexes": indexes,
                "tiles": len(tiles),
                "cold_p50": statistics.median(cold),
                "cold_p95": percentile(cold, 0.95),
                "bare_p50": statistics.median(bare),
                "bare_p95": percentile(bare, 0.95),
                "warm_p50": statistics.median(warm),
                "size_p50": statistics.median(sizes),
                "size_max": max(sizes),
                "direct_p50": statistics.median(direct) if direct else None,
                "direct_p95": percentile(direct, 0.95) if direct else None,
            }
            print(z, layer, results[(z, layer)], flush=True)
    bench_cache.delete_pattern("*")
    return results


def run(accidents: int, roadworks: int, tiles_per_zoom: dict[int, int]) -> tuple[dict, dict]:
    generated: dict = {}
    results: dict = {}
    try:
        with transaction.atomic():
            ensure_grid_table()
            staff = User.objects.create_user(f"{MARKER.lower()}-staff", role=Role.AUTHORITY)
            generated = generate(accidents, roadworks)
            results = measure(tiles_per_zoom, staff)
            raise Rollback
    except Rollback:
        pass
    return generated, results


def section(info: dict[str, str], generated: dict, results: dict, accidents: int, roadworks: int) -> str:
    lines = [
        SECTION,
        "",
        *machine_lines(info),
        "Figures taken on a shared 2-core machine with other work running: read the ratios more than the "
        "absolute times.",
        "",
        f"{accidents:,} synthetic accidents (five years) and {roadworks:,} synthetic roadworks (two years, all "
        f"statuses) generated in SQL with generate_series ({generated.get('accidents', 0):.0f} s and "
        f"{generated.get('roadworks', 0):.0f} s) and rolled back; tables then held "
        f"{generated.get('accidents_total', 0):,} accidents and {generated.get('roadworks_total', 0):,} roadworks. "
        "Tiles drawn at random over the city, denser in the middle like the data. Roadworks as the public sees "
        "them today; accidents as staff see them (three years up to today), thinned to one point per "
        "square of 4×4 pixels of a 256-pixel tile. `bench/map_tiles.py`.",
        "",
        f"Accident tiles up to zoom 13 read the pre-aggregated accident grid (`maps/accident_grid.py`; whole "
        f"calendar years: this year so far and the two before); its rebuild over all "
        f"{generated.get('accidents_total', 0):,} accidents, one statement, took {generated.get('grid', 0):.0f} s "
        f"and wrote {generated.get('grid_squares') or 0:,} squares (zooms 0 to 13, per year and category). "
        f"A police entry writes again only the squares its accident lay in and lies in, at every zoom: "
        f"{generated.get('grid_update', 0) * 1000:.0f} ms for one accident. "
        "Zoom 14 accident tiles thin the accidents themselves, as all zooms did before the grid.",
        "",
        "- **view, cold**: `maps.tile_views.tile` with the tile cache emptied first (fingerprint query, build, "
        "Redis write);",
        "- **bare**: the one `ST_AsMVT` statement (`maps.tiles.tile_sql`) alone, executed and fetched;",
        "- **view, warm**: the same request again (fingerprint query and Redis read: the steady state);",
        "- **direct bare** (accidents, zoom ≤ 13): the statement that thins the accidents themselves, without "
        "the grid, in the same run (the cost every such tile had before the grid).",
        "",
        "| zoom | layer | tiles | view cold p50 | view cold p95 | bare p50 | bare p95 | cold / bare (p50) "
        "| view warm p50 | direct bare p50 | direct bare p95 | tile size p50 | largest tile | index in the plan |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (z, layer), r in sorted(results.items()):
        ratio = r["cold_p50"] / r["bare_p50"] if r["bare_p50"] else float("nan")
        direct_p50 = f"{ms(r['direct_p50'])} ms" if r["direct_p50"] is not None else "–"
        direct_p95 = f"{ms(r['direct_p95'])} ms" if r["direct_p95"] is not None else "–"
        lines.append(
            f"| {z} | {layer} | {r['tiles']} | {ms(r['cold_p50'])} ms | {ms(r['cold_p95'])} ms | "
            f"{ms(r['bare_p50'])} ms | {ms(r['bare_p95'])} ms | {ratio:.2f} | {ms(r['warm_p50'])} ms | "
            f"{direct_p50} | {direct_p95} | "
            f"{r['size_p50'] / 1024:,.0f} KiB | {r['size_max'] / 1024:,.0f} KiB | "
            f"{', '.join(f'`{name}`' for name in r['indexes']) or 'none (sequential scan)'} |"
        )
    lines += [
        "",
        "The view's cold cost over the bare statement is mostly the fingerprint query, which reads the same rows "
        "through the same index without building geometry, plus the Redis write of the tile. A warm request "
        "pays the fingerprint only; it grows with the rows in the tile, so it is smallest where tiles are many "
        "(high zoom) and largest at zoom 10, where one tile holds most of the city.",
        "",
        "Up to zoom 13 an accident tile reads the squares of its zoom from the accident grid through that zoom's "
        "partial GiST index and combines the years of its window (a sort of some thousand rows), instead of "
        "sorting every accident of the tile into its square (the direct bare column: at zoom 10 and 12 a tile "
        "covers most of the synthetic accidents, so that path reads the table sequentially). From zoom 14 the "
        "tiles thin the accidents themselves through the GiST index on their location. The grid shows whole "
        "calendar years (this year so far and the two before), the direct path the three years to the day, so "
        "the two count slightly different accidents here; with the same accidents they draw the same squares "
        "(tests/maps/test_accident_grid.py).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accidents", type=int, default=1_000_000)
    parser.add_argument("--roadworks", type=int, default=100_000)
    parser.add_argument("--tiles", default="12,24,40", help="tiles per zoom 10,12,14")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tiles_per_zoom = dict(zip(ZOOMS, (int(n) for n in args.tiles.split(",")), strict=True))
    info = machine()
    generated, results = run(args.accidents, args.roadworks, tiles_per_zoom)
    text = section(info, generated, results, args.accidents, args.roadworks)
    print("\n" + text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
