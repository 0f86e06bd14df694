"""Benchmark: black-spot computation (traffic.blackspots.blackspots_compute) against the bare PostGIS clustering.

Run from the repository root against the dev database (DATABASE_URL, default the local cluster):

    .venv/bin/python bench/blackspots.py [--sizes 100000,1000000] [--no-write]

Synthetic accidents over the last three years, written by one INSERT ... SELECT in a transaction that is rolled
back at the end. 1,000,000 accidents are about three years of the whole Unfallatlas, so they are spread over a
square whose side grows with the count (200 km for a million) at the density of a German region: 10 % at
"bad junctions" (20 each for a million), 60 % at ordinary junctions (3 each), 30 % anywhere. Categories: 1 % killed,
9 % seriously, 50 % slightly injured, 40 % property damage only.
Measured for each size, with the default rules (UHS-1J, UHS-3J-SP, UHS-3J-SCORE, 25 m):
  a) blackspots_compute(): every rule, matching to stored black spots, writing, conflict C8 (first run: all new);
  b) the same again (every black spot kept: the nightly steady state);
  c) the bare clustering: for each rule only the ST_ClusterDBSCAN window query over its accidents, counted;
  d) the ratio a / c and b / c.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rollback, machine, machine_lines, setup_django, vacuum, write_section

setup_django()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from traffic.blackspots import blackspot_rules, blackspots_compute, cluster_params  # noqa: E402

HEADING = "## Black spots (Unfallhäufungsstellen)"
CENTRE_E, CENTRE_N = 461_500.0, 5_483_000.0
MARKER = "bench-blackspots"

_GENERATE_SQL = """
    SELECT setseed(0.25832);
    CREATE TEMP TABLE bench_junctions AS
    SELECT n, %(e)s + (random() - 0.5) * %(side)s AS x, %(n0)s + (random() - 0.5) * %(side)s AS y,
           1 + floor(random() * 7)::int AS main_type
      FROM generate_series(0, %(junctions)s - 1) n;
    CREATE INDEX ON bench_junctions (n);
    INSERT INTO traffic_accident
        (id, location, occurred_at, time_precision, category, kind, type, light_condition, road_condition,
         involves_bicycle, involves_car, involves_pedestrian, involves_motorcycle, involves_goods_vehicle,
         involves_other, source, source_key, region_code, created_at, updated_at)
    SELECT gen_random_uuid(),
           ST_SetSRID(CASE WHEN s.place < 0.3
                THEN ST_MakePoint(%(e)s + (s.u - 0.5) * %(side)s, %(n0)s + (s.v - 0.5) * %(side)s)
                ELSE ST_MakePoint(j.x + (s.u - 0.5) * 30, j.y + (s.v - 0.5) * 30) END, 25832),
           %(now)s - s.age * interval '3 years',
           'exact',
           CASE WHEN s.severity < 0.01 THEN 1 WHEN s.severity < 0.10 THEN 2 WHEN s.severity < 0.60 THEN 3 ELSE 5 END,
           floor(s.u * 10)::int,
           CASE WHEN s.place >= 0.3 AND s.v < 0.5 THEN j.main_type ELSE 1 + floor(s.w * 7)::int END,
           0, 0, s.w < 0.3, true, s.w > 0.9, false, false, false,
           'unfallatlas', %(marker)s || ':' || s.g, '', now(), now()
      FROM (
        SELECT g, random() AS place, random() AS u, random() AS v, random() AS w, random() AS age,
               random() AS severity, random() AS pick
          FROM generate_series(1, %(count)s) g
      ) s
      JOIN bench_junctions j
        ON j.n = CASE WHEN s.pick < 0.1 / 0.7 THEN floor(s.pick * 0.7 / 0.1 * %(hotspots)s)::int
                      ELSE %(hotspots)s + floor(s.u * (%(junctions)s - %(hotspots)s))::int END;
    DROP TABLE bench_junctions;
