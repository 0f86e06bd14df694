"""Writes on roadworks and conflicts. Keyword-only `<entity>_<action>` functions.

Each write runs in a transaction and enqueues its follow-up work on commit. Status changes go through
roadwork_transition only; workflow.py defines which steps exist and who may take them.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiLineString, MultiPolygon
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, User
from auman.errors import ConcurrentEditError
from jobs import outbox

from . import permissions, rules, selectors, workflow
from .categories import decision_due
from .models import (
    WEEKDAYS,
    Attachment,
    AttachmentKind,
    Conflict,
    ConflictStatus,
    Corridor,
    Detour,
    Event,
    MoratoriumArea,
    NetworkFeature,
    Roadwork,
    RoadworkStatus,
    RoadworkTransition,
    RuleState,
    attachment_path,
)
from .notifications import DECISION_ACTIONS, decision_notify_on_commit

logger = logging.getLogger(__name__)

MSG_NOT_ALLOWED_CREATE = _("Only the permit authority and applicants may record roadworks.")
MSG_NOT_ALLOWED_EDIT = _("You may not change this roadwork.")
MSG_NOT_ALLOWED_EDIT_STATUS = _(
    "An applicant changes its application only while it is a draft or a modification is requested "
    "(this one is '{status}')."
)
MSG_NOT_ALLOWED_ORGANISATION = _("Applicants record works for their own organisation only.")
MSG_ORGANISATION_REQUIRED = _("Choose the organisation the works are for.")
MSG_STATUS_BY_TRANSITION = _(
    "The status changes only through POST /api/v1/roadworks/{id}/transition/ (or /report/ for the actual "
    "start and end)."
)
MSG_EMERGENCY_FIXED = _("Whether works are emergency works is set when they are reported and cannot change.")
MSG_DAILY_WINDOW_INCOMPLETE = _("Give both the daily start and the daily end, or neither.")
MSG_DAILY_WINDOW_EMPTY = _("The daily start and end must differ (a window may cross midnight, e.g. 20:00-05:00).")
MSG_WEEKDAYS = _("Weekdays are numbers from 0 (Monday) to 6 (Sunday), each at most once.")
MSG_DETOUR_PERIOD = _("Detour {number}: its period must lie within the roadwork's period.")
MSG_NOT_ALLOWED_REPORT = _("Only the applicant organisation and the authority report the actual start and end.")
MSG_REPORT_EMPTY = _("Send 'actual_start', 'actual_end' or both.")
MSG_REPORT_FUTURE = _("This time lies in the future. Report the start or end once it has happened.")
MSG_REPORT_END_BEFORE_START = _("The actual end must lie after the actual start ({start}).")
MSG_REPORT_STATUS = _("Actual times are reported for approved, running or completed works, not for '{status}'.")
MSG_REPORT_START_FIRST = _("These works have not started: report 'actual_start' together with 'actual_end'.")
MSG_NOT_ALLOWED_ATTACH = _("You may not add files to this roadwork.")
MSG_FILE_REQUIRED = _("Send the file as multipart/form-data in the field 'file'.")
MSG_FILE_EMPTY = _("The file is empty.")
MSG_FILE_TOO_LARGE = _("The file is larger than {limit} bytes. Send a smaller file (e.g. a compressed PDF).")
MSG_FILE_TYPE = _("Only PDF, PNG and JPEG files are accepted; this file's content is none of them.")
MSG_FILE_EXTENSION = _("The file's content is {detected}, but its name ends in '{extension}'. Rename or convert it.")
MSG_ATTACHMENT_KIND = _("'{kind}' is not a kind of attachment. Use one of: {choices}.")

# Changing any of these can create or remove conflicts under some rule of the catalogue (rules.py).
CONFLICT_RELEVANT_FIELDS = (
    "geometry",
    "period",
    "status",
    "daily_start",
    "daily_end",
    "weekdays",
    "detours",
    "street_names",  # C2, C10
    "traffic_management",  # C4, C7
    "excavation",  # C5, C10
    "organisation",  # C10
)

# Fields a caller may set through roadwork_create / roadwork_update.
EDITABLE_FIELDS = (
    "title",
    "description",
    "purpose",
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
    "contact_name",
    "contact_phone",
    "contact_email",
    "pedestrian_route",
    "daily_start",
    "daily_end",
    "weekdays",
    "organisation",
    "reference",
    "detours",
)
# Set once, at creation: the initial status (draft or submitted; in progress for emergency works).
CREATE_ONLY_FIELDS = ("status", "is_emergency")

# A reported time may lie this far ahead of the server's clock (clocks on site phones drift).
REPORT_FUTURE_TOLERANCE = timedelta(minutes=5)


class AttachmentTooLarge(Exception):
    """The API answers 413."""


class AttachmentTypeNotAllowed(Exception):
    """The API answers 415."""


def _new_reference() -> str:
    return f"BS-{timezone.now():%Y}-{uuid.uuid4().hex[:6].upper()}"


def roadwork_detect_conflicts_on_commit(*, roadwork_id: uuid.UUID) -> None:
    """Queue conflict detection for a roadwork once the current transaction commits."""
    from .tasks import conflicts_detect_for_roadwork

    # Through the outbox: the task commits with the write, and a broker outage only delays it (jobs/outbox.py).
    outbox.enqueue(conflicts_detect_for_roadwork, str(roadwork_id))


def _check_schedule(roadwork: Roadwork) -> None:
    """Daily window and weekdays, with messages per field (the DB constraints back them up)."""
    if (roadwork.daily_start is None) != (roadwork.daily_end is None):
        missing = "daily_end" if roadwork.daily_end is None else "daily_start"
        raise ValidationError({missing: [MSG_DAILY_WINDOW_INCOMPLETE]})
    if roadwork.daily_start is not None and roadwork.daily_start == roadwork.daily_end:
        raise ValidationError({"daily_end": [MSG_DAILY_WINDOW_EMPTY]})
    weekdays = list(roadwork.weekdays or [])
    if any(day not in WEEKDAYS for day in weekdays) or len(set(weekdays)) != len(weekdays):
        raise ValidationError({"weekdays": [MSG_WEEKDAYS]})
    roadwork.weekdays = sorted(weekdays)


def _snap_street_names(roadwork: Roadwork) -> None:
    """Works recorded without street names get those of the streets they lie on (maps.streets.streets_along), so
    the street rules (C2, C10), the feeds and the lists name them; names given by a person are kept as they are."""
    from maps.streets import streets_along

    if not roadwork.street_names and roadwork.geometry is not None:
        roadwork.street_names = streets_along(geometry=roadwork.geometry)


def _check_detours(roadwork: Roadwork, detours: list[dict[str, Any]]) -> None:
    for number, detour in enumerate(detours, start=1):
        detour_period: DateTimeTZRange | None = detour.get("period")
        if detour_period is None:
            continue
        if detour_period.lower < roadwork.period.lower or detour_period.upper > roadwork.period.upper:
            raise ValidationError({"detours": [str(MSG_DETOUR_PERIOD).format(number=number)]})


_DETOUR_FIELDS = ("name", "description", "geometry", "period")


def _detour_values(detour: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": detour["name"],
        "description": detour.get("description", ""),
        "geometry": detour["geometry"],
        "period": detour.get("period"),
    }


def _same_detour(row: Detour, values: dict[str, Any]) -> bool:
    return (
        row.name == values["name"]
        and row.description == values["description"]
        and row.period == values["period"]
        # the same line, within the millimetre the API's coordinates can tell apart
        and row.geometry.equals_exact(values["geometry"], 0.001)
    )


def _replace_detours(roadwork: Roadwork, detours: list[dict[str, Any]]) -> None:
    """Make the roadwork's detours the given list: what the client leaves out is gone.

    A detour keeps its row, and with it its id (the feeds derive the detour's road event id from it, which must
    stay the same from one build to the next), when the client names it by that id or sends it unchanged. Only
    what really changed is written, so the history shows changes, not every detour deleted and made again."""
    existing = {row.pk: row for row in roadwork.detours.all()}
    wanted = [(detour.get("id"), _detour_values(detour)) for detour in detours]
    kept: dict[int, dict[str, Any]] = {}
    # First by id (only ids of this roadwork's detours count), then unchanged ones without an id by their content.
    for detour_id, values in wanted:
        if detour_id in existing and detour_id not in kept:
            kept[detour_id] = values
    unclaimed = [row for pk, row in existing.items() if pk not in kept]
    new: list[dict[str, Any]] = []
    for detour_id, values in wanted:
        if detour_id in kept and kept[detour_id] is values:
            continue
        match = next((row for row in unclaimed if _same_detour(row, values)), None)
        if match is not None:
            unclaimed.remove(match)
            kept[match.pk] = values
        else:
            new.append(values)
    Detour.objects.filter(pk__in=[row.pk for row in unclaimed]).delete()
    for pk, values in kept.items():
        row = existing[pk]
        if not _same_detour(row, values):
            for name in _DETOUR_FIELDS:
                setattr(row, name, values[name])
            row.save(update_fields=list(_DETOUR_FIELDS))
    Detour.objects.bulk_create(Detour(roadwork=roadwork, **values) for values in new)


def _record(
    *,
    roadwork: Roadwork,
    transition: workflow.Transition,
    user: User | None,
    from_status: str,
    at: datetime,
    comment: str = "",
    override: bool = False,
) -> RoadworkTransition:
    return RoadworkTransition.objects.create(
        roadwork=roadwork,
        action=transition.name,
        from_status=from_status,
        to_status=roadwork.status,
        at=at,
        by=user,
        comment=comment,
        override=override,
    )


def _take(
    *,
    roadwork: Roadwork,
    transition: workflow.Transition,
    user: User | None,
    now: datetime,
    comment: str = "",
    override_reason: str = "",
    overridden: list[int] | None = None,
) -> RoadworkTransition:
    """Apply a checked step to a locked (or new, saved) work and record it; the caller saves the work."""
    from_status = roadwork.status
    roadwork.status = transition.target(roadwork)
    if transition.submits:
        roadwork.submitted_at = now
        # The deadline restarts on every (re)submission: the authority examines what was sent last.
        roadwork.decision_due = decision_due(category=roadwork.refresh_category(), submitted_at=now)
    if transition.decides:
        roadwork.decided_at = now
    if user is not None and transition.stamps_actual_start and roadwork.actual_start is None:
        roadwork.actual_start = now
    if user is not None and transition.stamps_actual_end and roadwork.actual_end is None:
        roadwork.actual_end = now
    if overridden:
        # The authority decided the works may go ahead despite these conflicts: they are accepted, and
        # the history says why.
        Conflict.objects.filter(pk__in=overridden).update(
            status=ConflictStatus.ACCEPTED,
            reason=override_reason.strip()[:2000],
            status_changed_at=now,
            status_changed_by=user,
            updated_at=now,
        )
    parts = [comment.strip()] + ([override_reason.strip()] if override_reason.strip() else [])
    return _record(
        roadwork=roadwork,
        transition=transition,
        user=user,
        from_status=from_status,
        at=now,
        comment="\n\n".join(part for part in parts if part),
        override=bool(overridden),
    )


def _organisation_for(user: User, organisation: Organisation | None) -> Organisation:
    if (
        organisation is not None
        and organisation.pk != user.organisation_id
        and not permissions.can_choose_organisation(user)
    ):
        raise PermissionDenied(MSG_NOT_ALLOWED_ORGANISATION)
    organisation = organisation or user.organisation
    if organisation is None:
        raise ValidationError({"organisation": [MSG_ORGANISATION_REQUIRED]})
    return organisation


@transaction.atomic
def roadwork_create(*, user: User, data: dict[str, Any]) -> Roadwork:
    """Create a draft; with status 'submitted' also submit it; with is_emergency, report running emergency works."""
    if not permissions.can_create_roadwork(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_CREATE)
    unknown = set(data) - set(EDITABLE_FIELDS) - set(CREATE_ONLY_FIELDS)
    if unknown:
        raise ValueError(f"roadwork_create got unknown fields {sorted(unknown)}")
    data = dict(data)
    organisation = _organisation_for(user, data.pop("organisation", None))
    detours = data.pop("detours", None) or []
    is_emergency = bool(data.pop("is_emergency", False))
    steps = workflow.initial(status=data.pop("status", None), is_emergency=is_emergency)
    roadwork = Roadwork(organisation=organisation, created_by=user, is_emergency=is_emergency, **data)
    roadwork.status = steps[0].to
    if not roadwork.reference:
        roadwork.reference = _new_reference()
    _check_schedule(roadwork)
    _snap_street_names(roadwork)
    roadwork.full_clean()
    _check_detours(roadwork, detours)
    now = timezone.now()
    for step in steps:
        try:
            workflow.check(transition=step, user=user, roadwork=roadwork, comment="", override_reason="", now=now)
        except workflow.TransitionError as exc:
            # On creation the only guards that can fail concern the period.
            raise ValidationError({"period": [str(exc)]}) from exc
    if steps[0].submits:
        # Emergency works: the retroactive decision is due like that on an application sent now.
        roadwork.submitted_at = now
        roadwork.decision_due = decision_due(category=roadwork.refresh_category(), submitted_at=now)
    roadwork.save()
    _record(roadwork=roadwork, transition=steps[0], user=user, from_status="", at=now)
    for step in steps[1:]:
        _take(roadwork=roadwork, transition=step, user=user, now=now)
        roadwork.save()
    _replace_detours(roadwork, detours)
    roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    return roadwork


def record_admin_creation(*, roadwork: Roadwork, user: User) -> None:
    """The admin's add form saves a draft itself; its history starts like any other."""
    _record(roadwork=roadwork, transition=workflow.CREATE, user=user, from_status="", at=timezone.now())


