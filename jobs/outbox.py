"""Enqueue follow-up work through the outbox, and relay pending rows to the broker.

enqueue() replaces `transaction.on_commit(lambda: task.delay(...))`: that lost the task whenever the broker was
down at the moment of the commit. Here the row commits with the change; the on-commit hook tries to hand it over at
once, and whatever the broker did not take stays pending until relay() succeeds (every worker runs it in a loop,
beat runs it too). Delivery is at least once: a process that dies between handing over and marking the row sends
it again, which AUMAn's tasks tolerate (they are idempotent upserts).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from .models import OutboxMessage

logger = logging.getLogger(__name__)

# Errors that mean "the broker is not there": stop the run and leave the rest pending.
_BROKER_DOWN = (BrokerError, OSError, ConnectionError, TimeoutError)


def enqueue(task: Task, *args: Any) -> OutboxMessage:
    """Queue task(*args) as part of the current transaction; it is handed to Celery once the transaction commits.

    The arguments must be JSON values (primary keys as strings)."""
    message = OutboxMessage.objects.create(task=task.name, args=list(args))
    # robust: a failing hand-over must not turn a committed write into an error; the row stays pending.
    transaction.on_commit(lambda: relay(ids=[message.pk]), robust=True)
    return message


def _send(message: OutboxMessage) -> None:
    task = current_app.tasks[message.task]
    # delay() so that tests which replace a task's delay() still see the call; publishing does not retry
    # (CELERY_TASK_PUBLISH_RETRY = False): the outbox is the retry, and a web request must not wait for a broker.
    task.delay(*message.args)


def relay(*, ids: list[int] | None = None, limit: int = 500) -> int:
    """Hand pending messages to the broker, oldest first; returns how many were handed over.

    Runs concurrently in many processes: each row is taken by one of them (FOR UPDATE SKIP LOCKED)."""
    sent: list[int] = []
    with transaction.atomic():
        pending = OutboxMessage.objects.filter(sent_at__isnull=True)
        if ids is not None:
            pending = pending.filter(pk__in=ids)
        messages = list(pending.select_for_update(skip_locked=True).order_by("pk")[:limit])
        for message in messages:
            try:
                _send(message)
            except _BROKER_DOWN as exc:
                _failed(message, exc)
                logger.warning(
                    "outbox: broker unreachable, %d messages stay pending: %s", len(messages) - len(sent), exc
                )
                break
            except Exception as exc:  # one bad row (unknown task, bad arguments) must not block the rest
                _failed(message, exc)
                logger.exception("outbox: message %s could not be sent", message.pk)
                continue
            sent.append(message.pk)
        if sent:
            OutboxMessage.objects.filter(pk__in=sent).update(sent_at=Now(), attempts=F("attempts") + 1)
    return len(sent)


def _failed(message: OutboxMessage, exc: BaseException) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
    )


def purge_sent(*, older_than: timedelta | None = None) -> int:
    """Delete messages the broker took long ago (they are kept a while to answer "was it sent?")."""
    keep = older_than if older_than is not None else timedelta(days=settings.AUMAN_OUTBOX_KEEP_DAYS)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=timezone.now() - keep).delete()
    return deleted


def pending_count() -> int:
    return OutboxMessage.objects.filter(sent_at__isnull=True).count()
