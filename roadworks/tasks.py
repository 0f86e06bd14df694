"""Thin Celery tasks: take a primary key, call a service."""

from smtplib import SMTPException

from celery import shared_task
from celery.signals import worker_ready
from django.db import OperationalError

from . import notifications, services

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 10}
# Mail servers go away too (OSError: connection refused, timeouts); nothing was stamped, so a retry sends once.
_MAIL_RETRY = {"autoretry_for": (OperationalError, SMTPException, OSError), "retry_backoff": True, "max_retries": 10}


@shared_task(**_RETRY)
def conflicts_detect_for_roadwork(roadwork_id: str) -> dict[str, dict[str, int]]:
    return services.conflicts_detect_all_for(roadwork_id=roadwork_id)


@shared_task(**_RETRY)
def conflicts_sweep() -> dict[str, dict[str, int]]:
    return services.conflicts_sweep_all()


@shared_task(**_RETRY)
def conflicts_sweep_rule(code: str) -> dict[str, int]:
    return services.conflicts_sweep_rule(code=code)


@shared_task(**_RETRY)
def conflicts_sweep_changed_rules() -> dict[str, dict[str, int]]:
    return services.conflicts_sweep_changed_rules()


@shared_task(**_MAIL_RETRY)
def conflicts_notify() -> int:
    return notifications.conflicts_notify()


@shared_task(**_MAIL_RETRY)
def decision_notify(transition_id: int) -> int:
    return notifications.decision_notify(transition_id=transition_id)


@shared_task(**_RETRY)
def roadworks_advance_statuses() -> dict[str, int]:
    return services.roadworks_advance_statuses()


@worker_ready.connect
def sweep_rules_with_changed_parameters(sender=None, **kwargs) -> None:
    """A worker starts with the settings it was given: rules whose parameters changed since their last full run are
    re-run over all roadworks now, not at the next periodic sweep."""
    conflicts_sweep_changed_rules.delay()
