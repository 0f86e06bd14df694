"""Thin Celery tasks: take a primary key, call a service."""

from celery import shared_task
from django.db import OperationalError

from . import services

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 10}


@shared_task(**_RETRY)
def conflicts_detect_for_roadwork(roadwork_id: str) -> dict[str, dict[str, int]]:
    return services.conflicts_detect_all_for(roadwork_id=roadwork_id)


@shared_task(**_RETRY)
def conflicts_sweep() -> dict[str, dict[str, int]]:
    return services.conflicts_sweep_all()


@shared_task(**_RETRY)
def roadworks_advance_statuses() -> dict[str, int]:
    return services.roadworks_advance_statuses()
