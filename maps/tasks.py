"""Thin Celery tasks for the map."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import accident_grid

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 10}


@shared_task(**_RETRY)
def accident_grid_rebuild_task() -> int:
    """After accident imports (queued through the jobs outbox), and nightly (CELERY_BEAT_SCHEDULE)."""
    return accident_grid.accident_grid_rebuild()


@shared_task(**_RETRY)
def accident_grid_update_task(points: list[list]) -> int:
    """After a police entry changed an accident (queued through the jobs outbox): its squares, before and after."""
    return accident_grid.accident_grid_update([tuple(point) for point in points])
