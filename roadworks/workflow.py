"""The permit workflow: the one definition of the steps between a roadwork's states, who may take each
and what each needs. The conflicts' own small state machine is defined here as well.

    draft ──submit──▶ submitted ──approve──▶ approved ──start──▶ in_progress ──complete──▶ completed
                        │  ▲  │                 │                  │
      request_modification│  │resubmit          │                  │
                        ▼  │  └──refuse──▶ refused                  │
              modification_requested ──refuse──▶ refused            │
    draft, submitted, modification_requested, approved ──cancel (before the start)──▶ cancelled
    approved, in_progress ──revoke──▶ revoked

Emergency works (is_emergency) are created in progress and decided afterwards: while undecided
(decided_at empty) the authority approves them retroactively (the status stays in progress or completed;
the step is recorded) or refuses them (status refused, a reason required; works still running must stop).
They may also be revoked like any running work.

Who: "applicant" is a member of the work's own organisation with the applicant role; "authority" is the
permit authority; "system" is the periodic status advance (services.roadworks_advance_statuses).
The authority may also take the applicant's steps (submit, cancel, report) on the applicant's behalf.

Services call resolve() and check(); the API and the pages call available() to offer only possible steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import User

from .models import Conflict, ConflictStatus, Roadwork, RoadworkStatus

S = RoadworkStatus

MSG_UNKNOWN_STATUS = _("'{to}' is not a status. Use one of: {choices}.")
MSG_NOT_POSSIBLE = _("A roadwork that is '{current}' cannot become '{target}'.")
MSG_NOT_ALLOWED = _("Only {who} may take the step '{step}'.")
MSG_NO_ROLE = _("You may not change the status of this roadwork.")
MSG_COMMENT_REQUIRED = _("Give a reason in 'comment' for the step '{step}'.")
MSG_STARTED = _(
    "The works started at {start}: cancelling is possible only before the start; the authority may revoke them."
)
MSG_PERIOD_ENDED = _("The period of these works has already ended. Change the period first.")
MSG_NOT_STARTED_YET = _("The period of these works has not begun yet.")
MSG_NOT_ENDED_YET = _("The period of these works has not ended yet.")
MSG_OVERRIDE_REQUIRED = _(
    "{count} open error-level conflict(s) concern this roadwork. Resolve them first, "
    "or approve with an 'override_reason' that says why the works may go ahead anyway."
)

MSG_CONFLICT_UNKNOWN_STATUS = _("'{to}' is not a conflict status. Use one of: {choices}.")
MSG_CONFLICT_RESOLVED_BY_DETECTION = _(
    "A conflict becomes 'resolved' by itself when the works no longer collide (change a work's place, time "
    "or status). To let it stand, accept it with a reason."
)
MSG_CONFLICT_NOT_POSSIBLE = _("A conflict that is '{current}' cannot become '{target}'.")
MSG_CONFLICT_NOT_ALLOWED = _("Only {who} may set a conflict to '{target}'.")
MSG_CONFLICT_REASON_REQUIRED = _("Give a reason in 'reason' for accepting this conflict.")


class Taker(StrEnum):
    APPLICANT = "applicant"
    AUTHORITY = "authority"
    SYSTEM = "system"


WHO = {
    Taker.AUTHORITY: _("the permit authority"),
    Taker.APPLICANT: _("the applicant organisation"),
    Taker.SYSTEM: _("the system"),
}

APPLICANT_AND_AUTHORITY = frozenset({Taker.APPLICANT, Taker.AUTHORITY})
AUTHORITY_ONLY = frozenset({Taker.AUTHORITY})


class TransitionError(Exception):
    """The work's state (or an open conflict) forbids the step: the API answers 409."""

    def __init__(self, message: str, *, conflicts: list[int] | None = None) -> None:
        super().__init__(message)
        self.conflicts = conflicts or []


@dataclass(frozen=True)
class Transition:
    name: str
    label: Promise
    sources: tuple[str, ...]
    to: str  # the status a caller asks for
    takers: frozenset[Taker]
    comment_required: bool = False
    # Only undecided emergency works (is_emergency and no decided_at).
    emergency_only: bool = False
    # The work keeps its status (a retroactive approval of running or finished emergency works).
    keeps_status: bool = False
    before_start_only: bool = False
    # Open error-level conflicts block it unless an override reason is given.
    conflict_guard: bool = False
    submits: bool = False  # stamps submitted_at and decision_due
    decides: bool = False  # stamps decided_at
    # Recorded when a person takes it and no actual time is known yet.
    stamps_actual_start: bool = False
    stamps_actual_end: bool = False

    def target(self, roadwork: Roadwork) -> str:
        return roadwork.status if self.keeps_status else self.to


