"""The history of roadworks, decisions, conflicts and incidents: who changed what, when. Written by triggers.

django-pghistory installs a trigger per tracked table that copies each inserted, changed or deleted row into its
event table, so every write path is caught: services, the admin, management commands, and the raw SQL upserts of
conflict detection (roadworks/conflict_sql.py) that no model signal would see. The event tables are append-only:
a trigger refuses UPDATE and DELETE on them (pghistory's append_only), whoever asks.

Who: the request's user (HistoryMiddleware, which also catches users DRF authenticates by token inside the view),
or the Celery task's name for background changes (task_prerun/task_postrun below). Both land in the context
(pghistory_context.metadata) every event of that request or task points to.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pghistory
import pgtrigger
from celery.signals import task_postrun, task_prerun
from django.apps import apps
from django.db import models
from django.utils.translation import gettext_lazy as _
from pghistory.middleware import HistoryMiddleware as _PghistoryMiddleware

ACTIONS = {"insert": _("created"), "update": _("changed"), "delete": _("deleted")}
MSG_GEOMETRY_CHANGED = _("(geometry changed)")


def tracked(*, exclude: list[str] | None = None):
    """The one way a model is put under history: every insert, change and delete, append-only."""
    return pghistory.track(
        pghistory.InsertEvent(),
        # The whole row at once, not pghistory's column-by-column default: `geometry = geometry` cannot be resolved
        # while pg_restore recreates the trigger (empty search_path), which broke restoring a backup. A row
        # comparison finds its operators when it runs, not when it is parsed.
        pghistory.UpdateEvent(condition=pgtrigger.Condition("OLD.* IS DISTINCT FROM NEW.*")),
        pghistory.DeleteEvent(),
        exclude=exclude,
        append_only=True,
    )


class HistoryMiddleware(_PghistoryMiddleware):
    """pghistory's middleware, for writes only: a read needs no context (and records nothing)."""

    def __call__(self, request):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return self.get_response(request)
        return super().__call__(request)


# --- Celery: background changes name their task ---------------------------------------------------------------

_task_contexts: dict[str, contextlib.AbstractContextManager] = {}


@task_prerun.connect
def _enter_task_context(task_id: str | None = None, task=None, **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    context = pghistory.context(task=task.name)
    context.__enter__()
    _task_contexts[task_id] = context


@task_postrun.connect
def _leave_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    context = _task_contexts.pop(task_id or "", None)
    if context is not None:
        context.__exit__(None, None, None)


# --- Reading it ---------------------------------------------------------------------------------------------------


@dataclass
class Change:
    field: str
    label: str
    old: Any
    new: Any


@dataclass
class Entry:
    """One event: what happened to which object, when, by whom, and which fields changed how."""

    at: datetime
    action: str
    label: str
    object_type: str
    object_model: str
    object_id: str
    user_id: int | None
    user: str
    task: str
    changes: list[Change] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "object": self.object_model,
            "object_id": self.object_id,
            "user": self.user or None,
            "task": self.task or None,
            "changes": [{"field": c.field, "old": _jsonable(c.old), "new": _jsonable(c.new)} for c in self.changes],
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# Bookkeeping fields every write touches: listing them would bury the real changes.
_SKIPPED = {"updated_at", "version", "pgh_id", "pgh_created_at", "pgh_label", "pgh_obj", "pgh_context"}
# Which object an event belongs to, not what changed (and a conflict's other side may be a work the reader cannot see).
_IDENTITY = {"id", "roadwork", "roadwork_a", "roadwork_b", "incident"}


def _event_model(model: type[models.Model]) -> type[models.Model]:
    return apps.get_model(model._meta.app_label, f"{model.__name__}Event")


def _describe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_describe(item) for item in value]
    if hasattr(value, "lower") and hasattr(value, "upper"):  # ranges: the period
        return {"lower": _jsonable(value.lower), "upper": _jsonable(value.upper)}
    return _jsonable(value)


