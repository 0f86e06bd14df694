"""Conflicts as work: acknowledge, accept with a reason, reopen; 'resolved' is detection's alone."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, Role, User
from roadworks import workflow
from roadworks.models import Conflict, ConflictStatus, RoadworkStatus
from roadworks.services import conflicts_sweep
from tests.conftest import KAISERRING_NEARBY, line, make_roadwork

pytestmark = pytest.mark.django_db

C = ConflictStatus


@pytest.fixture
def conflict(stadtwerke, telekom) -> Conflict:
    """alice's (Stadtwerke) and erin's (Telekom) submitted works collide on Kaiserring."""
    make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)
    make_roadwork(telekom, status=RoadworkStatus.SUBMITTED, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    return Conflict.objects.get()


def set_status(client, conflict: Conflict, status: str, **body):
    return client.post(f"/api/v1/conflicts/{conflict.pk}/status/", {"status": status, **body}, format="json")


@pytest.mark.parametrize("persona", ["alice", "erin", "bob"])
def test_either_side_and_the_authority_acknowledge(api, request, conflict, persona):
    user = request.getfixturevalue(persona)
    response = set_status(api(user), conflict, C.ACKNOWLEDGED, reason="Wir stimmen uns ab.")
    assert response.status_code == 200, response.json()
    properties = response.json()["properties"]
    assert properties["status"] == C.ACKNOWLEDGED
    assert properties["status_changed_by"] == persona
    assert properties["status_changed_at"] is not None
    conflict.refresh_from_db()
    assert (conflict.status, conflict.reason) == (C.ACKNOWLEDGED, "Wir stimmen uns ab.")
    assert conflict.status_changed_by == user


def test_an_applicant_of_a_third_organisation_does_not_see_the_conflict(api, conflict):
    third = Organisation.objects.create(name="Dritte GmbH")
    frank = User.objects.create_user("frank", password="pw-frank-1", organisation=third, role=Role.APPLICANT)
    assert set_status(api(frank), conflict, C.ACKNOWLEDGED).status_code == 404


@pytest.mark.parametrize(("persona", "code"), [("carol", 403), ("dave", 404)])
def test_police_see_conflicts_but_do_not_work_on_them_and_others_do_not_see_them(api, request, conflict, persona, code):
    assert set_status(api(request.getfixturevalue(persona)), conflict, C.ACKNOWLEDGED).status_code == code
    assert Conflict.objects.get().status == C.OPEN


def test_anonymous_users_cannot_change_a_conflict(api, conflict):
    assert set_status(api(None), conflict, C.ACKNOWLEDGED).status_code == 401


def test_only_the_authority_accepts_and_only_with_a_reason(api, alice, bob, conflict):
    assert set_status(api(alice), conflict, C.ACCEPTED, reason="passt").status_code == 403
    without = set_status(api(bob), conflict, C.ACCEPTED, reason="  ")
    assert without.status_code == 400
    assert without.json()["reason"] == [str(workflow.MSG_CONFLICT_REASON_REQUIRED)]
    assert Conflict.objects.get().status == C.OPEN

    response = set_status(api(bob), conflict, C.ACCEPTED, reason="Gemeinsame Baugrube vereinbart.")

    assert response.status_code == 200
    assert response.json()["properties"]["reason"] == "Gemeinsame Baugrube vereinbart."


def test_an_acknowledged_conflict_can_be_accepted(api, alice, bob, conflict):
    set_status(api(alice), conflict, C.ACKNOWLEDGED)
    assert set_status(api(bob), conflict, C.ACCEPTED, reason="ok").status_code == 200


def test_nobody_marks_a_conflict_resolved_by_hand(api, bob, conflict):
    response = set_status(api(bob), conflict, C.RESOLVED)
    assert response.status_code == 400
    assert response.json()["status"] == [str(workflow.MSG_CONFLICT_RESOLVED_BY_DETECTION)]


def test_impossible_steps_answer_409(api, alice, bob, conflict):
    set_status(api(bob), conflict, C.ACCEPTED, reason="ok")
    response = set_status(api(alice), conflict, C.ACKNOWLEDGED)
    assert response.status_code == 409
    assert response.json()["detail"] == str(workflow.MSG_CONFLICT_NOT_POSSIBLE).format(
        current=C.ACCEPTED.label, target=C.ACKNOWLEDGED.label
    )


def test_the_authority_reopens_and_the_reason_goes(api, alice, bob, conflict):
    set_status(api(bob), conflict, C.ACCEPTED, reason="ok")
    assert set_status(api(alice), conflict, C.OPEN).status_code == 403
    response = set_status(api(bob), conflict, C.OPEN)
    assert response.status_code == 200
    conflict.refresh_from_db()
    assert (conflict.status, conflict.reason) == (C.OPEN, "")


def test_a_resolved_conflict_cannot_be_worked_on(api, bob, conflict):
    Conflict.objects.update(status=C.RESOLVED)
    assert set_status(api(bob), conflict, C.ACKNOWLEDGED).status_code == 409


@pytest.mark.parametrize("body", [{"status": "pending"}, {"status": "accepted", "reason": "x", "colour": "red"}, {}])
def test_bad_input_is_refused_with_400(api, bob, conflict, body):
    response = api(bob).post(f"/api/v1/conflicts/{conflict.pk}/status/", body, format="json")
    assert response.status_code == 400
    assert Conflict.objects.get().status == C.OPEN


def test_detection_keeps_an_acknowledged_status(api, alice, conflict):
    set_status(api(alice), conflict, C.ACKNOWLEDGED)
    conflicts_sweep()
    assert Conflict.objects.get().status == C.ACKNOWLEDGED


def test_the_conflict_list_filters_by_status(api, bob, conflict):
    set_status(api(bob), conflict, C.ACKNOWLEDGED)
    assert len(api(bob).get("/api/v1/conflicts/?status=open").json()["features"]) == 0
    assert len(api(bob).get("/api/v1/conflicts/?status=acknowledged,accepted").json()["features"]) == 1


# --- The admin follows the same rules --------------------------------------------------------------


@pytest.fixture
def admin_web(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root-1"))
    return client


def test_the_admin_cannot_mark_a_conflict_resolved_nor_accept_without_reason(admin_web, conflict):
    url = reverse("admin:roadworks_conflict_change", args=[conflict.pk])
    resolved = admin_web.post(url, {"status": C.RESOLVED, "reason": "", "_save": "Sichern"})
    no_reason = admin_web.post(url, {"status": C.ACCEPTED, "reason": "", "_save": "Sichern"})
    assert resolved.status_code == 200 and no_reason.status_code == 200  # the form again, with errors
    assert Conflict.objects.get().status == C.OPEN
    accepted = admin_web.post(url, {"status": C.ACCEPTED, "reason": "Koordiniert.", "_save": "Sichern"})
    assert accepted.status_code == 302
    conflict.refresh_from_db()
    assert conflict.status == C.ACCEPTED and conflict.status_changed_by.username == "root"


def test_the_api_names_rule_severity_status_and_layer_for_people_in_the_requests_language(api, bob, conflict):
    from django.utils import translation

    from roadworks import rules

    german = api(bob).get(f"/api/v1/conflicts/{conflict.pk}/").json()["properties"]
    english = api(bob).get(f"/api/v1/conflicts/{conflict.pk}/", HTTP_ACCEPT_LANGUAGE="en").json()["properties"]

    with translation.override("de"):
        assert german["rule"] == conflict.rule and german["rule_label"] == str(rules.get(conflict.rule).name)
    assert german["rule_label"] != english["rule_label"]
    assert (german["severity"], german["severity_label"]) == ("error", "Fehler")
    assert (german["status"], german["status_label"]) == ("open", "Offen")
    assert german["layer_label"] == ""  # a pair of roadworks: no layer
    assert (english["severity_label"], english["status_label"]) == ("Error", "Open")
