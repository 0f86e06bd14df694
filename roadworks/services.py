"""Writes on roadworks and conflicts. Keyword-only `<entity>_<action>` functions.

Each write runs in a transaction and enqueues its follow-up work on commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, User
from auman.errors import ConcurrentEditError

from . import permissions
from .models import CONFLICTING_STATUSES, Roadwork, RoadworkStatus

MSG_NOT_ALLOWED_CREATE = _("Only the permit authority and applicants may record roadworks.")
MSG_NOT_ALLOWED_EDIT = _("You may not change this roadwork.")
MSG_NOT_ALLOWED_STATUS = _("You may not set the status '{status}'.")
MSG_NOT_ALLOWED_ORGANISATION = _("Applicants record works for their own organisation only.")
MSG_ORGANISATION_REQUIRED = _("Choose the organisation the works are for.")

# Changing any of these can create or remove conflicts.
CONFLICT_RELEVANT_FIELDS = ("geometry", "period", "status")

# Fields a caller may set through roadwork_create / roadwork_update.
EDITABLE_FIELDS = (
    "title",
    "description",
    "street_names",
    "geometry",
    "period",
    "work_kind",
    "traffic_management",
    "direction",
    "lanes_affected",
    "excavation",
    "max_width_m",
    "max_height_m",
    "max_weight_t",
    "speed_limit_kmh",
    "contact",
    "status",
    "organisation",
    "reference",
)


def _new_reference() -> str:
    return f"BS-{timezone.now():%Y}-{uuid.uuid4().hex[:6].upper()}"


def _check_status(user: User, status: str | None) -> None:
    if status is not None and not permissions.can_set_status(user, status):
        label = RoadworkStatus(status).label if status in RoadworkStatus.values else status
        raise PermissionDenied(str(MSG_NOT_ALLOWED_STATUS).format(status=label))


def roadwork_detect_conflicts_on_commit(*, roadwork_id: uuid.UUID) -> None:
    """Queue conflict detection for a roadwork once the current transaction commits."""
    from .tasks import conflicts_detect_for_roadwork

    # robust: a broker outage must not turn a committed write into an error; the periodic sweep catches up.
    transaction.on_commit(lambda: conflicts_detect_for_roadwork.delay(str(roadwork_id)), robust=True)


@transaction.atomic
def roadwork_create(*, user: User, data: dict[str, Any]) -> Roadwork:
    if not permissions.can_create_roadwork(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_CREATE)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"roadwork_create got unknown fields {sorted(unknown)}")
    data = dict(data)
    organisation: Organisation | None = data.pop("organisation", None)
    if (
        organisation is not None
        and organisation.pk != user.organisation_id
        and not permissions.can_choose_organisation(user)
    ):
        raise PermissionDenied(MSG_NOT_ALLOWED_ORGANISATION)
    organisation = organisation or user.organisation
    if organisation is None:
        raise ValidationError({"organisation": [MSG_ORGANISATION_REQUIRED]})
    _check_status(user, data.get("status"))
    roadwork = Roadwork(organisation=organisation, created_by=user, **data)
    if not roadwork.reference:
        roadwork.reference = _new_reference()
    roadwork.full_clean()
    roadwork.save()
    roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    return roadwork


@transaction.atomic
def roadwork_update(*, user: User, roadwork_id: uuid.UUID, data: dict[str, Any], expected_version: int) -> Roadwork:
    # Lock the row so two writers are serialised, then compare versions: no silent overwrite.
    roadwork = Roadwork.objects.select_for_update().get(pk=roadwork_id)
    if not permissions.can_edit_roadwork(user, roadwork):
        raise PermissionDenied(MSG_NOT_ALLOWED_EDIT)
    if roadwork.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=roadwork.version)
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"roadwork_update got unknown fields {sorted(unknown)}")
    changes_organisation = "organisation" in data and data["organisation"].pk != roadwork.organisation_id
    if changes_organisation and not permissions.can_choose_organisation(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_ORGANISATION)
    if "status" in data and data["status"] != roadwork.status:
        _check_status(user, data["status"])
    before = {name: getattr(roadwork, name) for name in CONFLICT_RELEVANT_FIELDS}
    for name, value in data.items():
        setattr(roadwork, name, value)
    roadwork.version += 1
    roadwork.full_clean()
    roadwork.save()
    if any(before[name] != getattr(roadwork, name) for name in CONFLICT_RELEVANT_FIELDS):
        roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    return roadwork


# --- Conflict detection ---------------------------------------------------------
# One statement each, run by PostGIS on the GiST index over (geometry, period).
# "found" holds the pairs that collide now; the upsert keeps a conflict's own status
# (acknowledged, accepted) across runs and the delete drops pairs that no longer collide,
# so running detection again yields the same rows.

_C1_PAIR_SQL = """
    SELECT LEAST(x.id, y.id) AS a, GREATEST(x.id, y.id) AS b,
           x.period * y.period AS overlap,
           ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Intersection(
               ST_Buffer(x.geometry, %(buffer)s + 0.01), ST_Buffer(y.geometry, %(buffer)s + 0.01))), 3)) AS place
    FROM roadworks_roadwork x
    JOIN roadworks_roadwork y
      ON {pair_condition}
     AND y.status = ANY(%(statuses)s)
     AND y.period && x.period
     AND ST_DWithin(y.geometry, x.geometry, %(buffer)s)
    WHERE x.status = ANY(%(statuses)s) {x_condition}
