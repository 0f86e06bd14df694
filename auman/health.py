"""/healthz: database, broker and worker, each checked for real. 200 when all answer, else 503 naming the failures."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .celery import app as celery_app


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT PostGIS_Lib_Version()")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure is a health failure, reported by name
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def _check_broker() -> str | None:
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_worker() -> str | None:
    try:
        replies = celery_app.control.ping(timeout=settings.AUMAN_HEALTH_WORKER_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    if not replies:
        return "no Celery worker answered"
    return None


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database(), "broker": _check_broker()}
    # Without a broker there is no way to reach a worker; say so instead of waiting for a timeout.
    checks["worker"] = _check_worker() if checks["broker"] is None else "broker unreachable"
    failed = sorted(name for name, error in checks.items() if error)
    body = {
        "status": "ok" if not failed else "failing",
        "failed": failed,
        "checks": {name: (error or "ok") for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if not failed else 503)
