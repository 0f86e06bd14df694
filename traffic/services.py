"""Writes on incidents. Keyword-only `<entity>_<action>` functions.

Status changes go through incident_transition only, which follows traffic.workflow and records each step in
IncidentTransition; incident_update refuses a status. An accident incident's classification lives in its own
Accident row (source police), written here in the same transaction as the incident, so the two cannot drift.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from auman.errors import ConcurrentEditError
from maps.accident_grid import accident_grid_update_on_commit, grid_point

from . import permissions, workflow, workzones
from .accidents import accident_errors, accident_field_values
from .models import Accident, AccidentSource, Incident, IncidentKind, IncidentStatus, IncidentTransition, TimePrecision

MSG_NOT_ALLOWED_LOG = _("Only the police, the traffic control room and the permit authority may log incidents.")
MSG_NOT_ALLOWED_EDIT = _("You may not change incidents.")
MSG_STATUS_BY_TRANSITION = _(
    "The status changes only through a status change (POST to the incident's transition/ endpoint), "
    "which records who made it and when."
)
MSG_TRANSITION_NOT_ALLOWED = _(
    "An incident that is '{current}' cannot become '{target}'. Possible next steps: {allowed}."
)
MSG_TRANSITION_NONE_POSSIBLE = _("none")
MSG_UNKNOWN_STATUS = _("Unknown status.")
MSG_TRANSITION_ROLE = _("Your role may not take this step ('{current}' to '{target}').")
MSG_COMMENT_REQUIRED = _("Say why: this step needs a comment.")
MSG_TRANSITION_BEFORE_OCCURRED = _("A status change cannot lie before the incident occurred.")
MSG_TRANSITION_BEFORE_PREVIOUS = _("A status change cannot lie before the previous one ({previous}).")
MSG_TRANSITION_IN_FUTURE = _("A status change cannot lie in the future.")
MSG_ACCIDENT_DATA_NOT_ACCIDENT = _("Accident data belongs to incidents of the kind 'accident' only.")
MSG_KIND_HAS_ACCIDENT_DATA = _(
    "This incident carries accident data. To make it another kind, send 'accident': null with the new kind."
)

# Fields a plain write may set. status, confirmed_at and cleared_at belong to incident_transition.
EDITABLE_FIELDS = (
    "kind",
    "description",
    "street_name",
    "location",
    "affected_line",
    "lanes_blocked",
    "direction",
    "occurred_at",
    "reported_at",
    "expected_clearance_at",
    "accident",
)
WORKFLOW_FIELDS = ("status", "confirmed_at", "cleared_at")
# Phones and servers disagree by a little; a step "now" from a phone must not be refused as future.
CLOCK_SKEW = timedelta(minutes=2)


class TransitionNotAllowed(Exception):
    """The lifecycle has no step from the incident's status to the one asked for (the API answers 409)."""

    def __init__(self, *, current: str, target: str) -> None:
        self.current = current
        self.target = target
        self.allowed = [t.target.value for t in workflow.transitions_from(current)]
        allowed = ", ".join(str(IncidentStatus(s).label) for s in self.allowed) or str(MSG_TRANSITION_NONE_POSSIBLE)
        super().__init__(
            str(MSG_TRANSITION_NOT_ALLOWED).format(
                current=IncidentStatus(current).label, target=IncidentStatus(target).label, allowed=allowed
            )
        )


def _check_fields(data: dict[str, Any], *, action: str) -> None:
    workflow_fields = sorted(set(data) & set(WORKFLOW_FIELDS))
    if workflow_fields:
        raise ValidationError({name: [MSG_STATUS_BY_TRANSITION] for name in workflow_fields})
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        # A programming error, not user input: the API never passes fields it does not know.
        raise ValueError(f"{action} got unknown fields {sorted(unknown)}")


def _check_accident_data(kind: str, accident: dict[str, Any] | None) -> None:
    if accident is None:
        return
    if kind != IncidentKind.ACCIDENT:
        raise ValidationError({"accident": [MSG_ACCIDENT_DATA_NOT_ACCIDENT]})
    errors = accident_errors(accident)
    if errors:
        raise ValidationError({"accident": [message for messages in errors.values() for message in messages]})


def _save_accident(incident: Incident, data: dict[str, Any] | None, existing: Accident | None) -> None:
    """Writes the incident's Accident row from the accident block, or keeps its place and time in step."""
    # The accident grid's squares it lay in before the change (its place, year or category may change).
    before = [grid_point(existing.location, existing.occurred_at, existing.category)] if existing is not None else []
    if data is not None:
        accident = existing or Accident(incident=incident, source=AccidentSource.POLICE)
        for name, value in accident_field_values(data).items():
            setattr(accident, name, value)
    elif existing is not None:
        accident = existing
    else:
        return
    moved = (
        accident._state.adding
        or accident.occurred_at != incident.occurred_at
        or not accident.location.equals_exact(incident.location, 0.001)
    )
    # The accident happened where and when the incident did; the police know the exact time.
    accident.location = incident.location
    accident.occurred_at = incident.occurred_at
    accident.time_precision = TimePrecision.EXACT
    accident.full_clean()
    accident.save()
    # The accident tiles of low zooms read a pre-aggregated grid: its squares are written again after the commit.
    accident_grid_update_on_commit([*before, grid_point(accident.location, accident.occurred_at, accident.category)])
    if moved:
        # New, or at another place or time: is it a work-zone crash now? (a Celery task, after the commit)
        workzones.accident_flag_work_zone_on_commit(accident_id=accident.pk)


def _record_transition(
    incident: Incident, *, user: User | None, from_status: str, at: datetime, comment: str = ""
) -> IncidentTransition:
    return IncidentTransition.objects.create(
        incident=incident, from_status=from_status, to_status=incident.status, at=at, by=user, comment=comment
    )


