"""End to end: a large file through the API → ImportJob + outbox → Redis → a real Celery worker runs the import →
the job resource reports it done and the roadworks are in PostGIS."""

from __future__ import annotations

import pytest

from gisio.models import ImportJob
from roadworks.models import Roadwork
from tests.conftest import wait_until
from tests.gisio.test_import import collection, plan_feature, upload
from tests.roadworks.rule_helpers import wait_for_idle_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_imports_a_large_file_and_the_job_resource_follows_it(celery_worker_process, api, alice, settings):
    settings.AUMAN_IMPORT_SYNC_FEATURES = 2
    client = api(alice)
    plan = collection(*(plan_feature(f"SW-WORKER-{number}") for number in range(1, 5)))
    response = upload(client, plan)
    assert response.status_code == 202, response.content
    url = response["Location"]

    def finished():
        body = client.get(url).json()
        return body if body["status"] in ("done", "failed") else None

    body = wait_until(finished, timeout=60, interval=0.3)
    assert body["status"] == "done", body
    assert body["report"]["imported"] is True and body["report"]["total"] == 4
    assert set(Roadwork.objects.values_list("reference", flat=True)) == {f"SW-WORKER-{n}" for n in range(1, 5)}
    assert bytes(ImportJob.objects.get().data) == b""
    # The imported works queued their conflict detection: let it finish before the database is flushed.
    wait_for_idle_worker()
