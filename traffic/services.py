"""Writes on incidents. Keyword-only `<entity>_<action>` functions."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from auman.errors import ConcurrentEditError

from . import permissions
from .models import Incident, IncidentStatus

MSG_NOT_ALLOWED_LOG = _("Only the police, the traffic control room and the permit authority may log incidents.")
MSG_NOT_ALLOWED_EDIT = _("You may not change incidents.")

EDITABLE_FIELDS = (
    "kind",
    "description",
    "street_name",
    "location",
    "affected_line",
    "lanes_blocked",
    "direction",
    "status",
    "occurred_at",
    "reported_at",
    "confirmed_at",
    "cleared_at",
    "expected_clearance_at",
)


def _stamp_status_times(incident: Incident) -> None:
    """Each step of the lifecycle carries its time; fill it in when the caller did not."""
    now = timezone.now()
    if incident.status == IncidentStatus.CONFIRMED and incident.confirmed_at is None:
        incident.confirmed_at = now
    if incident.status in (IncidentStatus.CLEARED, IncidentStatus.CANCELLED) and incident.cleared_at is None:
        incident.cleared_at = max(now, incident.occurred_at)
    if incident.status in (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED):
        incident.cleared_at = None


@transaction.atomic
def incident_create(*, user: User, data: dict[str, Any]) -> Incident:
    if not permissions.can_log_incident(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_LOG)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"incident_create got unknown fields {sorted(unknown)}")
    now = timezone.now()
    data = {"occurred_at": now, "reported_at": now, **data}
    incident = Incident(reported_by=user, organisation=user.organisation, **data)
    _stamp_status_times(incident)
    incident.full_clean()
    incident.save()
    incident.refresh_from_db(fields=["period"])
    return incident


@transaction.atomic
def incident_update(*, user: User, incident_id: uuid.UUID, data: dict[str, Any], expected_version: int) -> Incident:
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    if not permissions.can_edit_incident(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_EDIT)
    if incident.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=incident.version)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"incident_update got unknown fields {sorted(unknown)}")
    for name, value in data.items():
        setattr(incident, name, value)
    _stamp_status_times(incident)
    incident.version += 1
    incident.full_clean()
    incident.save()
    incident.refresh_from_db(fields=["period"])
    return incident