"""


def generate(count: int, now) -> None:
    side_m = (count / 25) ** 0.5 * 1000  # 25 accidents per km² in three years
    hotspots = max(1, count // 200)  # 10 % of the accidents, 20 each
    junctions = hotspots + max(1, int(count * 0.6 / 3))
    params = {
        "e": CENTRE_E,
        "n0": CENTRE_N,
        "side": side_m,
        "junctions": junctions,
        "hotspots": hotspots,
        "count": count,
        "now": now,
        "marker": MARKER,
    }
    with connection.cursor() as cursor:
        for statement in [s for s in _GENERATE_SQL.split(";") if s.strip()]:
            cursor.execute(statement, params if "%(" in statement else None)
        cursor.execute("ANALYZE traffic_accident")


def bare_clustering(now) -> tuple[float, int]:
    """Only the clustering of every rule: ST_ClusterDBSCAN over the rule's accidents, the members counted."""
    total, members = 0.0, 0
    with connection.cursor() as cursor:
        for rule in blackspot_rules():
            params = cluster_params(rule, now)
            partition = "PARTITION BY a.type" if rule.same_type else ""
            categories = "AND a.category = ANY(%(categories)s)" if rule.categories else ""
            sql = f"""
                SELECT count(cid) FROM (
                    SELECT ST_ClusterDBSCAN(a.location, eps := %(radius)s, minpoints := %(minpoints)s)
                           OVER ({partition}) AS cid
                      FROM traffic_accident a
                     WHERE a.occurred_at >= %(start)s AND a.occurred_at < %(end)s {categories}
                ) c
            """
            started = time.perf_counter()
            cursor.execute(sql, params)
            members += cursor.fetchone()[0]
            total += time.perf_counter() - started
    return total, members


def run(sizes: list[int]) -> list[dict]:
    results = []
    now = timezone.now()
    for size in sizes:
        try:
            with transaction.atomic():
                started = time.perf_counter()
                generate(size, now)
                generated = time.perf_counter() - started
                print(f"{size:,} accidents generated in {generated:.1f} s", flush=True)
                bare, members = bare_clustering(now)
                print(f"bare clustering {bare:.1f} s ({members:,} clustered accidents)", flush=True)
                started = time.perf_counter()
                first = blackspots_compute(now=now)
                first_s = time.perf_counter() - started
                print(f"first compute {first_s:.1f} s: {first}", flush=True)
                started = time.perf_counter()
                again = blackspots_compute(now=now)
                again_s = time.perf_counter() - started
                print(f"second compute {again_s:.1f} s: {again}", flush=True)
                bare_again, _members = bare_clustering(now)
                results.append(
                    {
                        "size": size,
                        "first": first_s,
                        "again": again_s,
                        "bare": min(bare, bare_again),
                        "spots": first["rules"],
                        "kept": again["kept"],
                        "members": members,
                    }
                )
                raise Rollback
        except Rollback:
            pass
        vacuum("traffic_accident", "traffic_blackspot", "traffic_blackspot_accidents")
    return results


def section(info: dict[str, str], results: list[dict]) -> str:
    rules = blackspot_rules()
    lines = [
        HEADING,
        "",
        *machine_lines(info),
        "Synthetic accidents over three years at the density of a German region (25 per km², 10 % at bad "
        "junctions, 60 % at ordinary ones, 30 % anywhere), written and rolled back in one transaction; the default "
        f"rules ({', '.join(r.code for r in rules)}, radius {rules[0].radius_m:g} m). Seconds; "
        "`bench/blackspots.py`.",
        "",
        "| accidents | black spots (" + " / ".join(r.code for r in rules) + ") | compute, first | compute, again "
        "| bare ST_ClusterDBSCAN | first / bare | again / bare |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        counts = " / ".join(f"{r['spots'][rule.code]:,}" for rule in rules)
        lines.append(
            f"| {r['size']:,} | {counts} | {r['first']:.1f} | {r['again']:.1f} | {r['bare']:.1f} "
            f"| {r['first'] / r['bare']:.2f} | {r['again'] / r['bare']:.2f} |"
        )
    lines += [
        "",
        "The bare column is only the clustering (one ST_ClusterDBSCAN window query per rule over the accidents in "
        "its window), the floor of the computation. The rest of *compute* is grouping the clusters with their "
        "statistics, areas (convex hull + radius) and member lists, matching them to the stored black spots by "
        "overlap, writing black spots and memberships, and conflict C8 against all roadworks. *First* writes every "
        "black spot new; *again* is the nightly steady state, where the black spots are kept and only refreshed.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    info = machine()
    text = section(info, run(sizes))
    print("\n" + text)
    if not args.no_write:
        write_section(HEADING, text)


if __name__ == "__main__":
    main()
