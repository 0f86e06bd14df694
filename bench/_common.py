"""What every benchmark shares: Django set-up against the dev database, timing, machine facts, and
writing one section of docs/benchmarks.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO_ROOT / "docs" / "benchmarks.md"


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auman.settings")
    import django

    django.setup()


class Rollback(Exception):
    """Raised to leave the benchmark's transaction, and with it every synthetic row."""


def median_seconds(func: Callable[[], object], *, budget_s: float, min_runs: int = 3, max_runs: int = 30) -> float:
    func()  # warm-up: connection, plan cache, imports
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_runs or (len(times) < max_runs and time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine() -> dict[str, str]:
    import django
    from django.db import connection

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), PostGIS_Lib_Version()")
        pg_version, postgis_version = cursor.fetchone()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model.group(1).strip() if model else platform.processor() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(meminfo.group(1)) / 1024 / 1024:.1f} GiB" if meminfo else "unknown",
        "software": f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"PostgreSQL {pg_version}, PostGIS {postgis_version}",
    }


def machine_lines(info: dict[str, str]) -> list[str]:
    return [
        f"Measured {info['date']} on {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['software']}.",
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def write_section(heading: str, text: str) -> None:
    """Replace the section under `heading` in docs/benchmarks.md (or append it), leaving the others alone."""
    current = (
        RESULTS_FILE.read_text() if RESULTS_FILE.exists() else "# Benchmarks\n\nWritten by the scripts in `bench/`.\n"
    )
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    RESULTS_FILE.write_text(updated.rstrip("\n") + "\n")


def vacuum(*tables: str) -> None:
    """VACUUM ANALYZE the tables, so measurements start from tidy pages and fresh statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables or ("roadworks_roadwork", "accounts_organisation"):
            cursor.execute(f"VACUUM ANALYZE {table}")
