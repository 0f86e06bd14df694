"""Reads of the external sources and their items."""

from __future__ import annotations

from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User

from . import permissions
from .models import ExternalItem, ExternalSource


def sources_due() -> list[int]:
    """Enabled sources whose poll interval has passed since their last attempt (or never polled)."""
    now = timezone.now()
    never = ExternalSource.objects.filter(enabled=True, last_attempt_at__isnull=True)
    passed = ExternalSource.objects.filter(enabled=True, last_attempt_at__lte=now - F("poll_interval"))
    return sorted({*never.values_list("pk", flat=True), *passed.values_list("pk", flat=True)})


def sources_with_health() -> QuerySet[ExternalSource]:
    return ExternalSource.objects.order_by("name")


def external_items_visible_to(user: User) -> QuerySet[ExternalItem]:
    """Items of enabled sources; for anyone but staff only those of public sources."""
    items = ExternalItem.objects.filter(source__enabled=True).select_related("source")
    if not permissions.can_see_all_external_items(user):
        items = items.filter(source__public=True)
    return items.order_by("source__name", "source_item_id")


def items_for_city_feeds() -> QuerySet[ExternalItem]:
    """External items the city republishes in its own feeds: those of enabled sources marked include_in_city_feeds.
    The feed modules decide what of them they write (a roadworks feed takes kind 'roadworks' and 'closure')."""
    return (
        ExternalItem.objects.filter(source__enabled=True, source__include_in_city_feeds=True)
        .select_related("source")
        .order_by("source__name", "source_item_id")
    )
