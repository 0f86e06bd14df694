"""Benchmark: conflict detection (rule C1) in PostGIS versus a naive Python loop.

Run from the repository root against the dev database (DATABASE_URL, default the local cluster):

    .venv/bin/python bench/conflicts.py [--sizes 1000,10000,50000] [--no-write]

The synthetic works are written inside one transaction that is rolled back at the end.
Measured for each size, median of several runs:
  a) conflicts_detect_for(): one changed roadwork against all others (what the Celery task does)
  b) conflicts_sweep(): every pair, upsert and prune (the periodic job)
  c) the bare pair query of the sweep alone (the floor for b)
  d) the same bare query with index scans switched off (what the GiST index buys)
  e) the naive way for one roadwork: load every other work into Python and test distance and period
     overlap with Shapely one by one
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rollback, machine, machine_lines, median_seconds, ms, setup_django, write_section

setup_django()

import shapely  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.gis.geos import LineString  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Organisation  # noqa: E402
from roadworks.models import CONFLICTING_STATUSES, Roadwork, RoadworkStatus  # noqa: E402
from roadworks.services import _C1_PAIR_SQL, conflicts_detect_for, conflicts_sweep  # noqa: E402

HEADING = "## Conflict detection (rule C1)"
CENTRE_E, CENTRE_N, SPREAD_M = 461_500.0, 5_483_000.0, 6_000.0
MARKER = "BENCH-C1"


def _work(rng: random.Random, index: int, organisation: Organisation) -> Roadwork:
    e = CENTRE_E + rng.uniform(-SPREAD_M, SPREAD_M)
    n = CENTRE_N + rng.uniform(-SPREAD_M, SPREAD_M)
    heading = rng.uniform(0, 2 * math.pi)
    points = [(e, n)]
    for _ in range(rng.randint(1, 5)):
        step = rng.uniform(20, 120)
        heading += rng.uniform(-0.3, 0.3)
        e, n = e + step * math.cos(heading), n + step * math.sin(heading)
        points.append((e, n))
    start = timezone.now() + timedelta(days=rng.uniform(-200, 500))
    return Roadwork(
        organisation=organisation,
        reference=f"{MARKER}-{index:06d}",
        title=f"Synthetische Baustelle {index}",
        geometry=LineString(points, srid=settings.AUMAN_SRID),
        period=DateTimeTZRange(start, start + timedelta(days=rng.uniform(1, 60)), "[)"),
        status=rng.choice([RoadworkStatus.SUBMITTED, RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS]),
    )


def bare_pairs(*, use_index: bool) -> int:
    sql = _C1_PAIR_SQL.format(pair_condition="y.id > x.id", x_condition="")
    with connection.cursor() as cursor:
        if not use_index:
            cursor.execute("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off")
        cursor.execute(
            f"SELECT count(*) FROM ({sql}) pairs",
            {"buffer": settings.AUMAN_CONFLICT_BUFFER_M, "statuses": list(CONFLICTING_STATUSES)},
        )
        count = cursor.fetchone()[0]
        if not use_index:
            cursor.execute("SET LOCAL enable_indexscan = on; SET LOCAL enable_bitmapscan = on")
    return count


def naive_for_one(target_id) -> int:
    """What one would write without PostGIS: fetch everything, compare in Python."""
    rows = list(Roadwork.objects.filter(status__in=CONFLICTING_STATUSES).values_list("id", "geometry", "period"))
    target = next(r for r in rows if r[0] == target_id)
    target_geom = shapely.from_wkb(bytes(target[1].wkb))
    found = 0
    for rid, geom, period in rows:
        if rid == target_id:
            continue
        overlaps = period.lower < target[2].upper and target[2].lower < period.upper
        if overlaps and shapely.from_wkb(bytes(geom.wkb)).distance(target_geom) <= settings.AUMAN_CONFLICT_BUFFER_M:
            found += 1
    return found


def run(sizes: list[int]) -> list[dict]:
    rng = random.Random(25832)
    results = []
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(name=f"{MARKER} Versorger")
            made = 0
            for size in sizes:
                Roadwork.objects.bulk_create([_work(rng, i, organisation) for i in range(made, size)], batch_size=2000)
                made = size
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE roadworks_roadwork")
                target = Roadwork.objects.filter(reference__startswith=MARKER).order_by("reference").first()
                sweep = median_seconds(conflicts_sweep, budget_s=10, max_runs=5)
                row = {
                    "size": size,
                    "pairs": conflicts_sweep()["found"],
                    "one": median_seconds(lambda t=target: conflicts_detect_for(roadwork_id=t.pk), budget_s=3),
                    "sweep": sweep,
                    "bare": median_seconds(lambda: bare_pairs(use_index=True), budget_s=10, max_runs=5),
                    "no_index": median_seconds(lambda: bare_pairs(use_index=False), budget_s=20, min_runs=1, max_runs=3)
                    if size <= 10_000
                    else None,
                    "naive_one": median_seconds(
                        lambda t=target: naive_for_one(t.pk), budget_s=10, min_runs=1, max_runs=5
                    ),
                }
                print(row, flush=True)
                results.append(row)
            raise Rollback
    except Rollback:
        pass
    return results


def section(info: dict[str, str], results: list[dict]) -> str:
    lines = [
        HEADING,
        "",
        *machine_lines(info),
        f"Synthetic lines of 2–6 vertices spread over {2 * SPREAD_M / 1000:.0f} km × {2 * SPREAD_M / 1000:.0f} km, "
        f"periods of 1–60 days over 2 years; buffer {settings.AUMAN_CONFLICT_BUFFER_M:g} m. "
        "Median times in ms; `bench/conflicts.py`.",
        "",
        "| works | conflicting pairs | one roadwork (task) | naive one roadwork (Python) | ratio | full sweep "
        "| bare pair query | ratio sweep / bare | bare query without index | index speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        no_index = ms(r["no_index"]) if r["no_index"] else "–"
        speedup = f"{r['no_index'] / r['bare']:.0f}×" if r["no_index"] else "–"
        lines.append(
            f"| {r['size']:,} | {r['pairs']:,} | {ms(r['one'])} | {ms(r['naive_one'])} | "
            f"{r['naive_one'] / r['one']:.0f}× slower | {ms(r['sweep'])} | {ms(r['bare'])} | "
            f"{r['sweep'] / r['bare']:.1f} | {no_index} | {speedup} |"
        )
    lines += [
        "",
        "The task for one changed roadwork is what runs after every write. The naive column loads every "
        "conflicting work into Python and compares with Shapely. The sweep's extra time over the bare query "
        "is the upsert of the conflict rows and the place geometry (buffer intersection) per pair.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000")
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
