"""E-mails about conflicts and decisions, sent by Celery tasks after the detection or decision has committed.

New conflicts: a conflict seen for the first time, or reopened by detection, starts an open episode
(Conflict.opened_at, set by conflict_sql). conflicts_notify() takes every episode not notified yet, mails it and
stamps notified_at, under row locks (SKIP LOCKED): two workers never mail the same episode, and an episode is
mailed once. A batch goes out as one digest per recipient: one mail to each applicant organisation listing its
new conflicts (both organisations of a pair get their own mail, so neither sees the other's address), and one to
the coordinators (active users with the authority role and an e-mail address) listing all. A conflict that is no
longer open when the task runs (resolved or acknowledged meanwhile) is stamped without a mail.

Decisions: approve, refuse, request modification and revoke (and the retroactive decisions on emergency works)
are mailed to the applicant organisation once per step (RoadworkTransition.notified_at).

If the mail server fails, the transaction rolls back, nothing is stamped and the task retries: a failure part-way
through a digest batch can repeat the mails already sent in it, never lose one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Func, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation, Role, User
from jobs import outbox

from .models import (
    Conflict,
    ConflictLayer,
    ConflictStatus,
    RoadworkTransition,
)

logger = logging.getLogger(__name__)

MSG_SUBJECT_ONE = _("New conflict {rule}: {a} / {b}")
MSG_SUBJECT_MANY = _("{count} new conflicts")
MSG_INTRO = _(
    "AUMAn found these conflicts between roadworks (new, or back after they had been resolved). "
    "Please check them and coordinate the works:"
)
MSG_WHEN = _("When: {start} – {end}")
MSG_DECIDED = _("Decided: {at}")
MSG_AUTHORITY_COMMENT = _("Comment of the authority:")

# Workflow steps (workflow.Transition.name) that decide an application: mailed to the applicant organisation
# (DECISION_TEXTS below says how).
DECISION_ACTIONS = frozenset(
    {"approve", "refuse", "request_modification", "revoke", "approve_emergency", "refuse_emergency"}
)
# One task run mails at most this many conflicts; the rest wait for the next run (enqueued again at once).
BATCH_SIZE = 500


def coordinator_emails() -> list[str]:
    """The permit authority's coordinators: active users with the authority role and an address."""
    return sorted(
        set(User.objects.filter(role=Role.AUTHORITY, is_active=True).exclude(email="").values_list("email", flat=True))
    )


def _site_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _conflict_url(conflict: Conflict) -> str:
    try:
        return _site_url(reverse("roadworks:conflict", args=[conflict.pk]))
    except NoReverseMatch:
        return _site_url(f"/api/v1/conflicts/{conflict.pk}/")


def _roadwork_url(roadwork_id) -> str:
    try:
        return _site_url(reverse("roadworks:detail", args=[roadwork_id]))
    except NoReverseMatch:
        return _site_url(f"/api/v1/roadworks/{roadwork_id}/")


def _moment(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else "–"


# --- Conflicts -------------------------------------------------------------------------------------------------


def _layer_item_names(conflicts: list[Conflict]) -> dict[tuple[str, str], str]:
    """The names of the layer items on the other side, as the conflict pages show them (page_selectors.layer_items:
    a corridor's name, an external source's item by its title, ...), so a mail never names an item by its id alone."""
    from .page_selectors import layer_items

    keys = {(c.layer, c.layer_object_id) for c in conflicts if c.roadwork_b_id is None}
    return {key: item.name for key, item in layer_items(keys).items()}


def _describe(conflict: Conflict, names: dict[tuple[str, str], str]) -> str:
    from . import rules

    try:
        rule_name = str(rules.get(conflict.rule).name)
    except KeyError:
        rule_name = conflict.rule
    a = conflict.roadwork_a
    lines = [
        f"{conflict.rule} {rule_name} ({conflict.get_severity_display()})",
        f"  {a.reference} {a.title} ({a.organisation.name})",
    ]
    if conflict.roadwork_b_id is not None:
        b = conflict.roadwork_b
        lines.append(f"  ↔ {b.reference} {b.title} ({b.organisation.name})")
    else:
        label = ConflictLayer(conflict.layer).label if conflict.layer in ConflictLayer.values else conflict.layer
        name = names.get((conflict.layer, conflict.layer_object_id), conflict.layer_object_id)
        lines.append(f"  ↔ {label}: {name}")
    period = conflict.overlap_period
    lines.append("  " + str(MSG_WHEN).format(start=_moment(period.lower), end=_moment(period.upper)))
    lines.append("  " + _conflict_url(conflict))
    return "\n".join(lines)


def _conflict_mail(conflicts: list[Conflict], names: dict[tuple[str, str], str]) -> tuple[str, str]:
    if len(conflicts) == 1:
        conflict = conflicts[0]
        other = conflict.roadwork_b.reference if conflict.roadwork_b_id else ConflictLayer(conflict.layer).label
        subject = str(MSG_SUBJECT_ONE).format(rule=conflict.rule, a=conflict.roadwork_a.reference, b=other)
    else:
        subject = str(MSG_SUBJECT_MANY).format(count=len(conflicts))
    body = str(MSG_INTRO) + "\n\n" + "\n\n".join(_describe(conflict, names) for conflict in conflicts) + "\n"
    return f"[AUMAn] {subject}", body


def pending_conflicts_q() -> Q:
    """Open episodes not notified yet."""
    return Q(opened_at__isnull=False) & (Q(notified_at__isnull=True) | Q(notified_at__lt=F("opened_at")))


def conflicts_notify() -> int:
    """Mail the conflicts opened since the last run; returns the number of mails sent."""
    with transaction.atomic():
        pending = list(
            Conflict.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pending_conflicts_q())
            .select_related("roadwork_a__organisation", "roadwork_b__organisation")
            .order_by("opened_at", "id")[:BATCH_SIZE]
        )
        if not pending:
            return 0
        severities = set(settings.AUMAN_CONFLICT_NOTIFY_SEVERITIES)
        to_mail = [c for c in pending if c.status == ConflictStatus.OPEN and c.severity in severities]
        sent = _send_conflict_mails(to_mail)
        # The database's clock, which also stamped opened_at (conflict_sql): the two compare whatever the app's clock.
        Conflict.objects.filter(pk__in=[c.pk for c in pending]).update(notified_at=Func(function="clock_timestamp"))
        more = len(pending) == BATCH_SIZE
    if more:
        conflicts_notify_on_commit()
    logger.info("conflict notices: %d conflicts, %d mails", len(to_mail), sent)
    return sent


