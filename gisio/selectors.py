"""Reads for the GIS pages."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User

from .models import ImportJob


def import_jobs_recent(*, user: User, limit: int = 5) -> QuerySet[ImportJob]:
    """The user's latest background imports, so that a job page closed too early can be found again."""
    return ImportJob.objects.filter(user=user).defer("data").order_by("-created_at")[:limit]
