"""Helpers for the coordination-rule tests: parameter overrides, rule runs, and what they found."""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from django.db.models import Q

from roadworks import rules
from roadworks.models import Conflict, ConflictStatus


def rule_parameters(**changes: dict[str, Any]) -> dict[str, Any]:
    """settings.AUMAN_CONFLICT_RULES with some parameters changed: rule_parameters(C1={"buffer_m": 50})."""
    configured = copy.deepcopy(settings.AUMAN_CONFLICT_RULES)
    for code, parameters in changes.items():
        configured[code] = {**configured.get(code, {}), **parameters}
    return configured


def detect(code: str, roadwork) -> dict[str, int]:
    return rules.get(code).for_roadwork(roadwork.pk)


def sweep(code: str) -> dict[str, int]:
    return rules.get(code).sweep()


def pairs(code: str, *, status: str | None = ConflictStatus.OPEN) -> set[frozenset[str]]:
    """The pairs of roadwork references a pair rule holds (open ones by default)."""
    qs = Conflict.objects.filter(rule=code, roadwork_b__isnull=False)
    if status is not None:
        qs = qs.filter(status=status)
    return {frozenset(refs) for refs in qs.values_list("roadwork_a__reference", "roadwork_b__reference")}


def hits(code: str, *, status: str | None = ConflictStatus.OPEN) -> set[tuple[str, str, str]]:
    """(roadwork reference, layer, item id) of a layer rule's conflicts (open ones by default)."""
    qs = Conflict.objects.filter(rule=code, roadwork_b__isnull=True)
    if status is not None:
        qs = qs.filter(status=status)
    return set(qs.values_list("roadwork_a__reference", "layer", "layer_object_id"))


def conflicts_of(code: str, roadwork) -> list[Conflict]:
    return list(Conflict.objects.filter(Q(roadwork_a=roadwork) | Q(roadwork_b=roadwork), rule=code))


def wait_for_idle_worker(timeout: float = 20.0) -> None:
    """Wait until the test worker has nothing queued or running: follow-up tasks (detection after a step, the mails
    after a new conflict) must not run into the next test's database flush."""
    import time

    from auman.celery import app

    deadline = time.monotonic() + timeout
    idle_checks = 0
    while time.monotonic() < deadline:
        with app.connection_for_read() as connection:
            queued = connection.default_channel.client.llen(app.conf.task_default_queue)
        inspector = app.control.inspect(timeout=0.5)
        busy = [*(inspector.active() or {}).values(), *(inspector.reserved() or {}).values()]
        idle_checks = idle_checks + 1 if queued == 0 and not any(busy) else 0
        if idle_checks >= 2:
            return
        time.sleep(0.1)
    raise AssertionError(f"the Celery worker was still busy after {timeout} s")
