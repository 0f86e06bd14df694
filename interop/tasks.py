"""Thin Celery tasks of the external sources."""

from celery import shared_task
from django.db import OperationalError

from . import selectors, services

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task
def sources_poll_due() -> list[int]:
    """Celery beat runs this every minute: each due source is polled in a task of its own, so a slow source does not
    hold up the others and several workers share the work (the source's lock keeps them off each other's source)."""
    due = selectors.sources_due()
    for source_id in due:
        source_poll.delay(source_id)
    return due


@shared_task
def source_poll(source_id: int, force: bool = False) -> str:
    return services.source_poll(source_id=source_id, force=force).status


@shared_task(**_RETRY)
def conflicts_detect_external(source_id: int | None) -> dict[str, int]:
    return services.conflicts_detect_for_source(source_id=source_id)
