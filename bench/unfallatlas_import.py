"""Benchmark: importing a Destatis Unfallatlas CSV file (python manage.py import_unfallatlas).

Run from the repository root against the dev database (DATABASE_URL, default the local cluster):

    .venv/bin/python bench/unfallatlas_import.py [--rows 100000] [--no-write]

Writes a synthetic file in the 2023 format (UTF-8 with BOM, ';', decimal commas, both coordinate pairs): accidents
around Mannheim's centre, of which about a fifth lie outside the city boundary, 3 % in another Kreis and one in 500 has
a bad value. Every import runs inside one transaction that is rolled back at the end.
Measured:
  a) the first import of the file: time, rows per second;
  b) importing the same file again (every row already present);
  c) peak memory of a first import: Python allocations (tracemalloc, in a separate run because tracing slows
     Python down) and the growth of the process's peak resident set (ru_maxrss).
"""

from __future__ import annotations

import argparse
import io
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Rollback, machine, machine_lines, setup_django, write_section

setup_django()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

HEADING = "## Unfallatlas import"
TARGET_S = 30.0
HEADER = (
    "OID_;UIDENTSTLAE;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;"
    "ULICHTVERH;IstStrassenzustand;IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstige;LINREFX;LINREFY;XGCSWGS84;"
    "YGCSWGS84;PLST"
)
CENTRE_LON, CENTRE_LAT = 8.4660, 49.4875


def _comma(value: float, places: int) -> str:
    return f"{value:.{places}f}".replace(".", ",")


def generate(path: Path, rows: int, seed: int = 25832) -> None:
    """A year's file: about 3 % in another Kreis, a few points outside the city, 1 row in 500 unreadable."""
    from django.contrib.gis.gdal import CoordTransform, SpatialReference
    from django.contrib.gis.geos import Point

    rng = random.Random(seed)
    to_utm = CoordTransform(SpatialReference(4326), SpatialReference(25832))
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        fh.write(HEADER + "\r\n")
        for n in range(1, rows + 1):
            lon = rng.gauss(CENTRE_LON, 0.018)
            lat = rng.gauss(CENTRE_LAT, 0.012)
            point = Point(lon, lat, srid=4326)
            point.transform(to_utm)
            kreis = "21" if rng.random() < 0.03 else "22"
            category = "9" if n % 500 == 0 else rng.choice("12333333333")
            fields = [
                str(n),
                f"08{kreis}2023{n:08d}",
                "08",
                "2",
                kreis,
                "000",
                "2023",
                f"{rng.randint(1, 12):02d}",
                f"{rng.randint(0, 23):02d}",
                str(rng.randint(1, 7)),
                category,
                str(rng.randint(0, 9)),
                str(rng.randint(1, 7)),
                str(rng.randint(0, 2)),
                str(rng.randint(0, 2)),
                *(str(int(rng.random() < p)) for p in (0.3, 0.7, 0.1, 0.1, 0.05, 0.05)),
                _comma(point.x, 9),
                _comma(point.y, 9),
                _comma(lon, 12),
                _comma(lat, 12),
                "1",
            ]
            fh.write(";".join(fields) + "\r\n")


def _import(path: Path) -> tuple[float, str]:
    out = io.StringIO()
    started = time.perf_counter()
    call_command(
        "import_unfallatlas", str(path), "--region", "08222", "--no-progress", stdout=out, stderr=io.StringIO()
    )
    return time.perf_counter() - started, out.getvalue()


def run(rows: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Unfallorte2023_LinRef.csv"
        started = time.perf_counter()
        generate(path, rows)
        print(f"generated {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB, in {time.perf_counter() - started:.1f} s")
        result: dict = {"rows": rows, "size_mb": path.stat().st_size / 1e6}

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with transaction.atomic():
                result["first"], result["summary"] = _import(path)
                print(result["summary"], flush=True)
                result["again"], again = _import(path)
                print(again, flush=True)
                raise Rollback
        except Rollback:
            pass
        result["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

        tracemalloc.start()
        try:
            with transaction.atomic():
                result["traced"], _summary = _import(path)
                raise Rollback
        except Rollback:
            pass
        result["peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    print(result, flush=True)
    return result


def section(info: dict[str, str], r: dict) -> str:
    summary_line = r["summary"].strip().splitlines()[0].split(": ", 1)[1]
    verdict = "within" if r["first"] < TARGET_S else "over"
    lines = [
        HEADING,
        "",
        *machine_lines(info),
        f"A synthetic 2023-format file of {r['rows']:,} rows ({r['size_mb']:.1f} MB: UTF-8 with BOM, ';', decimal "
        "commas, both coordinate pairs) around Mannheim's centre; imported with `--region 08222` (Mannheim) "
        "in one transaction that is rolled back. "
        "`bench/unfallatlas_import.py`.",
        "",
        "| rows | first import | rows/s | again (all present) | peak Python memory (tracemalloc) "
        "| peak RSS growth | target |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {r['rows']:,} | {r['first']:.1f} s | {r['rows'] / r['first']:,.0f} | {r['again']:.1f} s "
        f"| {r['peak_mb']:.1f} MB | {r['rss_growth_mb']:.0f} MB | < {TARGET_S:.0f} s: {verdict} |",
        "",
        f"The first import's own summary: {summary_line}. The rows are parsed in Python (csv module), copied "
        "into a temporary table 5,000 at a time (COPY) and inserted by one statement per batch, which builds the "
        "points, tests the service area in PostGIS and skips keys already present (ON CONFLICT DO NOTHING). "
        "Memory stays flat with the file's size: one batch is held at a time. The time includes the bulk "
        "work-zone check after the import.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    info = machine()
    text = section(info, run(args.rows))
    print("\n" + text)
    if not args.no_write:
        write_section(HEADING, text)


if __name__ == "__main__":
    main()
