"""E-mails about new conflicts and decisions: after the commit, from a Celery task, once per open episode.

Django's locmem backend (pytest-django's mailoutbox) catches what would be sent."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.gis.geos import LineString
from django.test import override_settings
from django.utils import translation

from accounts.models import Role, User
from roadworks import notifications, services, tasks
from roadworks.models import Conflict, ConflictStatus, Roadwork, RoadworkStatus, RoadworkTransition
from tests.conftest import KAISERRING_NEARBY, NECKARAU, line, make_roadwork
from tests.roadworks.helpers import from_now

pytestmark = pytest.mark.django_db


@pytest.fixture
def addresses(stadtwerke, telekom, bob):
    stadtwerke.email = "baustellen@stadtwerke.example"
    stadtwerke.save()
    telekom.email = "trasse@telekom.example"
    telekom.save()
    bob.email = "bob@stadt.example"
    bob.save()
    # A coordinator who left and one without an address get nothing.
    User.objects.create_user("old", email="old@stadt.example", role=Role.AUTHORITY, is_active=False)
    User.objects.create_user("noaddress", role=Role.AUTHORITY)


@pytest.fixture
def colliding(stadtwerke, telekom) -> tuple[Roadwork, Roadwork]:
    first = make_roadwork(stadtwerke, reference="BS-A")
    second = make_roadwork(telekom, reference="BS-B", geometry=line(KAISERRING_NEARBY))
    return first, second


def detect_and_capture(roadwork, capture) -> list:
    with capture(execute=False) as callbacks:
        services.conflicts_detect_all_for(roadwork_id=roadwork.pk)
    return callbacks


def test_a_new_conflict_is_mailed_after_the_commit_to_both_applicants_and_the_coordinators(
    addresses, colliding, mailoutbox, django_capture_on_commit_callbacks
):
    callbacks = detect_and_capture(colliding[0], django_capture_on_commit_callbacks)
    # Nothing is sent inside the detection transaction: only a task is queued for after the commit.
    assert mailoutbox == []
    assert len(callbacks) >= 1

    assert notifications.conflicts_notify() == 3
    recipients = sorted(tuple(mail.to) for mail in mailoutbox)
    assert recipients == [("baustellen@stadtwerke.example",), ("bob@stadt.example",), ("trasse@telekom.example",)]
    stadtwerke_mail = next(mail for mail in mailoutbox if mail.to == ["baustellen@stadtwerke.example"])
    assert stadtwerke_mail.subject.startswith("[AUMAn]")
    assert "C1" in stadtwerke_mail.subject and "BS-A" in stadtwerke_mail.subject and "BS-B" in stadtwerke_mail.subject
    assert "trasse@telekom.example" not in stadtwerke_mail.body
    assert notifications._conflict_url(Conflict.objects.get(rule="C1")) in stadtwerke_mail.body


def test_a_conflict_is_mailed_once_per_open_episode(addresses, colliding, mailoutbox):
    first, second = colliding
    services.conflicts_detect_all_for(roadwork_id=first.pk)
    notifications.conflicts_notify()
    sent = len(mailoutbox)

    # Running the task again, or detection again, sends nothing new.
    assert notifications.conflicts_notify() == 0
    services.conflicts_detect_all_for(roadwork_id=first.pk)
    assert notifications.conflicts_notify() == 0

    # Resolved, then colliding again: a new episode, mailed again.
    Roadwork.objects.filter(pk=second.pk).update(geometry=line(NECKARAU))
    services.conflicts_detect_all_for(roadwork_id=second.pk)
    assert notifications.conflicts_notify() == 0
    Roadwork.objects.filter(pk=second.pk).update(geometry=line(KAISERRING_NEARBY))
    services.conflicts_detect_all_for(roadwork_id=second.pk)
    assert Conflict.objects.get(rule="C1").status == ConflictStatus.OPEN
    assert notifications.conflicts_notify() == 3
    assert len(mailoutbox) == sent + 3


def test_detection_that_opens_nothing_queues_no_mail(addresses, colliding, django_capture_on_commit_callbacks):
    services.conflicts_detect_all_for(roadwork_id=colliding[0].pk)
    assert detect_and_capture(colliding[0], django_capture_on_commit_callbacks) == []


def test_a_conflict_settled_before_the_task_runs_is_not_mailed(addresses, colliding, mailoutbox):
    services.conflicts_detect_all_for(roadwork_id=colliding[0].pk)
    Conflict.objects.update(status=ConflictStatus.ACKNOWLEDGED)
    assert notifications.conflicts_notify() == 0
    assert mailoutbox == []
    assert not Conflict.objects.filter(notifications.pending_conflicts_q()).exists()


def test_several_new_conflicts_make_one_digest_per_recipient(addresses, stadtwerke, telekom, mailoutbox):
    make_roadwork(stadtwerke, reference="BS-A")
    make_roadwork(telekom, reference="BS-B", geometry=line(KAISERRING_NEARBY))
    make_roadwork(telekom, reference="BS-C")
    services.conflicts_sweep()
    assert Conflict.objects.count() == 3

    assert notifications.conflicts_notify() == 3
    coordinators = next(mail for mail in mailoutbox if mail.to == ["bob@stadt.example"])
    with translation.override(settings.LANGUAGE_CODE):
        assert coordinators.subject == "[AUMAn] " + str(notifications.MSG_SUBJECT_MANY).format(count=3)
    assert all(reference in coordinators.body for reference in ("BS-A", "BS-B", "BS-C"))


def test_an_organisation_without_an_address_gets_no_mail(stadtwerke, telekom, bob, colliding, mailoutbox):
    bob.email = "bob@stadt.example"
    bob.save()
    services.conflicts_detect_all_for(roadwork_id=colliding[0].pk)
    assert notifications.conflicts_notify() == 1
    assert mailoutbox[0].to == ["bob@stadt.example"]


def test_the_mailed_severities_are_a_setting(addresses, colliding, mailoutbox):
    services.conflicts_detect_all_for(roadwork_id=colliding[0].pk)
    with override_settings(AUMAN_CONFLICT_NOTIFY_SEVERITIES=["warning"]):
        assert notifications.conflicts_notify() == 0
    # The episode counts as handled: changing the setting later does not mail old news.
    assert notifications.conflicts_notify() == 0


def test_the_task_sends_the_mails(addresses, colliding, mailoutbox):
    services.conflicts_detect_all_for(roadwork_id=colliding[0].pk)
    assert tasks.conflicts_notify.apply().get() == 3


# --- Decisions -------------------------------------------------------------------------------------------------


@pytest.fixture
def application(addresses, stadtwerke) -> Roadwork:
    return make_roadwork(
        stadtwerke,
        reference="BS-2027-0001",
        status=RoadworkStatus.SUBMITTED,
        period=from_now(days=10),
        geometry=LineString(line(NECKARAU).coords, srid=25832),
    )


@pytest.mark.parametrize(
    ("to", "comment", "action"),
    [
        (RoadworkStatus.APPROVED, "", "approve"),
        (RoadworkStatus.REFUSED, "Zu lange Vollsperrung.", "refuse"),
        (RoadworkStatus.MODIFICATION_REQUESTED, "Bitte Verkehrszeichenplan nachreichen.", "request_modification"),
    ],
)
def test_a_decision_is_mailed_to_the_applicant_organisation(
    application, bob, to, comment, action, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.roadwork_transition(
            user=bob, roadwork_id=application.pk, to_status=to, comment=comment, expected_version=1
        )
    assert mailoutbox == [] and len(callbacks) == 2  # detection and the decision's mail, after the commit
    step = RoadworkTransition.objects.get(roadwork=application, to_status=to)

    assert notifications.decision_notify(transition_id=step.pk) == 1
    mail = mailoutbox[0]
    assert mail.to == ["baustellen@stadtwerke.example"]
    with translation.override(settings.LANGUAGE_CODE):
        assert mail.subject == f"[AUMAn] BS-2027-0001: {notifications.DECISION_TEXTS[action].subject}"
        assert str(notifications.DECISION_TEXTS[action].lead) in mail.body
    assert comment in mail.body
    # Once: a retried task sends nothing more.
    assert notifications.decision_notify(transition_id=step.pk) == 0
    assert len(mailoutbox) == 1


def test_a_revoked_permit_is_mailed(application, bob, mailoutbox):
    services.roadwork_transition(
        user=bob, roadwork_id=application.pk, to_status=RoadworkStatus.APPROVED, expected_version=1
    )
    services.roadwork_transition(
        user=bob, roadwork_id=application.pk, to_status=RoadworkStatus.REVOKED, comment="Gefahr", expected_version=2
    )
    step = RoadworkTransition.objects.get(roadwork=application, action="revoke")
    assert tasks.decision_notify.apply(args=[step.pk]).get() == 1
    assert "Gefahr" in mailoutbox[0].body


def test_steps_that_decide_nothing_are_not_mailed(application, alice, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.roadwork_transition(
            user=alice, roadwork_id=application.pk, to_status=RoadworkStatus.CANCELLED, expected_version=1
        )
    assert len(callbacks) == 1  # detection only
    step = RoadworkTransition.objects.get(roadwork=application, action="cancel")
    assert notifications.decision_notify(transition_id=step.pk) == 0
