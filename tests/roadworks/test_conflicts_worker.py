"""End to end: API write → on_commit → Redis → a real Celery worker → Conflict rows in PostGIS."""

from __future__ import annotations

import pytest

from roadworks.models import Conflict, ConflictStatus
from tests.conftest import KAISERRING, KAISERRING_NEARBY, NECKARAU, feature, geojson_line, wait_until
from tests.roadworks.rule_helpers import wait_for_idle_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}


def test_a_worker_finds_a_conflict_and_resolves_it_when_the_work_moves(celery_worker_process, api, alice, bob, erin):
    first = api(alice).post(
        "/api/v1/roadworks/",
        feature(geojson_line(KAISERRING), title="Gasleitung Kaiserring", period=PERIOD, status="submitted"),
        format="json",
    )
    second = api(erin).post(
        "/api/v1/roadworks/",
        feature(geojson_line(KAISERRING_NEARBY), title="Glasfaser Kaiserring", period=PERIOD, status="submitted"),
        format="json",
    )
    assert first.status_code == 201, first.json()
    assert second.status_code == 201, second.json()
    ids = sorted([first.json()["id"], second.json()["id"]])

    conflict = wait_until(lambda: Conflict.objects.filter(rule="C1").first())
    assert [str(conflict.roadwork_a_id), str(conflict.roadwork_b_id)] == ids

    # Submitted applications are the authority's to change (applicants edit drafts and requested modifications).
    moved = api(bob).patch(
        f"/api/v1/roadworks/{second.json()['id']}/",
        {"geometry": geojson_line(NECKARAU), "properties": {"version": 1}},
        format="json",
    )
    assert moved.status_code == 200, moved.json()
    wait_until(lambda: Conflict.objects.filter(status=ConflictStatus.RESOLVED).exists())
    assert Conflict.objects.get().pk == conflict.pk
    # A new conflict also queues its mails: let the worker finish before the database is flushed.
    wait_for_idle_worker()


def test_a_worker_resolves_a_conflict_when_a_work_is_cancelled(celery_worker_process, api, alice, erin):
    first = api(alice).post(
        "/api/v1/roadworks/",
        feature(geojson_line(KAISERRING), title="Gasleitung Kaiserring", period=PERIOD, status="submitted"),
        format="json",
    )
    second = api(erin).post(
        "/api/v1/roadworks/",
        feature(geojson_line(KAISERRING_NEARBY), title="Glasfaser Kaiserring", period=PERIOD, status="submitted"),
        format="json",
    )
    conflict = wait_until(lambda: Conflict.objects.filter(rule="C1").first())

    # The status change goes through the workflow, which enqueues detection on commit like any write.
    cancelled = api(erin).post(
        f"/api/v1/roadworks/{second.json()['id']}/transition/", {"to": "cancelled", "version": 1}, format="json"
    )
    assert cancelled.status_code == 200, cancelled.json()
    wait_until(lambda: Conflict.objects.get(pk=conflict.pk).status == ConflictStatus.RESOLVED)
    assert first.status_code == 201
    wait_for_idle_worker()