@transaction.atomic
def roadwork_update(*, user: User, roadwork_id: uuid.UUID, data: dict[str, Any], expected_version: int) -> Roadwork:
    # Lock the row so two writers are serialised, then compare versions: no silent overwrite.
    roadwork = Roadwork.objects.select_for_update().get(pk=roadwork_id)
    if not permissions.can_edit_roadwork(user, roadwork):
        if permissions.is_own_organisation(user, roadwork):
            raise PermissionDenied(str(MSG_NOT_ALLOWED_EDIT_STATUS).format(status=roadwork.get_status_display()))
        raise PermissionDenied(MSG_NOT_ALLOWED_EDIT)
    if roadwork.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=roadwork.version)
    data = dict(data)
    # Sent back unchanged (a GET result edited and PUT back) they are ignored; a change is refused.
    if "status" in data and data.pop("status") != roadwork.status:
        raise ValidationError({"status": [MSG_STATUS_BY_TRANSITION]})
    if "is_emergency" in data and bool(data.pop("is_emergency")) != roadwork.is_emergency:
        raise ValidationError({"is_emergency": [MSG_EMERGENCY_FIXED]})
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"roadwork_update got unknown fields {sorted(unknown)}")
    changes_organisation = "organisation" in data and data["organisation"].pk != roadwork.organisation_id
    if changes_organisation and not permissions.can_choose_organisation(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_ORGANISATION)
    detours = data.pop("detours", None)
    before = {name: getattr(roadwork, name) for name in CONFLICT_RELEVANT_FIELDS if name != "detours"}
    for name, value in data.items():
        setattr(roadwork, name, value)
    _check_schedule(roadwork)
    _snap_street_names(roadwork)
    roadwork.version += 1
    roadwork.full_clean()
    if detours is not None:
        _check_detours(roadwork, detours)
    else:
        _check_detours(roadwork, list(roadwork.detours.values("period")))
    roadwork.save()
    if detours is not None:
        _replace_detours(roadwork, detours)
    if detours is not None or any(before[name] != getattr(roadwork, name) for name in before):
        roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    return roadwork