def _send_conflict_mails(conflicts: list[Conflict]) -> int:
    if not conflicts:
        return 0
    by_organisation: dict[int, list[Conflict]] = {}
    organisations: dict[int, Organisation] = {}
    for conflict in conflicts:
        sides = [conflict.roadwork_a] + ([conflict.roadwork_b] if conflict.roadwork_b_id else [])
        for roadwork in sides:
            organisations[roadwork.organisation_id] = roadwork.organisation
            group = by_organisation.setdefault(roadwork.organisation_id, [])
            if conflict not in group:
                group.append(conflict)
    names = _layer_item_names(conflicts)
    sent = 0
    with translation.override(settings.LANGUAGE_CODE):
        for organisation_id, group in by_organisation.items():
            address = organisations[organisation_id].email
            if address:
                subject, body = _conflict_mail(group, names)
                sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=False)
        coordinators = coordinator_emails()
        if coordinators:
            subject, body = _conflict_mail(conflicts, names)
            sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, coordinators, fail_silently=False)
    return sent


def conflicts_notify_on_commit() -> None:
    """Have new conflicts mailed once the current transaction commits (run_rule_sql calls it)."""
    from .tasks import conflicts_notify as task

    # Through the outbox: committed with the detection, sent when the broker is there (jobs/outbox.py).
    outbox.enqueue(task)


# --- Decisions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionText:
    subject: Promise
    lead: Promise


DECISION_TEXTS = {
    "approve": DecisionText(_("approved"), _("The permit authority has approved your application.")),
    "approve_emergency": DecisionText(
        _("emergency works approved"), _("The permit authority has approved your emergency works.")
    ),
    "refuse": DecisionText(_("refused"), _("The permit authority has refused your application.")),
    "refuse_emergency": DecisionText(
        _("emergency works refused"), _("The permit authority has refused your emergency works.")
    ),
    "request_modification": DecisionText(
        _("modification requested"),
        _("The permit authority asks you to modify your application and submit it again."),
    ),
    "revoke": DecisionText(_("permit revoked"), _("The permit authority has revoked the permit for these works.")),
}


def decision_notify(*, transition_id: int) -> int:
    """Mail a decision to the applicant organisation, once; returns the number of mails sent (0 or 1)."""
    with transaction.atomic():
        step = (
            RoadworkTransition.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("roadwork__organisation")
            .filter(pk=transition_id, notified_at__isnull=True)
            .first()
        )
        if step is None or step.action not in DECISION_ACTIONS:
            return 0
        address = step.roadwork.organisation.email
        sent = 0
        if address:
            with translation.override(settings.LANGUAGE_CODE):
                text = DECISION_TEXTS[step.action]
                roadwork = step.roadwork
                subject = f"[AUMAn] {roadwork.reference}: {text.subject}"
                lines = [str(text.lead), "", f"{roadwork.reference} {roadwork.title}"]
                lines.append(str(MSG_DECIDED).format(at=_moment(step.at)))
                if step.comment:
                    lines += ["", str(MSG_AUTHORITY_COMMENT), step.comment]
                lines += ["", _roadwork_url(roadwork.pk)]
                sent = send_mail(subject, "\n".join(lines) + "\n", settings.DEFAULT_FROM_EMAIL, [address])
        step.notified_at = timezone.now()
        step.save(update_fields=["notified_at"])
    return sent


def decision_notify_on_commit(*, transition_id: int) -> None:
    from .tasks import decision_notify as task

    outbox.enqueue(task, transition_id)
