"""Reads on roadworks and conflicts, scoped to what a user may see."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User

from . import workflow
from .models import PUBLIC_STATUSES, Conflict, Roadwork, RoadworkStatus, RoadworkTransition


def public_roadworks_q() -> Q:
    """Approved and running works, and completed ones for a few days after their end."""
    recent = timezone.now() - timedelta(days=settings.AUMAN_PUBLIC_COMPLETED_DAYS)
    return Q(status__in=[s for s in PUBLIC_STATUSES if s != RoadworkStatus.COMPLETED]) | Q(
        status=RoadworkStatus.COMPLETED, period__endswith__gte=recent
    )


def roadworks_visible_to(user: User | None) -> QuerySet[Roadwork]:
    qs = Roadwork.objects.select_related("organisation")
    if user is not None and user.is_authenticated:
        if user.is_staff_viewer:
            return qs
        if user.is_applicant:
            return qs.filter(public_roadworks_q() | Q(organisation_id=user.organisation_id))
    return qs.filter(public_roadworks_q())


def conflicts_visible_to(user: User | None) -> QuerySet[Conflict]:
    qs = Conflict.objects.select_related("roadwork_a", "roadwork_b")
    if user is None or not user.is_authenticated:
        return qs.none()
    if user.is_staff_viewer:
        return qs
    if user.is_applicant:
        org = user.organisation_id
        return qs.filter(Q(roadwork_a__organisation_id=org) | Q(roadwork_b__organisation_id=org))
    return qs.none()


def roadworks_overdue(*, today: date | None = None) -> QuerySet[Roadwork]:
    """Works awaiting the authority's decision whose decision day has passed (local time)."""
    today = today or timezone.localdate()
    return Roadwork.objects.filter(workflow.overdue_q(today))


def roadworks_due_to_start(*, now: datetime) -> QuerySet[Roadwork]:
    """Approved works whose period has begun: the status advance starts them."""
    return Roadwork.objects.filter(status=RoadworkStatus.APPROVED, period__startswith__lte=now).order_by("pk")


def roadworks_due_to_complete(*, now: datetime) -> QuerySet[Roadwork]:
    """Running works whose period has ended: the status advance completes them."""
    return Roadwork.objects.filter(status=RoadworkStatus.IN_PROGRESS, period__endswith__lte=now).order_by("pk")


def roadwork_history(roadwork: Roadwork) -> QuerySet[RoadworkTransition]:
    return roadwork.transitions.select_related("by", "by__organisation").order_by("at", "id")