SUBMIT = Transition("submit", _("submit"), (S.DRAFT,), S.SUBMITTED, APPLICANT_AND_AUTHORITY, submits=True)
RESUBMIT = Transition(
    "resubmit", _("resubmit"), (S.MODIFICATION_REQUESTED,), S.SUBMITTED, APPLICANT_AND_AUTHORITY, submits=True
)
REQUEST_MODIFICATION = Transition(
    "request_modification",
    _("request modification"),
    (S.SUBMITTED,),
    S.MODIFICATION_REQUESTED,
    AUTHORITY_ONLY,
    comment_required=True,
)
APPROVE = Transition(
    "approve", _("approve"), (S.SUBMITTED,), S.APPROVED, AUTHORITY_ONLY, conflict_guard=True, decides=True
)
REFUSE = Transition(
    "refuse",
    _("refuse"),
    (S.SUBMITTED, S.MODIFICATION_REQUESTED),
    S.REFUSED,
    AUTHORITY_ONLY,
    comment_required=True,
    decides=True,
)
START = Transition(
    "start",
    _("start"),
    (S.APPROVED,),
    S.IN_PROGRESS,
    frozenset({Taker.APPLICANT, Taker.AUTHORITY, Taker.SYSTEM}),
    stamps_actual_start=True,
)
COMPLETE = Transition(
    "complete",
    _("complete"),
    (S.IN_PROGRESS,),
    S.COMPLETED,
    frozenset({Taker.APPLICANT, Taker.AUTHORITY, Taker.SYSTEM}),
    stamps_actual_end=True,
)
CANCEL = Transition(
    "cancel",
    _("cancel"),
    (S.DRAFT, S.SUBMITTED, S.MODIFICATION_REQUESTED, S.APPROVED),
    S.CANCELLED,
    APPLICANT_AND_AUTHORITY,
    before_start_only=True,
)
REVOKE = Transition(
    "revoke", _("revoke"), (S.APPROVED, S.IN_PROGRESS), S.REVOKED, AUTHORITY_ONLY, comment_required=True
)
APPROVE_EMERGENCY = Transition(
    "approve_emergency",
    _("approve emergency works retroactively"),
    (S.IN_PROGRESS, S.COMPLETED),
    S.APPROVED,
    AUTHORITY_ONLY,
    emergency_only=True,
    keeps_status=True,
    conflict_guard=True,
    decides=True,
)
REFUSE_EMERGENCY = Transition(
    "refuse_emergency",
    _("refuse emergency works retroactively"),
    (S.IN_PROGRESS, S.COMPLETED),
    S.REFUSED,
    AUTHORITY_ONLY,
    comment_required=True,
    emergency_only=True,
    decides=True,
)

TRANSITIONS: tuple[Transition, ...] = (
    SUBMIT,
    RESUBMIT,
    REQUEST_MODIFICATION,
    APPROVE,
    REFUSE,
    START,
    COMPLETE,
    CANCEL,
    REVOKE,
    APPROVE_EMERGENCY,
    REFUSE_EMERGENCY,
)

# Creation is recorded as a step from no status. An applicant (or the authority) creates a draft, or a
# draft and submits it at once (two history rows); emergency works are created in progress.
CREATE = Transition("create", _("create"), ("",), S.DRAFT, APPLICANT_AND_AUTHORITY)
CREATE_EMERGENCY = Transition(
    "create_emergency", _("report emergency works"), ("",), S.IN_PROGRESS, APPLICANT_AND_AUTHORITY, submits=True
)
INITIAL_STATUSES = (S.DRAFT, S.SUBMITTED)
MSG_INITIAL_STATUS = _(
    "A new roadwork starts as 'draft' or 'submitted' (emergency works: 'in_progress'); "
    "later steps go through /transition/."
)
MSG_EMERGENCY_STATUS = _("Emergency works are in progress from the start: leave out the status or send 'in_progress'.")
MSG_EMERGENCY_NOT_NOW = _("Emergency works must have started, or start within {hours} hours.")
EMERGENCY_START_AHEAD_HOURS = 2

_BY_NAME = {t.name: t for t in (*TRANSITIONS, CREATE, CREATE_EMERGENCY)}