@transaction.atomic
def incident_create(*, user: User, data: dict[str, Any]) -> Incident:
    """Logs an incident as reported, with its first history row, and its Accident row when classified."""
    if not permissions.can_log_incident(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_LOG)
    _check_fields(data, action="incident_create")
    data = dict(data)
    accident = data.pop("accident", None)
    _check_accident_data(data.get("kind", ""), accident)
    now = timezone.now()
    data.setdefault("occurred_at", min(now, data.get("reported_at") or now))
    data.setdefault("reported_at", now)
    incident = Incident(reported_by=user, organisation=user.organisation, status=workflow.INITIAL_STATUS, **data)
    incident.full_clean()
    incident.save()
    _record_transition(incident, user=user, from_status="", at=incident.reported_at)
    _save_accident(incident, accident, None)
    incident.refresh_from_db(fields=["period"])
    return incident


@transaction.atomic
def incident_update(*, user: User, incident_id: uuid.UUID, data: dict[str, Any], expected_version: int) -> Incident:
    """Changes an incident's description, place, times or accident data; never its status.

    'accident': a dict replaces the classification as a whole; None removes it (with a change of kind);
    leaving it out keeps it, moved along with the incident's place and time.
    """
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    if not permissions.can_edit_incident(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_EDIT)
    if incident.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=incident.version)
    _check_fields(data, action="incident_update")
    data = dict(data)
    existing = Accident.objects.filter(incident=incident).first()
    accident_given = "accident" in data
    accident = data.pop("accident", None)
    kind = data.get("kind", incident.kind)
    _check_accident_data(kind, accident)
    if kind != IncidentKind.ACCIDENT and existing is not None and not accident_given:
        raise ValidationError({"kind": [MSG_KIND_HAS_ACCIDENT_DATA]})
    for name, value in data.items():
        setattr(incident, name, value)
    incident.version += 1
    incident.full_clean()
    incident.save()
    if accident_given and accident is None:
        if existing is not None:
            existing.delete()
            accident_grid_update_on_commit([grid_point(existing.location, existing.occurred_at, existing.category)])
    else:
        _save_accident(incident, accident, existing)
    incident.refresh_from_db(fields=["period"])
    return incident


def _stamp(incident: Incident, transition: workflow.Transition, at: datetime) -> None:
    """Each step carries its time. cleared_at also ends a cancelled incident's period, so it leaves the map."""
    target = transition.target
    if target == IncidentStatus.CONFIRMED:
        # A reopened incident keeps the time it was first confirmed; the history holds the rest.
        incident.confirmed_at = incident.confirmed_at or at
        incident.cleared_at = None
    elif target in (IncidentStatus.CLEARED, IncidentStatus.CANCELLED):
        incident.cleared_at = at
    elif target == IncidentStatus.REPORTED:
        incident.confirmed_at = None
        incident.cleared_at = None


def _transition_time(incident: Incident, at: datetime | None) -> datetime:
    """The time of a step: as given (checked), or now, but never before what the record already holds."""
    previous = incident.transitions.order_by("-at", "-id").values_list("at", flat=True).first()
    if at is None:
        # Clocks differ, and occurred_at may have been given a minute ahead: "now" must still be accepted.
        return max(t for t in (timezone.now(), incident.occurred_at, previous) if t is not None)
    if at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({"at": [MSG_TRANSITION_IN_FUTURE]})
    if at < incident.occurred_at:
        raise ValidationError({"at": [MSG_TRANSITION_BEFORE_OCCURRED]})
    if previous is not None and at < previous:
        local = timezone.localtime(previous).strftime("%Y-%m-%d %H:%M")
        raise ValidationError({"at": [str(MSG_TRANSITION_BEFORE_PREVIOUS).format(previous=local)]})
    return at


@transaction.atomic
def incident_transition(
    *,
    user: User,
    incident_id: uuid.UUID,
    to_status: str,
    comment: str,
    expected_version: int,
    at: datetime | None = None,
) -> Incident:
    """Takes one step of the incident lifecycle (traffic.workflow): status, its time, and a history row.

    Raises PermissionDenied (403), ConcurrentEditError (412), TransitionNotAllowed (409) or ValidationError (400).
    """
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    if not permissions.can_log_incident(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_EDIT)
    if incident.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=incident.version)
    if to_status not in IncidentStatus.values:
        raise ValidationError({"to": [MSG_UNKNOWN_STATUS]})
    step = workflow.transition_between(incident.status, to_status)
    if step is None:
        raise TransitionNotAllowed(current=incident.status, target=to_status)
    if not permissions.can_take_transition(user, step):
        raise PermissionDenied(
            str(MSG_TRANSITION_ROLE).format(
                current=IncidentStatus(incident.status).label, target=IncidentStatus(to_status).label
            )
        )
    comment = (comment or "").strip()
    if step.comment_required and not comment:
        raise ValidationError({"comment": [MSG_COMMENT_REQUIRED]})
    at = _transition_time(incident, at)
    from_status = incident.status
    incident.status = step.target
    _stamp(incident, step, at)
    incident.version += 1
    incident.full_clean()
    incident.save()
    _record_transition(incident, user=user, from_status=from_status, at=at, comment=comment)
    if IncidentStatus.CANCELLED in (from_status, incident.status):
        # A false report's accident leaves the statistics, and the accident grid, and comes back on a reopen.
        points = [grid_point(a.location, a.occurred_at, a.category) for a in Accident.objects.filter(incident=incident)]
        if points:
            accident_grid_update_on_commit(points)
    incident.refresh_from_db(fields=["period"])
    return incident