def roadwork_transition(
    *,
    user: User | None,
    roadwork_id: uuid.UUID | str,
    to_status: str,
    comment: str = "",
    override_reason: str = "",
    expected_version: int,
) -> Roadwork:
    """Take the workflow step to `to_status` (user None: the system). Recorded in the work's history."""
    if to_status == RoadworkStatus.APPROVED:
        # Detection normally runs after commit; a decision must weigh the conflicts as they are now (every rule:
        # C3, C5 and C7 find errors too). In its own transaction first, so the conflicts a refused approval names
        # are stored, not rolled back.
        conflicts_detect_all_for(roadwork_id=roadwork_id)
    return _roadwork_transition(
        user=user,
        roadwork_id=roadwork_id,
        to_status=to_status,
        comment=comment,
        override_reason=override_reason,
        expected_version=expected_version,
    )


@transaction.atomic
def _roadwork_transition(
    *,
    user: User | None,
    roadwork_id: uuid.UUID | str,
    to_status: str,
    comment: str,
    override_reason: str,
    expected_version: int,
) -> Roadwork:
    roadwork = Roadwork.objects.select_for_update().get(pk=roadwork_id)
    transition = workflow.resolve(user=user, roadwork=roadwork, to=to_status)
    if roadwork.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=roadwork.version)
    now = timezone.now()
    overridden = workflow.check(
        transition=transition, user=user, roadwork=roadwork, comment=comment, override_reason=override_reason, now=now
    )
    step = _take(
        roadwork=roadwork,
        transition=transition,
        user=user,
        now=now,
        comment=comment,
        override_reason=override_reason,
        overridden=overridden,
    )
    roadwork.version += 1
    roadwork.save()
    roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    if step.action in DECISION_ACTIONS:
        decision_notify_on_commit(transition_id=step.pk)
    return roadwork


