"""Thin Celery tasks of the outbox."""

from __future__ import annotations

from celery import shared_task

from . import outbox


@shared_task
def outbox_relay() -> dict[str, int]:
    """Periodic (CELERY_BEAT_SCHEDULE) besides the relay loop in every worker: hands pending messages over."""
    return {"sent": outbox.relay(), "purged": outbox.purge_sent()}
