"""Reads on incidents, scoped to what a user may see."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User

from .models import ACTIVE_INCIDENT_STATUSES, Incident


def incidents_visible_to(user: User | None) -> QuerySet[Incident]:
    qs = Incident.objects.all()
    if user is not None and user.is_authenticated and user.is_staff_viewer:
        return qs
    # Everyone else sees what is on the road now; cleared incidents leave at once.
    return qs.filter(status__in=ACTIVE_INCIDENT_STATUSES)
