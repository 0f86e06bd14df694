"""Reads on incidents, scoped to what a user may see."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from accounts.models import User

from .models import ACTIVE_INCIDENT_STATUSES, Accident, Incident, IncidentStatus


def incidents_visible_to(user: User | None) -> QuerySet[Incident]:
    qs = Incident.objects.all()
    if user is not None and user.is_authenticated and user.is_staff_viewer:
        return qs
    # Everyone else sees what is on the road now; cleared incidents leave at once.
    return qs.filter(status__in=ACTIVE_INCIDENT_STATUSES)


def incidents_for_police_list(user: User) -> QuerySet[Incident]:
    """Active incidents for the staff list, newest report first, with what the list shows in one query."""
    return (
        incidents_visible_to(user)
        .filter(status__in=ACTIVE_INCIDENT_STATUSES)
        .select_related("accident")
        .order_by("-reported_at", "-created_at")
    )


def incidents_recently_closed(user: User, *, since: datetime) -> QuerySet[Incident]:
    """Cleared or cancelled incidents whose period ended after `since`: the ones a mistaken tap may need back."""
    return (
        incidents_visible_to(user)
        .exclude(status__in=ACTIVE_INCIDENT_STATUSES)
        .filter(cleared_at__gte=since)
        .select_related("accident")
        .order_by("-cleared_at")
    )


def accidents_for_statistics() -> QuerySet[Accident]:
    """Accidents that count: imported ones and police ones, but not those of incidents cancelled as false reports.

    A cancelled report keeps its Accident row (so a reopen restores it and the history stays whole); black
    spots and other statistics must read accidents through here so the false report never counts.
    """
    return Accident.objects.exclude(incident__status=IncidentStatus.CANCELLED)