@transaction.atomic
def roadwork_report(
    *,
    user: User,
    roadwork_id: uuid.UUID | str,
    actual_start: datetime | None = None,
    actual_end: datetime | None = None,
    expected_version: int,
) -> Roadwork:
    """Record the actual start and/or end; an approved work goes in progress, a running one is completed."""
    roadwork = Roadwork.objects.select_for_update().get(pk=roadwork_id)
    if not permissions.can_report_progress(user, roadwork):
        raise PermissionDenied(MSG_NOT_ALLOWED_REPORT)
    if roadwork.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=roadwork.version)
    if actual_start is None and actual_end is None:
        raise ValidationError({"non_field_errors": [MSG_REPORT_EMPTY]})
    now = timezone.now()
    future = {
        name: [MSG_REPORT_FUTURE]
        for name, value in (("actual_start", actual_start), ("actual_end", actual_end))
        if value is not None and value > now + REPORT_FUTURE_TOLERANCE
    }
    if future:
        raise ValidationError(future)
    S = RoadworkStatus
    steps: list[str] = []
    status = roadwork.status
    if actual_start is not None:
        if status == S.APPROVED:
            steps.append(S.IN_PROGRESS)
            status = S.IN_PROGRESS
        elif status not in (S.IN_PROGRESS, S.COMPLETED):
            raise workflow.TransitionError(str(MSG_REPORT_STATUS).format(status=roadwork.get_status_display()))
    if actual_end is not None:
        if status == S.IN_PROGRESS:
            steps.append(S.COMPLETED)
        elif status == S.APPROVED:
            raise workflow.TransitionError(str(MSG_REPORT_START_FIRST))
        elif status != S.COMPLETED:
            raise workflow.TransitionError(str(MSG_REPORT_STATUS).format(status=roadwork.get_status_display()))
    start = actual_start or roadwork.actual_start
    end = actual_end or roadwork.actual_end
    if start is not None and end is not None and end <= start:
        message = str(MSG_REPORT_END_BEFORE_START).format(start=timezone.localtime(start).isoformat())
        raise ValidationError({"actual_end" if actual_end is not None else "actual_start": [message]})
    if actual_start is not None:
        roadwork.actual_start = actual_start
    if actual_end is not None:
        roadwork.actual_end = actual_end
    for to in steps:
        # Through the workflow like /transition/: the same role rules, the same history.
        transition = workflow.resolve(user=user, roadwork=roadwork, to=to)
        workflow.check(transition=transition, user=user, roadwork=roadwork, comment="", override_reason="", now=now)
        _take(roadwork=roadwork, transition=transition, user=user, now=now)
    roadwork.version += 1
    roadwork.full_clean()
    roadwork.save()
    if steps:
        roadwork_detect_conflicts_on_commit(roadwork_id=roadwork.pk)
    return roadwork