"""

_UPSERT_AND_PRUNE_SQL = """
    WITH found AS ({pairs}),
    upserted AS (
        INSERT INTO roadworks_conflict
            (rule, severity, roadwork_a_id, roadwork_b_id, layer, layer_object_id, overlap_period, place,
             status, reason, detected_at, updated_at)
        SELECT 'C1', 'error', a, b, '', '', overlap, place, 'open', '', now(), now() FROM found
        ON CONFLICT (rule, roadwork_a_id, roadwork_b_id) WHERE roadwork_b_id IS NOT NULL DO UPDATE
           SET overlap_period = EXCLUDED.overlap_period, place = EXCLUDED.place, updated_at = now()
         WHERE roadworks_conflict.overlap_period IS DISTINCT FROM EXCLUDED.overlap_period
            OR NOT ST_Equals(roadworks_conflict.place, EXCLUDED.place)
        RETURNING 1
    ),
    pruned AS (
        DELETE FROM roadworks_conflict c
         WHERE c.rule = 'C1' {prune_scope}
           AND NOT EXISTS (SELECT 1 FROM found f WHERE f.a = c.roadwork_a_id AND f.b = c.roadwork_b_id)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM upserted), (SELECT count(*) FROM pruned)
"""

# Serialises full sweeps across workers; per-roadwork runs touch disjoint or upsert-safe rows.
_SWEEP_LOCK_KEY = 0x41554D41  # "AUMA"


def _run_detection(sql: str, params: dict[str, Any]) -> dict[str, int]:
    params = {"buffer": settings.AUMAN_CONFLICT_BUFFER_M, "statuses": list(CONFLICTING_STATUSES), **params}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found, changed, removed = cursor.fetchone()
    return {"found": found, "changed": changed, "removed": removed}


@transaction.atomic
def conflicts_detect_for(*, roadwork_id: uuid.UUID | str) -> dict[str, int]:
    """Recompute rule C1 for one roadwork against all others."""
    pairs = _C1_PAIR_SQL.format(pair_condition="y.id <> x.id", x_condition="AND x.id = %(id)s")
    sql = _UPSERT_AND_PRUNE_SQL.format(
        pairs=pairs, prune_scope="AND (c.roadwork_a_id = %(id)s OR c.roadwork_b_id = %(id)s)"
    )
    return _run_detection(sql, {"id": str(roadwork_id)})


@transaction.atomic
def conflicts_sweep() -> dict[str, int]:
    """Recompute rule C1 for all roadworks at once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SWEEP_LOCK_KEY])
    pairs = _C1_PAIR_SQL.format(pair_condition="y.id > x.id", x_condition="")
    sql = _UPSERT_AND_PRUNE_SQL.format(pairs=pairs, prune_scope="")
    return _run_detection(sql, {})
