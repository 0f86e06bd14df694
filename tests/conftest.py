"""Shared fixtures: named personas and small builders of valid roadworks and incidents.

Personas (one line each, so a test reads as a story):
- alice applies for Stadtwerke (applicant of the utility)
- erin applies for Telekom Bau (applicant of another organisation: must not see alice's drafts)
- bob reviews for the authority (Straßenverkehrsbehörde: sees and decides everything)
- carol is police (logs incidents, sees everything)
- dave must see nothing beyond the public (a logged-in user with no role)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import GEOSGeometry, LineString, Point
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Organisation, Role, User
from roadworks.models import Roadwork, RoadworkStatus, TrafficManagement
from traffic.models import Incident, IncidentKind

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
BERLIN = ZoneInfo("Europe/Berlin")

# Two streets in Mannheim's city centre (WGS84 lon/lat), a few metres apart, and one far away.
KAISERRING = [(8.4740, 49.4840), (8.4762, 49.4852)]
KAISERRING_NEARBY = [(8.47405, 49.48405), (8.4752, 49.4847)]  # runs along Kaiserring, within a few metres
NECKARAU = [(8.4860, 49.4520), (8.4880, 49.4530)]  # about 4 km south


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout")
    return path


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BERLIN)


def period(start: datetime, days: int) -> DateTimeTZRange:
    return DateTimeTZRange(start, start + timedelta(days=days), "[)")


def line(coords: list[tuple[float, float]]) -> GEOSGeometry:
    geom = LineString(coords, srid=4326)
    return geom.transform(25832, clone=True)


def feature(geometry: dict | None, **properties: Any) -> dict:
    body: dict[str, Any] = {"type": "Feature", "properties": properties}
    if geometry is not None:
        body["geometry"] = geometry
    return body


def geojson_line(coords: list[tuple[float, float]]) -> dict:
    return {"type": "LineString", "coordinates": [list(c) for c in coords]}


@pytest.fixture
def stadtwerke(db) -> Organisation:
    return Organisation.objects.create(name="Stadtwerke Mannheim", kind=Organisation.Kind.UTILITY)


@pytest.fixture
def telekom(db) -> Organisation:
    return Organisation.objects.create(name="Telekom Bau", kind=Organisation.Kind.CONTRACTOR)


@pytest.fixture
def authority_org(db) -> Organisation:
    return Organisation.objects.create(name="Straßenverkehrsbehörde", kind=Organisation.Kind.AUTHORITY)


@pytest.fixture
def police_org(db) -> Organisation:
    return Organisation.objects.create(name="Polizeipräsidium Mannheim", kind=Organisation.Kind.POLICE)


@pytest.fixture
def alice(stadtwerke) -> User:
    return User.objects.create_user("alice", password="pw-alice-1", organisation=stadtwerke, role=Role.APPLICANT)


@pytest.fixture
def erin(telekom) -> User:
    return User.objects.create_user("erin", password="pw-erin-1", organisation=telekom, role=Role.APPLICANT)


@pytest.fixture
def bob(authority_org) -> User:
    return User.objects.create_user("bob", password="pw-bob-1", organisation=authority_org, role=Role.AUTHORITY)


@pytest.fixture
def carol(police_org) -> User:
    return User.objects.create_user("carol", password="pw-carol-1", organisation=police_org, role=Role.POLICE)


@pytest.fixture
def dave(db) -> User:
    return User.objects.create_user("dave", password="pw-dave-1")


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api():
    """api(user) gives an API client authenticated by that user's token; api(None) is anonymous."""
    return client_for


def make_roadwork(organisation: Organisation, **overrides: Any) -> Roadwork:
    values: dict[str, Any] = {
        "organisation": organisation,
        "reference": f"BS-TEST-{Roadwork.objects.count() + 1:04d}",
        "title": "Leitungsbau Kaiserring",
        "street_names": ["Kaiserring"],
        "geometry": line(KAISERRING),
        "period": period(local(2027, 3, 1, 7), 10),
        "traffic_management": TrafficManagement.LANE_CLOSURE,
        "status": RoadworkStatus.APPROVED,
    }
    values.update(overrides)
    return Roadwork.objects.create(**values)


def make_incident(**overrides: Any) -> Incident:
    now = datetime.now(tz=BERLIN)
    values: dict[str, Any] = {
        "kind": IncidentKind.ACCIDENT,
        "street_name": "Kaiserring",
        "location": Point(8.4750, 49.4846, srid=4326).transform(25832, clone=True),
        "occurred_at": now - timedelta(minutes=20),
        "reported_at": now - timedelta(minutes=15),
    }
    values.update(overrides)
    incident = Incident.objects.create(**values)
    incident.refresh_from_db()
    return incident


def features_of(response) -> list[dict]:
    data = response.json() if hasattr(response, "json") else json.loads(response.content)
    assert data["type"] == "FeatureCollection", data
    return data["features"]


# --- A real Celery worker on the real Redis broker ------------------------------------------


def _wait_for_worker(app, deadline: float) -> None:
    import time

    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise AssertionError("the Celery worker did not answer within 60 s; see test-artifacts/celery-worker.log")


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup, django_db_blocker):
    """Starts `celery -A auman worker` as its own process against the test database and the test broker.

    Module-scoped: tests elsewhere can rely on no worker running (the health check's failure case)."""
    import os
    import subprocess
    import sys
    import time

    from django.conf import settings
    from django.db import connection

    from auman.celery import app

    db = connection.settings_dict
    database_url = f"postgis://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "auman.settings_test",
        "DATABASE_URL": database_url,
        "AUMAN_TEST_REDIS_URL": settings.CELERY_BROKER_URL,
    }
    app.control.purge()
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    log = open(artifacts / "celery-worker.log", "w")  # noqa: SIM115 - closed at teardown
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "auman",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-worker-{os.getpid()}@%h",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_worker(app, time.monotonic() + 60)
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


def wait_until(predicate, *, timeout: float = 20.0, interval: float = 0.1):
    """Polls until predicate() is truthy; returns its value or fails after timeout."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
