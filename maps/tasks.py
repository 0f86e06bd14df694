"""Thin Celery tasks for the map."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import accident_grid

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 10}


@shared_task(**_RETRY)
def accident_grid_rebuild_task(years: list[int] | None = None) -> int | None:
    """After accidents were written (queued through the jobs outbox; police entries name the years they touch),
    and nightly as a whole (CELERY_BEAT_SCHEDULE).

    The database clock at the start: the writes that queued this committed before it, so a rebuild that began
    later (while this one waited for the lock) saw them, and this one is skipped."""
    return accident_grid.accident_grid_rebuild(requested_at=accident_grid.database_now(), years=years)