def roadworks_advance_statuses() -> dict[str, int]:
    """Start approved works whose period has begun and complete running works whose period has ended.

    A query finds them; each step goes through roadwork_transition (its own transaction) as the system,
    so history and conflict detection follow. A work changed meanwhile is skipped; the next run retries."""
    counts = {"started": 0, "completed": 0, "skipped": 0}
    plan = (
        ("started", RoadworkStatus.IN_PROGRESS, selectors.roadworks_due_to_start),
        ("completed", RoadworkStatus.COMPLETED, selectors.roadworks_due_to_complete),
    )
    for key, to_status, due in plan:
        # Starts first: an approved work whose whole period passed unseen is started, then completed.
        for pk, version in due(now=timezone.now()).values_list("pk", "version"):
            try:
                roadwork_transition(user=None, roadwork_id=pk, to_status=to_status, expected_version=version)
            except (ConcurrentEditError, workflow.TransitionError, Roadwork.DoesNotExist):
                counts["skipped"] += 1
                logger.info("status advance skipped roadwork %s (changed meanwhile)", pk)
            else:
                counts[key] += 1
    return counts


# --- Attachments ------------------------------------------------------------------------------

# Magic numbers: the content decides the type, never the name or the client's Content-Type.
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
_EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe"),
}
_KNOWN_EXTENSIONS = {ext for exts in _EXTENSIONS.values() for ext in exts}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def sniff_content_type(head: bytes) -> str | None:
    return next((content_type for magic, content_type in _MAGIC if head.startswith(magic)), None)


