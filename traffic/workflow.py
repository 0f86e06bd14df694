"""The incident lifecycle: the one place that says which status may follow which, and which role may take each step.

    reported ──confirm──▶ confirmed ──clear──▶ cleared ──reopen──▶ confirmed
    reported ──clear──▶ cleared
    reported, confirmed ──cancel──▶ cancelled (a false report) ──reopen──▶ reported

Decisions, and why:

- *Clear straight from reported.* A breakdown towed away before anyone confirmed it was still real and is over;
  making the officer confirm first would record a confirmation time that never happened.
- *Reopen, with a reason.* The staff list clears an incident with one tap and asks nothing back, because a
  mistaken tap can be undone; and an incident can flare up again (the spill reappears once the binder is swept
  away). A reopened incident keeps its id, accident data and history instead of being logged twice. Reopening
  needs a comment, so the history says why it came back.
- *Reopen is for the police and the control room only.* Reopening says "the road is blocked again right now",
  a fact only the people on the street or at the cameras can vouch for; the permit authority logs a new
  incident instead when it hears of one.
- *Where a reopen leads.* A cleared incident had been real, so it comes back confirmed; a cancelled one had been
  judged a false report, so it comes back as an unconfirmed report.

The services (traffic.services.incident_transition) apply these rules; traffic.permissions checks the roles.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import Role

from .models import IncidentStatus

INITIAL_STATUS = IncidentStatus.REPORTED

# Everyone who may log incidents may move them along; see traffic.permissions.can_log_incident.
STAFF_ROLES = frozenset({Role.POLICE, Role.CONTROL_ROOM, Role.AUTHORITY})
OPERATIONAL_ROLES = frozenset({Role.POLICE, Role.CONTROL_ROOM})


@dataclass(frozen=True)
class Transition:
    name: str
    source: IncidentStatus
    target: IncidentStatus
    roles: frozenset[str]
    label: Promise
    comment_required: bool = False


REPORTED, CONFIRMED = IncidentStatus.REPORTED, IncidentStatus.CONFIRMED
CLEARED, CANCELLED = IncidentStatus.CLEARED, IncidentStatus.CANCELLED

TRANSITIONS: tuple[Transition, ...] = (
    Transition("confirm", REPORTED, CONFIRMED, STAFF_ROLES, _("Confirm")),
    Transition("clear", REPORTED, CLEARED, STAFF_ROLES, _("Clear")),
    Transition("clear", CONFIRMED, CLEARED, STAFF_ROLES, _("Clear")),
    Transition("cancel", REPORTED, CANCELLED, STAFF_ROLES, _("False report")),
    Transition("cancel", CONFIRMED, CANCELLED, STAFF_ROLES, _("False report")),
    Transition("reopen", CLEARED, CONFIRMED, OPERATIONAL_ROLES, _("Reopen"), comment_required=True),
    Transition("reopen", CANCELLED, REPORTED, OPERATIONAL_ROLES, _("Reopen"), comment_required=True),
)

_BY_STEP = {(t.source, t.target): t for t in TRANSITIONS}


def transition_between(source: str, target: str) -> Transition | None:
    """The step from one status to another, or None when the lifecycle has no such step."""
    return _BY_STEP.get((IncidentStatus(source), IncidentStatus(target)))


def transitions_from(source: str) -> list[Transition]:
    return [t for t in TRANSITIONS if t.source == source]
