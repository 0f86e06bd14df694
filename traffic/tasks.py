"""Thin Celery tasks for traffic: take a primary key (or nothing), call a service."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from . import blackspots, workzones

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 10}


@shared_task(**_RETRY)
def blackspots_recompute() -> dict[str, Any]:
    """Nightly (CELERY_BEAT_SCHEDULE): every black spot, then conflict C8 for all roadworks."""
    return blackspots.blackspots_compute()


@shared_task(**_RETRY)
def accident_flag_work_zone(accident_id: str) -> str | None:
    """After an accident is logged or moved: is it a work-zone crash? Notifies on a new match."""
    roadwork_id = workzones.accident_flag_work_zone(accident_id=accident_id)
    return str(roadwork_id) if roadwork_id else None