def _entries(model: type[models.Model], filters: models.Q) -> list[Entry]:
    event_model = _event_model(model)
    fields = [
        f
        for f in event_model._meta.concrete_fields
        if f.name not in _SKIPPED and f.name not in _IDENTITY and not f.name.startswith("pgh_")
    ]
    events = list(event_model.objects.filter(filters).select_related("pgh_context").order_by("pgh_obj_id", "pgh_id"))
    entries: list[Entry] = []
    previous: dict[Any, models.Model] = {}
    for event in events:
        before = previous.get(event.pgh_obj_id)
        changes = []
        for f in fields:
            new = getattr(event, f.attname)
            old = getattr(before, f.attname) if before is not None else None
            if before is None and (new is None or new is False or new == "" or new == []):
                continue  # a new object: only what it was given
            if event.pgh_label == "delete" or (before is not None and old == new):
                continue
            if before is None and event.pgh_label == "update":
                old = None
            geometry = hasattr(f, "geom_type")
            changes.append(
                Change(
                    field=f.name,
                    label=str(f.verbose_name),
                    old=None if geometry else _describe(old),
                    new=str(MSG_GEOMETRY_CHANGED) if geometry else _describe(new),
                )
            )
        previous[event.pgh_obj_id] = event
        metadata = event.pgh_context.metadata if event.pgh_context_id else {}
        entries.append(
            Entry(
                at=event.pgh_created_at,
                action=event.pgh_label,
                label=str(ACTIONS.get(event.pgh_label, event.pgh_label)),
                object_type=str(model._meta.verbose_name),
                object_model=model._meta.model_name,
                object_id=str(event.pgh_obj_id),
                user_id=metadata.get("user"),
                user="",
                task=metadata.get("task") or "",
                changes=changes,
            )
        )
    return entries


def _name_users(entries: list[Entry]) -> None:
    from accounts.models import User

    ids = {e.user_id for e in entries if e.user_id is not None}
    names = {u.pk: u.get_full_name() or u.get_username() for u in User.objects.filter(pk__in=ids)}
    for entry in entries:
        if entry.user_id is not None:
            entry.user = names.get(entry.user_id, f"#{entry.user_id}")


def history_of_roadwork(roadwork_id: Any, *, user: Any) -> list[Entry]:
    """The roadwork's own changes, its workflow steps, its detours and attachments, and the changes of those of its
    conflicts the user may see, oldest first. Whether the user may see the roadwork's history at all is the caller's
    check."""
    from roadworks.models import Attachment, Conflict, Detour, Roadwork, RoadworkTransition
    from roadworks.selectors import conflicts_visible_to

    sides = models.Q(roadwork_a_id=roadwork_id) | models.Q(roadwork_b_id=roadwork_id)
    visible = conflicts_visible_to(user).filter(sides).values("pk")
    entries = (
        _entries(Roadwork, models.Q(pgh_obj_id=roadwork_id))
        + _entries(RoadworkTransition, models.Q(roadwork_id=roadwork_id))
        + _entries(Detour, models.Q(roadwork_id=roadwork_id))
        + _entries(Attachment, models.Q(roadwork_id=roadwork_id))
        + _entries(Conflict, sides & models.Q(pgh_obj_id__in=visible))
    )
    entries.sort(key=lambda e: e.at)
    _name_users(entries)
    return entries


def history_of_incident(incident_id: Any) -> list[Entry]:
    """The incident's changes, its status steps and its accident record's changes, oldest first."""
    from traffic.models import Accident, Incident, IncidentTransition

    entries = (
        _entries(Incident, models.Q(pgh_obj_id=incident_id))
        + _entries(IncidentTransition, models.Q(incident_id=incident_id))
        + _entries(Accident, models.Q(incident_id=incident_id))
    )
    entries.sort(key=lambda e: e.at)
    _name_users(entries)
    return entries
