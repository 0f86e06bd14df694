"""Benchmark: every registered feed at 10,000 active items, built and served.

Run from the repository root (PostgreSQL and Redis of the dev setup running):

    .venv/bin/python bench/feeds.py [--items 10000] [--seconds 10] [--users 50] [--no-serve] [--no-write]

The data must be committed for a separate server process to see it, so the benchmark creates its own database
(``<dev database>_bench_feeds``, migrated from scratch), fills it, and drops it at the end: the dev database and
its demo data are never touched. Cache keys get their own prefix and are deleted at the end.

Measured, for each feed in traffic/feeds/registry.py (so the Waze and DATEX II feeds are in when registered):
  a) cold build: one GET through the feed's view with nothing cached (fingerprint, query, build, cache write),
     median of several runs;
  b) the floor: a bare PostGIS query writing the same items as a GeoJSON FeatureCollection with
     json_agg/ST_AsGeoJSON (id, geometry, a few properties), over what the feed covers (roadworks, incidents or
     both); a / b is the target (at most 1.5x);
  c) the naive way: the same items through a djangorestframework-gis GeoFeatureModelSerializer, c / a;
  d) serving: requests per second for the cached feed (full body) and for 304 answers, from locust with
     --users concurrent clients for --seconds each, against gunicorn started here on a free loopback port.
The results replace the "## Feeds: build and serving" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, RESULTS_FILE, machine, machine_lines, ms, write_section

SECTION = "## Feeds: build and serving"
CACHE_PREFIX = "bench-feeds"
DEV_DATABASE_URL = os.environ.get("DATABASE_URL", "postgis://auman@127.0.0.1:54329/auman")
_parts = urlsplit(DEV_DATABASE_URL)
BENCH_DB = f"{_parts.path.lstrip('/')}_bench_feeds"
BENCH_DATABASE_URL = urlunsplit(_parts._replace(path=f"/{BENCH_DB}"))
# Mannheim's inner city in EPSG:25832 (metres).
CENTRE_E, CENTRE_N, SPREAD_M = 461_500.0, 5_483_000.0, 4_000.0


def _admin_sql(*statements: str) -> None:
    """Run statements outside a transaction on the dev server's maintenance connection (CREATE/DROP DATABASE)."""
    import psycopg

    dsn = urlunsplit(_parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _create_database() -> float:
    _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)', f'CREATE DATABASE "{BENCH_DB}"')
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ["CACHE_KEY_PREFIX"] = CACHE_PREFIX
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auman.settings")
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    return time.perf_counter() - started


# --- Synthetic data ------------------------------------------------------------------------------------------


def _walk(rng: random.Random, srid: int):
    from django.contrib.gis.geos import LineString

    e = CENTRE_E + rng.uniform(-SPREAD_M, SPREAD_M)
    n = CENTRE_N + rng.uniform(-SPREAD_M, SPREAD_M)
    heading = rng.uniform(0, 6.283)
    points = [(e, n)]
    for _ in range(rng.randint(1, 9)):  # 2 to 10 vertices, 20 to 80 m apart, gently curving
        heading += rng.uniform(-0.4, 0.4)
        step = rng.uniform(20, 80)
        e, n = e + step * math.cos(heading), n + step * math.sin(heading)
        points.append((e, n))
    return LineString(points, srid=srid)