def clean_file_name(name: str) -> str:
    """The name shown and offered on download: no path, no control characters, at most 255 characters."""
    base = PurePath(name.replace("\\", "/")).name
    base = _UNSAFE_NAME.sub("_", base).strip() or "attachment"
    if len(base) > 255:
        suffix = PurePath(base).suffix[:16]
        base = base[: 255 - len(suffix)] + suffix
    return base


@transaction.atomic
def roadwork_attachment_add(
    *, user: User, roadwork_id: uuid.UUID | str, uploaded_file: UploadedFile, kind: str = AttachmentKind.OTHER
) -> Attachment:
    roadwork = Roadwork.objects.get(pk=roadwork_id)
    if not permissions.can_add_attachment(user, roadwork):
        raise PermissionDenied(MSG_NOT_ALLOWED_ATTACH)
    if kind not in AttachmentKind.values:
        choices = ", ".join(AttachmentKind.values)
        raise ValidationError({"kind": [str(MSG_ATTACHMENT_KIND).format(kind=kind, choices=choices)]})
    limit = settings.AUMAN_MAX_ATTACHMENT_BYTES
    if uploaded_file.size > limit:
        raise AttachmentTooLarge(str(MSG_FILE_TOO_LARGE).format(limit=limit))
    if uploaded_file.size == 0:
        raise ValidationError({"file": [MSG_FILE_EMPTY]})
    uploaded_file.seek(0)
    content_type = sniff_content_type(uploaded_file.read(16))
    uploaded_file.seek(0)
    if content_type is None:
        raise AttachmentTypeNotAllowed(str(MSG_FILE_TYPE))
    name = clean_file_name(uploaded_file.name or "")
    extension = PurePath(name).suffix.lower()
    if extension in _KNOWN_EXTENSIONS and extension not in _EXTENSIONS[content_type]:
        detected = content_type.split("/")[1].upper()
        raise AttachmentTypeNotAllowed(str(MSG_FILE_EXTENSION).format(detected=detected, extension=extension))
    attachment = Attachment(
        roadwork=roadwork,
        kind=kind,
        original_name=name,
        content_type=content_type,
        size=uploaded_file.size,
        uploaded_by=user,
    )
    attachment.file.save(attachment_path(attachment, name), uploaded_file, save=False)
    try:
        attachment.save()
    except Exception:
        # No row, no file: a failed insert must not leave an orphan under MEDIA_ROOT.
        attachment.file.delete(save=False)
        raise
    return attachment


# --- Conflict status --------------------------------------------------------------------------


@transaction.atomic
def conflict_set_status(*, user: User, conflict_id: int, status: str, reason: str = "") -> Conflict:
    """A person's step on a conflict: acknowledge, accept (authority, with reason) or reopen (authority)."""
    conflict = (
        Conflict.objects.select_for_update(of=("self",)).select_related("roadwork_a", "roadwork_b").get(pk=conflict_id)
    )
    transition = workflow.resolve_conflict(user=user, conflict=conflict, to=status, reason=reason)
    conflict.status = transition.to
    if transition.to == ConflictStatus.OPEN:
        conflict.reason = ""
    elif reason.strip():
        conflict.reason = reason.strip()
    conflict.status_changed_at = timezone.now()
    conflict.status_changed_by = user
    conflict.full_clean(exclude=["roadwork_a", "roadwork_b", "place", "overlap_period"])
    conflict.save(update_fields=["status", "reason", "status_changed_at", "status_changed_by", "updated_at"])
    return conflict