def label_of(name: str) -> str:
    """The label of a recorded step (RoadworkTransition.action)."""
    transition = _BY_NAME.get(name)
    return str(transition.label) if transition else name


# Conflicts of these severities and statuses must be overridden to approve.
BLOCKING_SEVERITIES = ("error",)
BLOCKING_CONFLICT_STATUSES = (ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED)


def takers(user: User | None, roadwork: Roadwork) -> set[Taker]:
    """The roles in which this user may act on this work (None is the system)."""
    if user is None:
        return {Taker.SYSTEM}
    roles: set[Taker] = set()
    if user.is_authority:
        roles.add(Taker.AUTHORITY)
    if user.is_applicant and user.organisation_id == roadwork.organisation_id:
        roles.add(Taker.APPLICANT)
    return roles


def is_undecided_emergency(roadwork: Roadwork) -> bool:
    return roadwork.is_emergency and roadwork.decided_at is None


def awaiting_decision_q() -> Q:
    """Works the authority still has to decide: submitted applications and undecided emergency works."""
    return Q(status=S.SUBMITTED) | Q(
        is_emergency=True, decided_at__isnull=True, status__in=[S.IN_PROGRESS, S.COMPLETED]
    )


def is_awaiting_decision(roadwork: Roadwork) -> bool:
    return roadwork.status == S.SUBMITTED or (
        is_undecided_emergency(roadwork) and roadwork.status in (S.IN_PROGRESS, S.COMPLETED)
    )


def overdue_q(today: date) -> Q:
    """Awaiting a decision, and the decision day (local) has passed."""
    return awaiting_decision_q() & Q(decision_due__lt=today)


def is_overdue(roadwork: Roadwork, today: date) -> bool:
    return is_awaiting_decision(roadwork) and roadwork.decision_due is not None and roadwork.decision_due < today


def _matches(transition: Transition, roadwork: Roadwork) -> bool:
    if roadwork.status not in transition.sources:
        return False
    return not transition.emergency_only or is_undecided_emergency(roadwork)


def _label(status: str) -> str:
    return str(S(status).label) if status in S.values else status


def _who(allowed: frozenset[Taker]) -> str:
    return str(_(" or ")).join(str(WHO[taker]) for taker in Taker if taker in allowed)


def resolve(*, user: User | None, roadwork: Roadwork, to: str) -> Transition:
    """The step that takes this work to `to`, if it exists and this user may take it."""
    if to not in S.values:
        choices = ", ".join(S.values)
        raise ValidationError({"to": [str(MSG_UNKNOWN_STATUS).format(to=to, choices=choices)]})
    if not takers(user, roadwork):
        raise PermissionDenied(MSG_NO_ROLE)
    transition = next((t for t in TRANSITIONS if t.to == to and _matches(t, roadwork)), None)
    if transition is None:
        raise TransitionError(str(MSG_NOT_POSSIBLE).format(current=_label(roadwork.status), target=_label(to)))
    if not takers(user, roadwork) & transition.takers:
        raise PermissionDenied(str(MSG_NOT_ALLOWED).format(who=_who(transition.takers), step=transition.label))
    return transition