def fill(items: int, rng: random.Random) -> dict[str, int]:
    """`items` active roadworks (one in ten a polygon, one in ten with a detour) and `items` active incidents,
    plus half as many rows again that no feed shows (drafts, long-finished works, cleared incidents)."""
    from decimal import Decimal

    from django.conf import settings
    from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
    from django.utils import timezone

    from accounts.models import Organisation
    from roadworks.models import Detour, Direction, Roadwork, RoadworkStatus, TrafficManagement, WorkKind
    from traffic.models import Incident, IncidentDirection, IncidentKind, IncidentStatus

    srid = settings.AUMAN_SRID
    now = timezone.now()
    organisations = [
        Organisation.objects.create(name=f"Organisation {k}", kind=Organisation.Kind.UTILITY, email=f"o{k}@example.org")
        for k in range(5)
    ]
    works, incidents = [], []
    for index in range(items + items // 2):
        published = index < items
        geometry = _walk(rng, srid)
        if rng.random() < 0.1:
            geometry = geometry.buffer_with_style(rng.uniform(2, 5), end_cap_style=2)
        start = now + timedelta(days=rng.uniform(-30, 60))
        if published:
            status = rng.choice([RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS])
            end = max(start, now) + timedelta(days=rng.uniform(2, 50))
        else:
            status = rng.choice([RoadworkStatus.DRAFT, RoadworkStatus.SUBMITTED, RoadworkStatus.CANCELLED])
            end = start + timedelta(days=rng.uniform(2, 50))
        works.append(
            Roadwork(
                organisation=rng.choice(organisations),
                reference=f"BENCH-{index:06d}",
                title=f"Leitungsbau {index}",
                description="Synthetische Baustelle für den Benchmark." if rng.random() < 0.5 else "",
                street_names=[f"Straße {index % 400}"],
                geometry=geometry,
                period=DateTimeTZRange(start, end, "[)"),
                work_kind=rng.choice(list(WorkKind)),
                traffic_management=rng.choice(list(TrafficManagement)),
                direction=rng.choice(list(Direction)),
                lanes_affected=rng.choice([None, 1, 2]),
                max_width_m=Decimal("2.75") if rng.random() < 0.2 else None,
                speed_limit_kmh=30 if rng.random() < 0.3 else None,
                status=status,
                category="standard",
            )
        )
        occurred = now - timedelta(minutes=rng.uniform(5, 600))
        line = _walk(rng, srid)
        incidents.append(
            Incident(
                kind=rng.choice(list(IncidentKind)),
                street_name=f"Straße {index % 400}",
                description="Synthetischer Vorfall" if rng.random() < 0.5 else "",
                location=line.centroid if rng.random() < 0.7 else line.interpolate(0),
                affected_line=line if rng.random() < 0.3 else None,
                direction=rng.choice(list(IncidentDirection)),
                lanes_blocked=rng.choice([None, 0, 1]),
                status=(
                    rng.choice([IncidentStatus.REPORTED, IncidentStatus.CONFIRMED])
                    if published
                    else IncidentStatus.CLEARED
                ),
                occurred_at=occurred,
                reported_at=occurred,
                cleared_at=None if published else occurred + timedelta(minutes=30),
            )
        )
    # bulk_create skips save(), which would categorise each work one by one; the feeds do not read the category.
    Roadwork.objects.bulk_create(works, batch_size=1000)
    Incident.objects.bulk_create(incidents, batch_size=1000)
    detoured = [work for work in works[:items] if rng.random() < 0.1]
    Detour.objects.bulk_create(
        [Detour(roadwork=work, name=f"Umleitung {work.reference}", geometry=_walk(rng, srid)) for work in detoured],
        batch_size=1000,
    )
    return {"roadworks": items, "incidents": items, "detours": len(detoured)}


# --- The floor and the naive way -------------------------------------------------------------------------------

ROADWORKS_FLOOR_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', r.id, 'geometry', ST_AsGeoJSON(ST_Transform(r.geometry, 4326), 6)::json,
    'properties', json_build_object('title', r.title, 'start', lower(r.period), 'end', upper(r.period),
                                    'traffic_management', r.traffic_management, 'direction', r.direction)
)), '[]'))::text
FROM roadworks_roadwork AS r
WHERE r.status IN ('approved', 'in_progress') AND upper(r.period) > now()
"""
INCIDENTS_FLOOR_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', i.id, 'geometry', ST_AsGeoJSON(ST_Transform(coalesce(i.affected_line, i.location),
                                                                         4326), 6)::json,
    'properties', json_build_object('kind', i.kind, 'start', i.occurred_at, 'street', i.street_name,
                                    'direction', i.direction)
)), '[]'))::text
FROM traffic_incident AS i
WHERE i.status IN ('reported', 'confirmed')
"""
# b2: the same rows with every field the feeds draw on (about twenty per item, as the public GeoJSON feed has
# them), still one bare json_agg(json_build_object(...)) with ST_AsGeoJSON: what PostGIS costs for the content.
ROADWORKS_FULL_FLOOR_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', r.id, 'geometry', ST_AsGeoJSON(ST_Transform(r.geometry, 4326), 6)::json,
    'properties', json_build_object(
        'reference', r.reference, 'title', r.title, 'description', r.description, 'street_names', r.street_names,
        'organisation', o.name, 'organisation_email', o.email, 'status', r.status, 'start', lower(r.period),
        'end', upper(r.period), 'daily_start', r.daily_start, 'daily_end', r.daily_end, 'weekdays', r.weekdays,
        'work_kind', r.work_kind, 'traffic_management', r.traffic_management, 'direction', r.direction,
        'lanes_affected', r.lanes_affected, 'max_width_m', r.max_width_m, 'max_height_m', r.max_height_m,
        'max_weight_t', r.max_weight_t, 'speed_limit_kmh', r.speed_limit_kmh, 'created', r.created_at,
        'updated', r.updated_at,
        'detours', (SELECT json_agg(json_build_object(
                        'name', d.name, 'description', d.description, 'start', lower(d.period),
                        'end', upper(d.period), 'geometry', ST_AsGeoJSON(ST_Transform(d.geometry, 4326), 6)::json))
                    FROM roadworks_detour AS d WHERE d.roadwork_id = r.id))
)), '[]'))::text
FROM roadworks_roadwork AS r
JOIN accounts_organisation AS o ON o.id = r.organisation_id
WHERE r.status IN ('approved', 'in_progress') AND upper(r.period) > now()
"""
INCIDENTS_FULL_FLOOR_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', i.id, 'geometry', ST_AsGeoJSON(ST_Transform(coalesce(i.affected_line, i.location),
                                                                         4326), 6)::json,
    'properties', json_build_object(
        'kind', i.kind, 'description', i.description, 'street', i.street_name, 'status', i.status,
        'start', i.occurred_at, 'reported', i.reported_at, 'confirmed', i.confirmed_at, 'cleared', i.cleared_at,
        'expected_clearance', i.expected_clearance_at, 'direction', i.direction, 'lanes_blocked', i.lanes_blocked,
        'point', ST_AsGeoJSON(ST_Transform(i.location, 4326), 6)::json, 'created', i.created_at,
        'updated', i.updated_at, 'version', i.version,
        'accident', (SELECT json_build_object('category', a.category, 'kind', a.kind, 'type', a.type,
                                              'killed', a.killed, 'seriously_injured', a.seriously_injured,
                                              'slightly_injured', a.slightly_injured)
                     FROM traffic_accident AS a WHERE a.incident_id = i.id))
)), '[]'))::text
FROM traffic_incident AS i
WHERE i.status IN ('reported', 'confirmed')
"""
# What each feed shows; a feed not named here is taken to show both.
COVERS = {"wzdx-workzones": ("roadworks",), "tdx-incidents": ("incidents",)}