# --- Conflict detection ---------------------------------------------------------
# Each rule of the catalogue (rules.py) is one statement, run by PostGIS on the GiST indexes. "found" holds what
# collides now; the upsert keeps a conflict's own status (acknowledged, accepted) across runs and reopens a resolved
# one that holds again; what no longer collides is marked resolved (not deleted: the conflict and what people said
# about it stay). Running detection again yields the same rows and changes nothing.

# Serialises full sweeps of a rule across workers (two-key advisory lock: this key and the rule's position);
# per-roadwork runs touch few rows and meet sweeps only through row locks and ON CONFLICT.
_SWEEP_LOCK_KEY = 0x41554D41  # "AUMA"


@transaction.atomic
def conflicts_detect_for(*, roadwork_id: uuid.UUID | str) -> dict[str, int]:
    """Recompute rule C1 (same place) for one roadwork against all others."""
    return rules.get("C1").for_roadwork(roadwork_id)


def conflicts_sweep() -> dict[str, int]:
    """Recompute rule C1 for all roadworks at once."""
    return conflicts_sweep_rule(code="C1")


def conflicts_sweep_rule(*, code: str) -> dict[str, int]:
    """Recompute one rule over all roadworks and remember the parameters it ran with (RuleState)."""
    result = _sweep_rule(code=code, only_if_changed=False)
    assert result is not None  # only only_if_changed skips
    return result


@transaction.atomic
def _sweep_rule(*, code: str, only_if_changed: bool) -> dict[str, int] | None:
    """only_if_changed: skip the rule (None) if its last full run used the same parameters, checked under the sweep
    lock, so that several workers starting at once re-run a changed rule once."""
    rule = rules.get(code)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_SWEEP_LOCK_KEY, rules.codes().index(code)])
    fingerprint = rule.fingerprint()
    if only_if_changed and RuleState.objects.filter(code=code, fingerprint=fingerprint).exists():
        return None
    result = rule.sweep()
    RuleState.objects.update_or_create(
        code=code,
        defaults={"fingerprint": fingerprint, "parameters": rule.fingerprint_data(), "swept_at": timezone.now()},
    )
    return result


def conflicts_rules_changed() -> list[str]:
    """The rules whose parameters (or statement revision) differ from those of their last full run, or that never
    had one."""
    stored = dict(RuleState.objects.values_list("code", "fingerprint"))
    return [rule.code for rule in rules.CATALOGUE if stored.get(rule.code) != rule.fingerprint()]


def conflicts_sweep_changed_rules() -> dict[str, dict[str, int]]:
    """Re-run every rule whose parameters changed since its last full run (a worker runs this when it starts)."""
    results = {}
    for code in conflicts_rules_changed():
        result = _sweep_rule(code=code, only_if_changed=True)
        if result is not None:
            results[code] = result
    if results:
        logger.info("conflict rules re-run after a parameter change: %s", ", ".join(results))
    return results


# --- Every rule at once -------------------------------------------------------------------------------------------
# What the Celery tasks run: a roadwork change re-checks every rule of the catalogue for it (one transaction), a
# sweep every rule for all works (a transaction per rule, so a long sweep does not hold every rule's rows at once).


@transaction.atomic
def conflicts_detect_all_for(*, roadwork_id: uuid.UUID | str) -> dict[str, dict[str, int]]:
    return {rule.code: rule.for_roadwork(roadwork_id) for rule in rules.CATALOGUE}


def conflicts_sweep_all() -> dict[str, dict[str, int]]:
    return {rule.code: conflicts_sweep_rule(code=rule.code) for rule in rules.CATALOGUE}


def rule_sweep_on_commit(*, code: str) -> None:
    """Queue a full run of one rule once the current transaction commits (a layer of the rule changed)."""
    from .tasks import conflicts_sweep_rule as task

    # Through the outbox: the task commits with the edit, and a broker outage only delays it (jobs/outbox.py).
    outbox.enqueue(task, code)


