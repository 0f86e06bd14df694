"""Background work survives faults, proven by really stopping servers and killing processes.

Against our own PostgreSQL and Redis (tests/reliability/conftest.py), with a gunicorn and a Celery worker as real
processes: Redis stopped while people write, a worker killed in the middle of a task, PostgreSQL restarted under
a running site. The shared servers are never touched."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import KAISERRING, KAISERRING_NEARBY, feature, geojson_line

from .conftest import Stack, wait_for

# django_db: so pytest-django creates the test database whose schema the throwaway cluster copies.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}
CONFLICTS_OF = "SELECT count(*) FROM roadworks_conflict WHERE roadwork_a_id = %s OR roadwork_b_id = %s"
PENDING = "SELECT count(*) FROM jobs_outboxmessage WHERE sent_at IS NULL"


def application(title: str, coords=KAISERRING) -> dict:
    return feature(geojson_line(coords), title=title, period=PERIOD, status="submitted")


def conflicts_of(stack: Stack, roadwork_id: str) -> int:
    return stack.postgres.scalar(CONFLICTS_OF, (roadwork_id, roadwork_id))


@pytest.fixture(scope="module")
def running(stack: Stack) -> Stack:
    """The site and one worker on our own servers, for the whole module."""
    stack.start_web()
    stack.worker = stack.start_worker("worker-1")
    yield stack
    stack.stop_processes()


def test_with_redis_stopped_writes_succeed_and_their_detection_runs_once_it_is_back(running):
    # Stopped between tasks: kombu 5.7 can exit on "Unrecoverable error" when the broker vanishes in the very
    # moment a task is acknowledged (docs/operations.md: run workers under a supervisor that restarts them).
    running.wait_idle("worker-1")
    running.redis.stop()
    try:
        started = time.monotonic()
        status_a, first = running.request("POST", "/api/v1/roadworks/", application("Gasleitung"), user="alice")
        status_b, second = running.request("POST", "/api/v1/roadworks/", application("Glasfaser"), user="erin")
        elapsed = time.monotonic() - started
        assert (status_a, status_b) == (201, 201), (first, second)
        # Nobody waits for a broker that is not there.
        assert elapsed < 10
        assert running.postgres.scalar(PENDING) >= 2
        time.sleep(2)  # the worker's relay loop tries meanwhile, and fails: nothing may get lost by that
        assert conflicts_of(running, second["id"]) == 0
    finally:
        running.redis.start()

    wait_for(lambda: conflicts_of(running, second["id"]) > 0, timeout=60, what="detection after Redis came back")
    pair = running.postgres.scalar(
        "SELECT count(*) FROM roadworks_conflict WHERE rule = 'C1' AND %s IN (roadwork_a_id, roadwork_b_id)"
        " AND %s IN (roadwork_a_id, roadwork_b_id)",
        (first["id"], second["id"]),
    )
    assert pair == 1
    wait_for(lambda: running.postgres.scalar(PENDING) == 0, timeout=30, what="the outbox to empty")


def test_a_worker_killed_in_the_middle_of_a_task_does_not_lose_it(running):
    with running.postgres.connect() as blocker:
        # Hold the conflict table, so the detection task is caught in the middle of its work.
        blocker.autocommit = False
        blocker.execute("LOCK TABLE roadworks_conflict IN EXCLUSIVE MODE")
        status, work = running.request(
            "POST", "/api/v1/roadworks/", application("Fernwärme", KAISERRING_NEARBY), user="alice"
        )
        assert status == 201, work
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = 'auman'"
        wait_for(lambda: running.postgres.scalar(waiting), timeout=30, what="the task to start")

        running.worker.send_signal(signal.SIGKILL)
        running.worker.wait(timeout=10)
        # The killed worker's database session would finish the statement on its own once the lock goes: end it.
        running.postgres.scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )
        blocker.rollback()
    assert conflicts_of(running, work["id"]) == 0

    # Unacknowledged (acks_late), the message returns after the visibility timeout (5 s here) to the next worker.
    time.sleep(6)
    running.worker = running.start_worker("worker-2")
    wait_for(lambda: conflicts_of(running, work["id"]) > 0, timeout=60, what="the task to run again")
    assert "roadworks.tasks.conflicts_detect_for_roadwork" in running.log("worker-2")


def test_web_and_worker_carry_on_after_a_postgresql_restart_without_help(running):
    assert running.request("GET", "/api/v1/roadworks/", user="alice")[0] == 200  # a warm, persistent connection

    running.postgres.restart()

    # The first request after the restart already works: the dead connection is noticed and replaced.
    status, work = running.request("POST", "/api/v1/roadworks/", application("Wasserleitung"), user="erin")
    assert status == 201, work
    # The worker's connections died too; it picks up the detection all the same.
    wait_for(lambda: conflicts_of(running, work["id"]) > 0, timeout=60, what="detection after the restart")
    _, health = running.request("GET", "/healthz")
    assert health["checks"]["database"] == "ok", health
    assert running.worker.poll() is None
