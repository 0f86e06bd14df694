"""Small helpers the workflow tests share (personas and builders come from tests/conftest.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from roadworks.models import Roadwork


def from_now(*, days: float = 10, length: float = 5) -> DateTimeTZRange:
    """A period starting `days` from now (negative: started already) and lasting `length` days."""
    start = timezone.now() + timedelta(days=days)
    return DateTimeTZRange(start, start + timedelta(days=length), "[)")


def period_json(value: DateTimeTZRange) -> dict[str, str]:
    return {"lower": value.lower.isoformat(), "upper": value.upper.isoformat()}


def current_version(work: Roadwork) -> int:
    return Roadwork.objects.values_list("version", flat=True).get(pk=work.pk)


def transition(client, work: Roadwork, to: str, *, version: int | None = None, **body: Any):
    payload = {"to": to, "version": current_version(work) if version is None else version, **body}
    return client.post(f"/api/v1/roadworks/{work.pk}/transition/", payload, format="json")


def report(client, work: Roadwork, *, version: int | None = None, **body: Any):
    payload = {"version": current_version(work) if version is None else version, **body}
    return client.post(f"/api/v1/roadworks/{work.pk}/report/", payload, format="json")
