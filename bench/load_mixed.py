"""Load test: mixed traffic against a real gunicorn, and no acknowledged write lost.

Run from the repository root against the dev database (DATABASE_URL, default the local cluster):

    .venv/bin/python bench/load_mixed.py [--seconds 30] [--users 24] [--workers 3] [--writers 4]

It creates --writers applicant users (two organisations) with API tokens, starts gunicorn (--workers sync workers)
on a free loopback port, and runs locust headless for --seconds: feed pollers (WZDx), map readers (bbox GeoJSON)
and API writers (POST a roadwork, then PATCH it with If-Match) in the ratio 2 : 3 : 1. Rate limits are lifted for the
run (AUMAN_RATE_*). Afterwards every write the server acknowledged (201/200) is looked up in the database with the
title it was acknowledged with. The bench users, organisations and roadworks are removed again; their follow-up
tasks go to a Redis database of their own (--redis-db), which is emptied.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, machine, machine_lines, setup_django, write_section

setup_django()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from accounts.models import Organisation, Role, User  # noqa: E402
from jobs.models import OutboxMessage  # noqa: E402
from roadworks.models import Conflict, Roadwork, RoadworkTransition  # noqa: E402

HEADING = "## Mixed load (feeds, map, API writes)"
UNLIMITED = "100000000/m"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_url(db: int) -> str:
    parts = urlsplit(settings.REDIS_URL)
    return urlunsplit(parts._replace(path=f"/{db}"))


def create_writers(count: int, tag: str) -> tuple[list[Organisation], list[str]]:
    orgs = [
        Organisation.objects.create(name=f"Lasttest {tag} {i}", kind=Organisation.Kind.CONTRACTOR) for i in range(2)
    ]
    tokens = []
    for i in range(count):
        user = User.objects.create_user(f"bench-{tag}-{i}", organisation=orgs[i % 2], role=Role.APPLICANT)
        tokens.append(Token.objects.create(user=user).key)
    return orgs, tokens


def clean_up(orgs: list[Organisation], tag: str) -> None:
    works = list(Roadwork.objects.filter(organisation__in=orgs).values_list("pk", flat=True))
    ids = [str(pk) for pk in works]
    Conflict.objects.filter(roadwork_a__in=works).delete()
    Conflict.objects.filter(roadwork_b__in=works).delete()
    RoadworkTransition.objects.filter(roadwork__in=works).delete()
    Roadwork.objects.filter(pk__in=works).delete()
    OutboxMessage.objects.filter(task="roadworks.tasks.conflicts_detect_for_roadwork", args__0__in=ids).delete()
    User.objects.filter(username__startswith=f"bench-{tag}-").delete()
    for org in orgs:
        org.delete()


def start_gunicorn(port: int, workers: int, redis_db: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auman.settings",
        "REDIS_URL": redis_url(redis_db),
        "CELERY_BROKER_URL": redis_url(redis_db),
        **{f"AUMAN_RATE_{name}": UNLIMITED for name in ("API_ANON", "API_USER", "FEEDS", "TILES")},
        "AUMAN_TOKEN_FAILURE_LIMIT": "1000000",
        "LOG_LEVEL": "WARNING",
    }
    command = [str(REPO_ROOT / ".venv/bin/gunicorn"), "auman.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds/", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"gunicorn did not answer within 60 s, see {log}")


def run_locust(port: int, args: argparse.Namespace, tokens: list[str], workdir: Path) -> tuple[Path, Path]:
    acks = workdir / "acks.json"
    prefix = workdir / "locust"
    env = {**os.environ, "AUMAN_BENCH_TOKENS": json.dumps(tokens), "AUMAN_BENCH_ACKS": str(acks)}
    command = [
        str(REPO_ROOT / ".venv/bin/locust"),
        "-f",
        str(REPO_ROOT / "bench/_locust_mixed.py"),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.users),
        "--run-time",
        f"{args.seconds}s",
        "--stop-timeout",
        "10",
        "--host",
        f"http://127.0.0.1:{port}",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=False, timeout=args.seconds + 120)
    return Path(f"{prefix}_stats.csv"), acks


def read_stats(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def lost_writes(acks: list[dict]) -> tuple[int, int]:
    """(acknowledged writes, of them not found as acknowledged). The last acknowledged title of a work must hold."""
    final: dict[str, str] = {}
    for ack in acks:
        final[ack["id"]] = ack["title"]
    found = dict(Roadwork.objects.filter(pk__in=list(final)).values_list("pk", "title"))
    missing = sum(1 for pk, title in final.items() if found.get(uuid.UUID(pk)) != title)
    return len(acks), missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--redis-db", type=int, default=8, help="Redis database for the run's follow-up tasks")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args()

    info = machine()
    tag = uuid.uuid4().hex[:8]
    orgs, tokens = create_writers(args.writers, tag)
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="auman-load-"))
    gunicorn = start_gunicorn(port, args.workers, args.redis_db, workdir / "gunicorn.log")
    try:
        stats_file, ack_file = run_locust(port, args, tokens, workdir)
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)
    try:
        rows = read_stats(stats_file)
        acks = json.loads(ack_file.read_text()) if ack_file.exists() else []
        acknowledged, missing = lost_writes(acks)
    finally:
        clean_up(orgs, tag)
        connection.close()
        import redis

        redis.Redis.from_url(redis_url(args.redis_db)).flushdb()
        shutil.rmtree(workdir, ignore_errors=True)

    section = render(rows, args, info, acknowledged, missing)
    if args.no_write:
        print(section)
    else:
        write_section(HEADING, section)
        print(section)
    total = next(r for r in rows if r["Name"] == "Aggregated")
    if int(total["Failure Count"]) or missing:
        raise SystemExit(f"errors: {total['Failure Count']}, lost writes: {missing}")


def render(rows, args, info, acknowledged: int, missing: int) -> str:
    lines = [
        HEADING,
        "",
        f"`bench/load_mixed.py`: locust (headless, {args.users} users, {args.seconds} s) against gunicorn with "
        f"{args.workers} sync workers on loopback and the dev database; feed pollers, map readers and API writers "
        f"({args.writers} applicant tokens) in the ratio 2 : 3 : 1. Rate limits lifted for the run. Figures taken on "
        "a shared, busy 2-core machine (locust, gunicorn and PostgreSQL on the same cores): compare within a run.",
        "",
        "| requests | count | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = "all" if row["Name"] == "Aggregated" else row["Name"]
        lines.append(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | {float(row['Requests/s']):.1f} | "
            f"{row['50%']} | {row['95%']} | {row['99%']} | {float(row['Max Response Time']):.0f} |"
        )
    lines += [
        "",
        f"Acknowledged writes (201 on POST, 200 on PATCH): {acknowledged}; of them not found in the database "
        f"afterwards with the acknowledged title: **{missing}**.",
        "Percentiles are locust's (rounded to two significant digits above 100 ms, hence p99 can exceed the maximum).",
        "",
        *machine_lines(info),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