# --- Rule layers: corridors, moratoria, events -----------------------------------------------------------------
# Recorded by the authority. Each write re-runs the layer's rule over all roadworks after the commit: an edit can
# create conflicts anywhere along a corridor or inside an area, and resolve them where it no longer reaches.

MSG_NOT_ALLOWED_LAYER = _("Only the permit authority records corridors, moratoria and events.")

# The rule that reads each layer model.
LAYER_RULES: dict[type, str] = {Corridor: "C4", MoratoriumArea: "C5", Event: "C6", NetworkFeature: "C7"}


def _as_multi(geometry: GEOSGeometry | None, multi: type) -> GEOSGeometry | None:
    """Layers store Multi* geometries; a single line or polygon is stored as a collection of one."""
    if geometry is None or isinstance(geometry, multi):
        return geometry
    collection = multi(geometry)
    collection.srid = geometry.srid
    return collection


_LAYER_MULTI = {
    Corridor: ("geometry", MultiLineString),
    MoratoriumArea: ("geometry", MultiPolygon),
    Event: ("area", MultiPolygon),
}


def _layer_check_user(user: User) -> None:
    if not permissions.can_manage_layers(user):
        raise PermissionDenied(MSG_NOT_ALLOWED_LAYER)


def _layer_save(instance: Any, data: dict[str, Any]) -> Any:
    model = type(instance)
    name, multi = _LAYER_MULTI[model]
    allowed = {field.name for field in model._meta.concrete_fields} - {"id", "created_at", "updated_at", "version"}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(f"{model.__name__} got unknown fields {sorted(unknown)}")
    for field_name, value in data.items():
        setattr(instance, field_name, _as_multi(value, multi) if field_name == name else value)
    instance.full_clean()
    instance.save()
    rule_sweep_on_commit(code=LAYER_RULES[model])
    return instance


@transaction.atomic
def layer_item_create(*, user: User, model: type, data: dict[str, Any]) -> Any:
    """Create a corridor, moratorium area or event (model) from validated data."""
    _layer_check_user(user)
    return _layer_save(model(), data)


@transaction.atomic
def layer_item_update(*, user: User, model: type, item_id: int, data: dict[str, Any], expected_version: int) -> Any:
    _layer_check_user(user)
    instance = model.objects.select_for_update().get(pk=item_id)
    if instance.version != expected_version:
        raise ConcurrentEditError(given=expected_version, current=instance.version)
    instance.version += 1
    return _layer_save(instance, data)


@transaction.atomic
def layer_item_delete(*, user: User, model: type, item_id: int) -> None:
    """Delete a layer item; the rule's conflicts with it become resolved in the sweep that follows."""
    _layer_check_user(user)
    model.objects.get(pk=item_id).delete()
    rule_sweep_on_commit(code=LAYER_RULES[model])


def corridor_create(*, user: User, data: dict[str, Any]) -> Corridor:
    return layer_item_create(user=user, model=Corridor, data=data)


def corridor_update(*, user: User, corridor_id: int, data: dict[str, Any], expected_version: int) -> Corridor:
    return layer_item_update(
        user=user, model=Corridor, item_id=corridor_id, data=data, expected_version=expected_version
    )


def corridor_delete(*, user: User, corridor_id: int) -> None:
    layer_item_delete(user=user, model=Corridor, item_id=corridor_id)


def moratorium_create(*, user: User, data: dict[str, Any]) -> MoratoriumArea:
    return layer_item_create(user=user, model=MoratoriumArea, data=data)


def moratorium_update(*, user: User, moratorium_id: int, data: dict[str, Any], expected_version: int) -> MoratoriumArea:
    return layer_item_update(
        user=user, model=MoratoriumArea, item_id=moratorium_id, data=data, expected_version=expected_version
    )


def moratorium_delete(*, user: User, moratorium_id: int) -> None:
    layer_item_delete(user=user, model=MoratoriumArea, item_id=moratorium_id)


def event_create(*, user: User, data: dict[str, Any]) -> Event:
    return layer_item_create(user=user, model=Event, data=data)


def event_update(*, user: User, event_id: int, data: dict[str, Any], expected_version: int) -> Event:
    return layer_item_update(user=user, model=Event, item_id=event_id, data=data, expected_version=expected_version)


def event_delete(*, user: User, event_id: int) -> None:
    layer_item_delete(user=user, model=Event, item_id=event_id)
