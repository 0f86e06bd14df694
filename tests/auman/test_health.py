"""/healthz checks the real database, broker and worker."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_names_the_missing_worker_with_503(client, settings):
    settings.AUMAN_HEALTH_WORKER_TIMEOUT = 0.5
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["worker"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"


def test_it_names_an_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    assert set(response.json()["failed"]) == {"broker", "worker"}
    assert "ConnectionError" in response.json()["checks"]["broker"]


@pytest.mark.integration
def test_it_answers_200_when_database_broker_and_worker_answer(client, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "failed": [],
        "checks": {"database": "ok", "broker": "ok", "worker": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]