def blocking_conflicts(roadwork: Roadwork) -> list[int]:
    return list(
        Conflict.objects.filter(
            Q(roadwork_a_id=roadwork.pk) | Q(roadwork_b_id=roadwork.pk),
            severity__in=BLOCKING_SEVERITIES,
            status__in=BLOCKING_CONFLICT_STATUSES,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def check(
    *,
    transition: Transition,
    user: User | None,
    roadwork: Roadwork,
    comment: str,
    override_reason: str,
    now: datetime,
) -> list[int]:
    """Raise if the step may not be taken now; return the open conflicts an override lets pass."""
    if transition.comment_required and not comment.strip():
        raise ValidationError({"comment": [str(MSG_COMMENT_REQUIRED).format(step=transition.label)]})
    period = roadwork.period
    if transition.before_start_only and period.lower <= now:
        start = period.lower.isoformat()
        raise TransitionError(str(MSG_STARTED).format(start=start))
    if transition.submits and transition is not CREATE_EMERGENCY and period.upper <= now:
        raise TransitionError(str(MSG_PERIOD_ENDED))
    if transition is CREATE_EMERGENCY and period.lower > now + timedelta(hours=EMERGENCY_START_AHEAD_HOURS):
        raise TransitionError(str(MSG_EMERGENCY_NOT_NOW).format(hours=EMERGENCY_START_AHEAD_HOURS))
    if user is None:
        # The system acts on the clock only; a person may report an earlier start or end.
        if transition is START and period.lower > now:
            raise TransitionError(str(MSG_NOT_STARTED_YET))
        if transition is COMPLETE and period.upper > now:
            raise TransitionError(str(MSG_NOT_ENDED_YET))
    overridden: list[int] = []
    if transition.conflict_guard:
        overridden = blocking_conflicts(roadwork)
        if overridden and not override_reason.strip():
            raise TransitionError(str(MSG_OVERRIDE_REQUIRED).format(count=len(overridden)), conflicts=overridden)
    return overridden


def available(*, user: User | None, roadwork: Roadwork, now: datetime) -> list[Transition]:
    """The steps this user could take now (comments and conflict overrides aside), for offering them."""
    roles = takers(user, roadwork)
    return [
        t
        for t in TRANSITIONS
        if _matches(t, roadwork) and roles & t.takers and not (t.before_start_only and roadwork.period.lower <= now)
    ]


def initial(*, status: str | None, is_emergency: bool) -> list[Transition]:
    """The steps a new work takes on creation, in order."""
    if is_emergency:
        if status not in (None, S.IN_PROGRESS):
            raise ValidationError({"status": [MSG_EMERGENCY_STATUS]})
        return [CREATE_EMERGENCY]
    if status in (None, S.DRAFT):
        return [CREATE]
    if status == S.SUBMITTED:
        return [CREATE, SUBMIT]
    raise ValidationError({"status": [MSG_INITIAL_STATUS]})


# --- Conflicts -----------------------------------------------------------------------------------
# open ──acknowledge──▶ acknowledged ──accept (authority, reason)──▶ accepted
#   └─────────────accept (authority, reason)──────────────────────────▲
# acknowledged, accepted ──reopen (authority)──▶ open
# Detection alone sets 'resolved' (the works no longer collide) and reopens a resolved conflict that
# holds again (services._UPSERT_AND_RESOLVE_SQL).


@dataclass(frozen=True)
class ConflictTransition:
    name: str
    sources: tuple[str, ...]
    to: str
    takers: frozenset[Taker]
    reason_required: bool = False


C = ConflictStatus
CONFLICT_TRANSITIONS: tuple[ConflictTransition, ...] = (
    ConflictTransition("acknowledge", (C.OPEN,), C.ACKNOWLEDGED, APPLICANT_AND_AUTHORITY),
    ConflictTransition("accept", (C.OPEN, C.ACKNOWLEDGED), C.ACCEPTED, AUTHORITY_ONLY, reason_required=True),
    ConflictTransition("reopen", (C.ACKNOWLEDGED, C.ACCEPTED), C.OPEN, AUTHORITY_ONLY),
)


def conflict_takers(user: User, conflict: Conflict) -> set[Taker]:
    """The authority; an applicant whose organisation runs either side."""
    roles: set[Taker] = set()
    if user.is_authority:
        roles.add(Taker.AUTHORITY)
    if user.is_applicant:
        organisations = {conflict.roadwork_a.organisation_id}
        if conflict.roadwork_b_id is not None:
            organisations.add(conflict.roadwork_b.organisation_id)
        if user.organisation_id in organisations:
            roles.add(Taker.APPLICANT)
    return roles


def resolve_conflict(*, user: User, conflict: Conflict, to: str, reason: str) -> ConflictTransition:
    if to not in C.values:
        choices = ", ".join(C.values)
        raise ValidationError({"status": [str(MSG_CONFLICT_UNKNOWN_STATUS).format(to=to, choices=choices)]})
    if to == C.RESOLVED:
        raise ValidationError({"status": [MSG_CONFLICT_RESOLVED_BY_DETECTION]})
    transition = next((t for t in CONFLICT_TRANSITIONS if t.to == to and conflict.status in t.sources), None)
    if transition is None:
        current, target = C(conflict.status).label, C(to).label
        raise TransitionError(str(MSG_CONFLICT_NOT_POSSIBLE).format(current=current, target=target))
    if not conflict_takers(user, conflict) & transition.takers:
        raise PermissionDenied(str(MSG_CONFLICT_NOT_ALLOWED).format(who=_who(transition.takers), target=C(to).label))
    if transition.reason_required and not reason.strip():
        raise ValidationError({"reason": [MSG_CONFLICT_REASON_REQUIRED]})
    return transition