def floor(kind: str, *, full: bool = False) -> int:
    from django.db import connection, transaction

    from traffic.feeds.sql import PLANNER_SQL

    if full:
        sql = ROADWORKS_FULL_FLOOR_SQL if kind == "roadworks" else INCIDENTS_FULL_FLOOR_SQL
    else:
        sql = ROADWORKS_FLOOR_SQL if kind == "roadworks" else INCIDENTS_FLOOR_SQL
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(PLANNER_SQL)  # the same planner settings the feeds use
        cursor.execute(sql)
        return len(cursor.fetchone()[0])


# b3: what moving a document of the feed's size costs, whatever writes it: ready-made texts, one per item and
# together as long as the feed, joined in order by string_agg and fetched as bytes the way the feeds fetch theirs.
# Random hex, so that TOAST cannot compress it away.
_TEXTS_TABLE = "bench_feed_texts"


def size_floor_setup(items: int, size: int) -> None:
    from django.db import connection

    per_item = max(1, size // max(items, 1))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_TEXTS_TABLE}")
        cursor.execute(f"CREATE UNLOGGED TABLE {_TEXTS_TABLE} (n integer PRIMARY KEY, body text NOT NULL)")
        cursor.execute(
            f"""INSERT INTO {_TEXTS_TABLE}
                SELECT n, left((SELECT string_agg(md5(n::text || '-' || k::text), '')
                                FROM generate_series(1, %(chunks)s) AS k), %(per_item)s)
                FROM generate_series(1, %(items)s) AS n""",
            {"items": items, "per_item": per_item, "chunks": per_item // 32 + 1},
        )
        cursor.execute(f"ANALYZE {_TEXTS_TABLE}")


def size_floor() -> int:
    from traffic.feeds.sql import fetch_document

    return len(fetch_document(f"SELECT string_agg(t.body, ',' ORDER BY t.n) FROM {_TEXTS_TABLE} AS t", {}))


def _serializers() -> dict[str, Any]:
    from rest_framework import serializers
    from rest_framework_gis.serializers import GeoFeatureModelSerializer, GeometrySerializerMethodField

    from roadworks.models import Roadwork
    from traffic.models import Incident

    class RoadworkFeature(GeoFeatureModelSerializer):
        geometry = GeometrySerializerMethodField()
        start = serializers.SerializerMethodField()
        end = serializers.SerializerMethodField()

        class Meta:
            model = Roadwork
            geo_field = "geometry"
            fields = ("id", "geometry", "title", "start", "end", "traffic_management", "direction")

        def get_geometry(self, obj):
            return obj.geometry.transform(4326, clone=True)

        def get_start(self, obj):
            return obj.period.lower.isoformat()

        def get_end(self, obj):
            return obj.period.upper.isoformat()

    class IncidentFeature(GeoFeatureModelSerializer):
        geometry = GeometrySerializerMethodField()

        class Meta:
            model = Incident
            geo_field = "geometry"
            fields = ("id", "geometry", "kind", "occurred_at", "street_name", "direction")

        def get_geometry(self, obj):
            return (obj.affected_line or obj.location).transform(4326, clone=True)

    return {"roadworks": RoadworkFeature, "incidents": IncidentFeature}


def naive(kind: str) -> int:
    from django.utils import timezone

    from roadworks.models import Roadwork
    from traffic.models import Incident

    serializer = _serializers()[kind]
    if kind == "roadworks":
        rows = Roadwork.objects.filter(status__in=("approved", "in_progress"), period__endswith__gt=timezone.now())
    else:
        rows = Incident.objects.filter(status__in=("reported", "confirmed"))
    return len(json.dumps(serializer(rows, many=True).data, separators=(",", ":"), ensure_ascii=False).encode())


# --- Cold builds through the views -----------------------------------------------------------------------------


def builders() -> dict[str, Any]:
    """Each feed's bytes built directly (rows query and assembly), without the view: no fingerprint, ETag or cache."""
    from traffic.feeds import datex2, geojson, tdx, waze, wzdx

    return {
        "wzdx-workzones": wzdx.build_now,
        "tdx-incidents": tdx.build_now,
        "geojson-public": geojson.build_now,
        "waze-cifs-xml": waze.build_now,
        "waze-cifs-json": lambda: waze.build_now(as_json=True),
        "datex2-situations": datex2.build_now,
    }


def cold_get(path: str, *, gzip: bool = False) -> tuple[int, bytes, float, float]:
    """One GET through the feed's view with nothing cached: (status, body, seconds until the answer is ready,
    seconds its close() takes afterwards, which is where a fresh build is written into the cache)."""
    from django.core.cache import cache
    from django.core.signals import request_finished
    from django.db import close_old_connections
    from django.test import RequestFactory
    from django.urls import resolve

    cache.delete_pattern("feed:*")
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    started = time.perf_counter()
    response = resolve(path).func(RequestFactory().get(path, HTTP_HOST="127.0.0.1", headers=headers))
    ready = time.perf_counter() - started
    # What the WSGI server does after sending, keeping our database connection open as Django's test client does.
    request_finished.disconnect(close_old_connections)
    try:
        started = time.perf_counter()
        response.close()
        stored = time.perf_counter() - started
    finally:
        request_finished.connect(close_old_connections)
    return response.status_code, response.content, ready, stored


def median_of(func, *, runs: int, warm: bool = True) -> float:
    if warm:
        func()  # connection, plan cache, imports
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- Serving under load ----------------------------------------------------------------------------------------

LOCUSTFILE = """
import os
from locust import FastHttpUser, constant, task

PATH = os.environ["BENCH_PATH"]
ETAG = os.environ.get("BENCH_ETAG", "")
WANT = 304 if ETAG else 200


class FeedClient(FastHttpUser):
    wait_time = constant(0)

    @task
    def poll(self):
        headers = {"Accept-Encoding": "gzip"}
        if ETAG:
            headers["If-None-Match"] = ETAG
        with self.client.get(PATH, headers=headers, catch_response=True, name=PATH) as response:
            if response.status_code != WANT:
                response.failure(f"status {response.status_code}")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, deadline: float) -> None:
    import urllib.request

    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer at {url}")


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], int]:
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, dict(response.headers), len(response.read())


def _plain_clients(url: str, *, clients: int = 8, requests: int = 160) -> float:
    """Requests per second for `requests` gzip GETs from `clients` threads with urllib: a cross-check of the cached
    rate, which with megabyte bodies is bound by how fast locust's gevent client reads them, not by the server."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> int:
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return len(response.read())

    with ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        sizes = list(pool.map(one, range(requests)))
        elapsed = time.perf_counter() - started
    assert all(sizes)
    return requests / elapsed


def _locust(host: str, path: str, etag: str, *, users: int, seconds: int, workdir: Path) -> dict[str, float]:
    locustfile = workdir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = workdir / "run"
    env = {**os.environ, "BENCH_PATH": path, "BENCH_ETAG": etag}
    subprocess.run(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(locustfile),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{seconds}s",
            "--host",
            host,
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env=env,
        check=False,
        timeout=seconds + 60,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "locust.log", "w"),  # noqa: SIM115 - closed with the process
    )

    def number(value: str) -> float:
        return float(value) if value not in ("", "N/A") else float("nan")

    with open(f"{prefix}_stats.csv", newline="") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    if not number(total["Request Count"]) > 0:
        print((workdir / "locust.log").read_text()[-3000:], flush=True)
    return {
        "requests": number(total["Request Count"]),
        "failures": number(total["Failure Count"]),
        "rps": number(total["Requests/s"]),
        "median_ms": number(total["50%"]),
        "p95_ms": number(total["95%"]),
    }


def serve(paths: list[str], *, users: int, seconds: int) -> dict[str, dict[str, Any]]:
    port = _free_port()
    host = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DATABASE_URL,
        "CACHE_KEY_PREFIX": CACHE_PREFIX,
        "DEBUG": "0",
        # The load generator is one address polling far above the per-client feed limit: a trusted aggregator.
        "AUMAN_RATE_EXEMPT_IPS": "127.0.0.1",
    }
    # Two workers for two cores, as WEB_CONCURRENCY would be set there; locust runs on the same machine.
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "auman.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        _wait_for(f"{host}/feeds/?format=json", time.monotonic() + 60)
        with tempfile.TemporaryDirectory() as tmp:
            for path in paths:
                # Warm: the first request builds, gzip is made once; then both runs hit the cache.
                _status, headers, size = _get(host + path, {"Accept-Encoding": "gzip"})
                etag = headers["ETag"]
                results[path] = {
                    "gzip_bytes": size,
                    "cached": _locust(host, path, "", users=users, seconds=seconds, workdir=Path(tmp)),
                    "not_modified": _locust(host, path, etag, users=users, seconds=seconds, workdir=Path(tmp)),
                    "plain_rps": _plain_clients(host + path),
                }
                print(
                    f"  {path}: cached {results[path]['cached']['rps']:,.0f} req/s, "
                    f"304 {results[path]['not_modified']['rps']:,.0f} req/s, "
                    f"cached with 8 urllib clients {results[path]['plain_rps']:,.0f} req/s",
                    flush=True,
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # our own gunicorn: master and its workers
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    return results


# --- Report ---------------------------------------------------------------------------------------------------


def section(info: dict[str, str], counts: dict[str, int], rows: list[dict[str, Any]], serving, args) -> str:
    lines = [
        SECTION,
        "",
        f"Run with `.venv/bin/python bench/feeds.py --items {args.items}`. " + " ".join(machine_lines(info)),
        "Figures were taken on a shared 2-core machine with other work running; the load generator ran on the same",
        "machine as the server, so requests per second are a lower bound.",
        "",
        f"Data: {counts['roadworks']:,} active roadworks (one in ten a polygon, random directions,",
        f"{counts['detours']:,} detours) and {counts['incidents']:,} active incidents (three in ten with an affected",
        "stretch), plus half as many rows again that no feed shows; in a database of its own, created, migrated",
        "and dropped by the script.",
        "Build times are medians in milliseconds of the runs of each feed, which alternate with runs of its floors",
        "(b, b2), so that all see the same load.",
        "",
        "| feed | items | size | a) cold answer | b) bare floor | a / b | b2) full floor | a / b2 "
        "| b3) moving the bytes | a / b3 | a') bytes only | stored after sending | gzip cold answer "
        "| c) DRF-gis | c / a |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['key']} | {row['items']:,} | {row['bytes'] / 1024:,.0f} KiB | {ms(row['ours'])} "
            f"| {ms(row['floor'])} | {row['ours'] / row['floor']:.2f}x | {ms(row['full_floor'])} "
            f"| {row['ours'] / row['full_floor']:.2f}x | {ms(row['size_floor'])} "
            f"| {row['ours'] / row['size_floor']:.2f}x | {ms(row['build'])} | {ms(row['store'])} "
            f"| {ms(row['gzip'])} | {ms(row['naive'])} | {row['naive'] / row['ours']:.1f}x |"
        )
    lines += [
        "",
        "- a) a GET through the feed's view with an empty cache, until its answer is ready: the fingerprint query",
        "  (memoised for AUMAN_FEED_FINGERPRINT_SECONDS per process, so usually not taken in these back-to-back",
        "  runs), the feed's one document query, and the ETag (SHA-256 of the body). The body goes into Redis when",
        "  the WSGI server closes the answer after sending it; that write is the column *stored after sending*,",
        "  which the client does not wait for. *gzip cold answer* is a) for a client sending",
        "  `Accept-Encoding: gzip`: the body is compressed (level 6) before it goes out.",
        "- b) the items the feed covers (roadworks, incidents or both, with the feed's status and period",
        "  conditions and planner settings) as a bare GeoJSON FeatureCollection from one json_agg/ST_AsGeoJSON",
        "  query with five properties per item: the floor named in the issue. Its target is a / b of at most 1.5.",
        "- b2) the same items through the same kind of bare query, but with every field the feeds draw on (about",
        "  twenty per item, the organisation, the detours with their lines, the accident classification): what",
        "  PostGIS costs to write the content the feeds carry, without our code.",
        "- b3) no content at all: ready-made random texts, one per item and together as long as the feed, joined",
        "  in order by string_agg and fetched as bytes the way the feeds fetch theirs. Any way of writing a",
        "  document of that size in PostgreSQL costs at least this; where b3 alone is above 1.5 times b (DATEX II",
        "  writes 46 MB where b writes 8 MB), the target against b cannot be met by any implementation.",
        "- a') the feed's bytes without the view (its build_now: the document query alone).",
        "- c) the same items through a djangorestframework-gis GeoFeatureModelSerializer, geometry transformed per",
        "  object in Python: what a per-object serializer loop costs.",
        "- Every feed is one PostgreSQL query writing the whole document (ids with uuid_generate_v5, related",
        "  events, data sources, XML escaping), so a / b2 measures what our code adds to what PostGIS must do",
        "  anyway. Against b) the feeds write several times the floor's content: WZDx and TDx one road event per",
        "  direction of travel (about 1.4 per item) with 15 to 20 properties each and detours, Waze and DATEX II",
        "  XML (DATEX II three records per closure, 46 MB for 20,000 items against the floor's 8 MB).",
    ]
    if serving:
        lines += [
            "",
            f"Serving: gunicorn with 2 workers on loopback, locust with {args.users} concurrent clients for",
            f"{args.seconds} s per run (FastHttpUser, no wait, `Accept-Encoding: gzip`), the feed already cached;",
            '"304" sends the current ETag in If-None-Match.',
            "",
            "| feed | gzip body | cached: req/s | median / p95 ms | errors | 304: req/s | median / p95 ms | errors "
            "| cached, 8 urllib clients: req/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for path, result in serving.items():
            cached, not_modified = result["cached"], result["not_modified"]
            lines.append(
                f"| `{path}` | {result['gzip_bytes'] / 1024:,.0f} KiB | {cached['rps']:,.0f} "
                f"| {cached['median_ms']:.0f} / {cached['p95_ms']:.0f} | {cached['failures']:.0f} "
                f"| {not_modified['rps']:,.0f} | {not_modified['median_ms']:.0f} / {not_modified['p95_ms']:.0f} "
                f"| {not_modified['failures']:.0f} | {result['plain_rps']:,.0f} |"
            )
        lines += [
            "",
            "- Each process takes the feed's fingerprint query (a count and sums over the feed's rows, 15 to 20 ms at",
            "  this size) at most once per AUMAN_FEED_FINGERPRINT_SECONDS (1 s) and feed variant; every request then",
            "  costs one small Redis read (the header entry). The body is built and compressed once per change of",
            "  the data, and each process keeps the gzipped bodies it sent last (up to 32 MB, by ETag), so a full",
            "  answer reads the body from Redis only the first time a process sends it.",
            "- With bodies of one to two megabytes the cached rate under locust is bound by the load generator: its",
            "  gevent client reads some 30 MB/s on this machine. The last column sends 160 requests from 8 threads",
            "  with urllib (which reads in C) against the same server, closer to what the server itself can do.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="active roadworks and active incidents, each")
    parser.add_argument("--runs", type=int, default=5, help="timed cold builds per feed, each beside its floor")
    parser.add_argument("--seconds", type=int, default=10, help="length of each load run")
    parser.add_argument("--users", type=int, default=50, help="concurrent clients of the load runs")
    parser.add_argument("--no-serve", action="store_true", help="skip the load runs")
    parser.add_argument("--no-naive", action="store_true", help="skip the (slow) DRF-gis baseline")
    parser.add_argument("--keep-db", action="store_true", help=f"leave {BENCH_DB} in place (to look into it)")
    parser.add_argument("--no-write", action="store_true", help=f"print only; leave {RESULTS_FILE.name} alone")
    args = parser.parse_args()

    migrate_s = _create_database()
    print(f"Database {BENCH_DB} created and migrated in {migrate_s:.0f} s", flush=True)
    from django.core.cache import cache
    from django.db import connection
    from django.urls import reverse

    import traffic.feeds.urls  # noqa: F401 - registers every feed
    from traffic.feeds.registry import FEEDS

    try:
        counts = fill(args.items, random.Random(42))
        with connection.cursor() as cursor:
            for table in ("roadworks_roadwork", "traffic_incident", "roadworks_detour", "accounts_organisation"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        info = machine()
        # The machine is shared: each feed's runs alternate with runs of its floor, so both see the same load.
        naives = {
            kind: median_of(lambda kind=kind: naive(kind), runs=1, warm=False) if not args.no_naive else float("nan")
            for kind in ("roadworks", "incidents")
        }
        rows = []
        for feed in FEEDS.values():
            path = reverse(feed.url_name)
            status, body, _, _ = cold_get(path)
            if status != 200:
                print(f"{feed.key}: HTTP {status}, skipped", flush=True)
                continue
            covers = COVERS.get(feed.key, ("roadworks", "incidents"))
            for kind in covers:
                floor(kind)  # warm
                floor(kind, full=True)
            size_floor_setup(sum(counts[kind] for kind in covers), len(body))
            size_floor()  # warm
            builder = builders().get(feed.key)
            ours, stores, zipped, floors, full_floors, size_floors, builds = [], [], [], [], [], [], []
            for _ in range(args.runs):
                _, _, ready, stored = cold_get(path)
                ours.append(ready)
                stores.append(stored)
                zipped.append(cold_get(path, gzip=True)[2])
                if builder is not None:
                    started = time.perf_counter()
                    builder()
                    builds.append(time.perf_counter() - started)
                started = time.perf_counter()
                for kind in covers:
                    floor(kind)
                floors.append(time.perf_counter() - started)
                started = time.perf_counter()
                for kind in covers:
                    floor(kind, full=True)
                full_floors.append(time.perf_counter() - started)
                started = time.perf_counter()
                size_floor()
                size_floors.append(time.perf_counter() - started)
            row = {
                "key": feed.key,
                "items": sum(counts[kind] for kind in covers),
                "bytes": len(body),
                "ours": statistics.median(ours),
                "store": statistics.median(stores),
                "gzip": statistics.median(zipped),
                "build": statistics.median(builds) if builds else float("nan"),
                "floor": statistics.median(floors),
                "full_floor": statistics.median(full_floors),
                "size_floor": statistics.median(size_floors),
                "naive": sum(naives[kind] for kind in covers),
            }
            rows.append(row)
            print(
                f"{feed.key}: {ms(row['ours'])} ms, floor {ms(row['floor'])} ms ({row['ours'] / row['floor']:.2f}x), "
                f"full floor {ms(row['full_floor'])} ms ({row['ours'] / row['full_floor']:.2f}x), "
                f"moving the bytes {ms(row['size_floor'])} ms ({row['ours'] / row['size_floor']:.2f}x), "
                f"bytes only {ms(row['build'])} ms, stored after sending {ms(row['store'])} ms, "
                f"gzip answer {ms(row['gzip'])} ms, "
                f"DRF-gis {ms(row['naive'])} ms ({row['naive'] / row['ours']:.1f}x)",
                flush=True,
            )
        serving = None
        if not args.no_serve:
            connection.close()
            serving = serve([reverse(feed.url_name) for feed in FEEDS.values()], users=args.users, seconds=args.seconds)
    finally:
        cache.delete_pattern("feed:*")
        connection.close()
        if not args.keep_db:
            _admin_sql(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    text = section(info, counts, rows, serving, args)
    print("\n" + text)
    if not args.no_write:
        write_section(SECTION, text)
        print(f"Written to {RESULTS_FILE.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
