"""The permit workflow through POST /transition/: every step per role, history, overrides, emergencies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from roadworks import workflow
from roadworks.models import Conflict, ConflictStatus, Roadwork, RoadworkCategory, RoadworkStatus, RoadworkTransition
from roadworks.services import MSG_NOT_ALLOWED_EDIT_STATUS, conflicts_sweep, roadwork_transition
from roadworks.workflow import MSG_STARTED
from tests.conftest import KAISERRING, KAISERRING_NEARBY, NECKARAU, feature, geojson_line, line, make_roadwork

from .helpers import from_now, period_json, transition

pytestmark = pytest.mark.django_db

S = RoadworkStatus

# Who may take which step on an ordinary (not emergency) work whose period lies ahead.
ALLOWED: dict[tuple[str, str], set[str]] = {
    (S.DRAFT, S.SUBMITTED): {"alice", "bob"},
    (S.MODIFICATION_REQUESTED, S.SUBMITTED): {"alice", "bob"},
    (S.SUBMITTED, S.MODIFICATION_REQUESTED): {"bob"},
    (S.SUBMITTED, S.APPROVED): {"bob"},
    (S.SUBMITTED, S.REFUSED): {"bob"},
    (S.MODIFICATION_REQUESTED, S.REFUSED): {"bob"},
    (S.APPROVED, S.IN_PROGRESS): {"alice", "bob"},
    (S.IN_PROGRESS, S.COMPLETED): {"alice", "bob"},
    (S.DRAFT, S.CANCELLED): {"alice", "bob"},
    (S.SUBMITTED, S.CANCELLED): {"alice", "bob"},
    (S.MODIFICATION_REQUESTED, S.CANCELLED): {"alice", "bob"},
    (S.APPROVED, S.CANCELLED): {"alice", "bob"},
    (S.APPROVED, S.REVOKED): {"bob"},
    (S.IN_PROGRESS, S.REVOKED): {"bob"},
}


def expected_code(source: str, target: str, persona: str) -> int:
    if persona == "carol":
        return 403  # police have no part in the permit workflow
    allowed = ALLOWED.get((source, target))
    if allowed is None:
        return 409
    return 200 if persona in allowed else 403


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
@pytest.mark.parametrize("target", list(S))
@pytest.mark.parametrize("source", list(S))
def test_it_allows_exactly_the_steps_of_the_state_machine(api, request, stadtwerke, source, target, persona):
    user = request.getfixturevalue(persona)
    work = make_roadwork(stadtwerke, status=source, period=from_now(days=10))

    response = transition(api(user), work, target, comment="Begründung")

    assert response.status_code == expected_code(source, target, persona), response.content
    work.refresh_from_db()
    history = list(work.transitions.values_list("from_status", "to_status", "by__username"))
    if response.status_code == 200:
        assert work.status == target
        assert work.version == 2
        assert history == [(source, target, persona)]
    else:
        assert work.status == source
        assert work.version == 1
        assert history == []


def test_every_step_the_table_allows_is_defined_in_the_workflow():
    defined = {(source, t.to) for t in workflow.TRANSITIONS if not t.emergency_only for source in t.sources}
    assert defined == set(ALLOWED)


def test_another_organisations_applicant_sees_a_public_work_but_cannot_move_it(api, erin, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=10))
    response = transition(api(erin), work, S.CANCELLED)
    assert response.status_code == 403
    assert response.json()["detail"] == str(workflow.MSG_NO_ROLE)


def test_another_organisations_applicant_does_not_even_find_a_draft(api, erin, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    assert transition(api(erin), work, S.SUBMITTED).status_code == 404


def test_anonymous_users_cannot_take_steps(api, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=10))
    assert transition(api(None), work, S.CANCELLED).status_code == 401


def test_a_step_for_someone_else_names_who_may_take_it(api, alice, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    response = transition(api(alice), work, S.APPROVED)
    assert response.status_code == 403
    expected = str(workflow.MSG_NOT_ALLOWED).format(
        who=workflow.WHO[workflow.Taker.AUTHORITY], step=workflow.APPROVE.label
    )
    assert response.json()["detail"] == expected


def test_an_impossible_step_answers_409_naming_both_statuses(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    response = transition(api(bob), work, S.APPROVED)
    assert response.status_code == 409
    assert response.json()["detail"] == str(workflow.MSG_NOT_POSSIBLE).format(
        current=S.DRAFT.label, target=S.APPROVED.label
    )


@pytest.mark.parametrize("target", [S.REFUSED, S.MODIFICATION_REQUESTED])
def test_refusing_and_requesting_a_modification_need_a_comment(api, bob, stadtwerke, target):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    response = transition(api(bob), work, target, comment="   ")
    assert response.status_code == 400
    assert "comment" in response.json()
    work.refresh_from_db()
    assert work.status == S.SUBMITTED and not work.transitions.exists()


def test_revoking_needs_a_comment_and_is_the_authoritys(api, alice, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1))
    assert transition(api(alice), work, S.REVOKED, comment="x").status_code == 403
    assert transition(api(bob), work, S.REVOKED).status_code == 400

    response = transition(api(bob), work, S.REVOKED, comment="Gefahr im Verzug: Absicherung mangelhaft.")

    assert response.status_code == 200
    row = RoadworkTransition.objects.get(roadwork=work)
    assert (row.action, row.from_status, row.to_status) == ("revoke", S.IN_PROGRESS, S.REVOKED)
    assert row.comment == "Gefahr im Verzug: Absicherung mangelhaft."


def test_cancelling_is_possible_only_before_the_start(api, alice, stadtwerke):
    started = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.05))
    ahead = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=0.05))

    refused = transition(api(alice), started, S.CANCELLED)
    accepted = transition(api(alice), ahead, S.CANCELLED)

    assert refused.status_code == 409
    # The message names the way out, revocation by the authority (German: the API's default language).
    with translation.override("de"):
        way_out = str(MSG_STARTED).rsplit(";", 1)[1].strip()
    assert refused.json()["detail"].endswith(way_out)
    assert accepted.status_code == 200
    assert S.CANCELLED not in transition_targets(api(alice), started)


def transition_targets(client, work: Roadwork) -> list[str]:
    return client.get(f"/api/v1/roadworks/{work.pk}/").json()["properties"]["allowed_transitions"]


def test_a_work_offers_the_steps_its_user_may_take(api, alice, bob, dave, stadtwerke):
    draft = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    submitted = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    approved = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=10))
    assert transition_targets(api(alice), draft) == [S.SUBMITTED, S.CANCELLED]
    assert transition_targets(api(alice), submitted) == [S.CANCELLED]
    assert transition_targets(api(bob), submitted) == [S.MODIFICATION_REQUESTED, S.APPROVED, S.REFUSED, S.CANCELLED]
    assert transition_targets(api(dave), approved) == []
    assert transition_targets(api(None), approved) == []


# --- History ----------------------------------------------------------------------------------


def test_the_history_records_creation_and_every_step_with_who_when_and_why(api, alice, bob):
    body = feature(geojson_line(KAISERRING), title="Gasleitung", period=period_json(from_now()), status="submitted")
    created = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert created.status_code == 201, created.json()
    work = Roadwork.objects.get(pk=created.json()["id"])
    before = timezone.now()
    transition(api(bob), work, S.MODIFICATION_REQUESTED, comment="Verkehrszeichenplan fehlt.")
    transition(api(alice), work, S.SUBMITTED, comment="Plan angehängt.")
    transition(api(bob), work, S.APPROVED)

    response = api(alice).get(f"/api/v1/roadworks/{work.pk}/history/")

    assert response.status_code == 200
    rows = response.json()
    assert [(r["action"], r["from_status"], r["to_status"], r["by"]) for r in rows] == [
        ("create", "", S.DRAFT, "alice"),
        ("submit", S.DRAFT, S.SUBMITTED, "alice"),
        ("request_modification", S.SUBMITTED, S.MODIFICATION_REQUESTED, "bob"),
        ("resubmit", S.MODIFICATION_REQUESTED, S.SUBMITTED, "alice"),
        ("approve", S.SUBMITTED, S.APPROVED, "bob"),
    ]
    assert rows[2]["comment"] == "Verkehrszeichenplan fehlt."
    assert rows[2]["by_organisation"] == "Straßenverkehrsbehörde"
    assert rows[0]["by_organisation"] == "Stadtwerke Mannheim"
    assert all(r["action_label"] for r in rows)
    assert rows[-1]["at"] >= before.isoformat()[:19]


def test_the_history_shows_system_steps_without_a_user(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.01))
    roadwork_transition(user=None, roadwork_id=work.pk, to_status=S.IN_PROGRESS, expected_version=1)
    rows = api(bob).get(f"/api/v1/roadworks/{work.pk}/history/").json()
    assert [(r["action"], r["by"], r["by_organisation"]) for r in rows] == [("start", None, None)]


@pytest.mark.parametrize(("persona", "code"), [("erin", 403), ("dave", 403), ("carol", 200), ("bob", 200)])
def test_the_history_of_a_public_work_is_for_the_authority_police_and_the_applicant(
    api, request, stadtwerke, persona, code
):
    work = make_roadwork(stadtwerke, status=S.APPROVED)
    response = api(request.getfixturevalue(persona)).get(f"/api/v1/roadworks/{work.pk}/history/")
    assert response.status_code == code


def test_anonymous_users_get_no_history(api, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED)
    assert api(None).get(f"/api/v1/roadworks/{work.pk}/history/").status_code == 401


# --- Versions and bad input -------------------------------------------------------------------


def test_a_stale_version_is_refused_with_412(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    Roadwork.objects.filter(pk=work.pk).update(version=3)
    response = transition(api(bob), work, S.REFUSED, version=2, comment="x")
    assert response.status_code == 412
    assert response.json()["current_version"] == 3


def test_a_step_without_a_version_is_refused_with_428(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    response = api(bob).post(f"/api/v1/roadworks/{work.pk}/transition/", {"to": "refused"}, format="json")
    assert response.status_code == 428


def test_the_version_may_come_as_if_match(api, alice, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    url = f"/api/v1/roadworks/{work.pk}/transition/"
    response = api(alice).post(url, {"to": "submitted"}, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 200
    assert response["ETag"] == '"2"'


def test_an_unknown_status_or_member_is_refused_with_400(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    unknown_status = transition(api(bob), work, "paused")
    unknown_member = transition(api(bob), work, S.APPROVED, colour="pink")
    assert unknown_status.status_code == 400
    assert unknown_status.json()["to"][0].startswith(str(workflow.MSG_UNKNOWN_STATUS).split("'")[0])
    assert unknown_member.status_code == 400 and "colour" in unknown_member.json()
    assert Roadwork.objects.get(pk=work.pk).status == S.SUBMITTED


def test_a_body_that_is_not_an_object_is_refused(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    response = api(bob).post(f"/api/v1/roadworks/{work.pk}/transition/", [1, 2], format="json")
    assert response.status_code == 400


# --- Creation and editing by status -------------------------------------------------------------


def test_creating_with_submitted_records_creation_and_submission(api, alice):
    body = feature(geojson_line(KAISERRING), title="x", period=period_json(from_now()), status="submitted")
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 201, response.json()
    work = Roadwork.objects.get()
    assert work.status == S.SUBMITTED and work.version == 1
    assert work.submitted_at is not None and work.decision_due is not None
    assert list(work.transitions.values_list("action", flat=True)) == ["create", "submit"]


def test_creating_without_a_status_gives_a_draft(api, alice):
    body = feature(geojson_line(KAISERRING), title="x", period=period_json(from_now()))
    assert api(alice).post("/api/v1/roadworks/", body, format="json").status_code == 201
    work = Roadwork.objects.get()
    assert work.status == S.DRAFT and work.submitted_at is None and work.decision_due is None
    assert list(work.transitions.values_list("action", "by__username")) == [("create", "alice")]


def test_works_whose_period_has_ended_cannot_be_submitted(api, alice, stadtwerke):
    body = feature(geojson_line(KAISERRING), title="x", period=period_json(from_now(days=-10)), status="submitted")
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["period"] == [str(workflow.MSG_PERIOD_ENDED)]
    draft = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=-10))
    assert transition(api(alice), draft, S.SUBMITTED).status_code == 409


@pytest.mark.parametrize(
    ("status", "code"),
    [(S.DRAFT, 200), (S.MODIFICATION_REQUESTED, 200), (S.SUBMITTED, 403), (S.APPROVED, 403), (S.REFUSED, 403)],
)
def test_an_applicant_edits_only_drafts_and_applications_sent_back(api, alice, stadtwerke, status, code):
    work = make_roadwork(stadtwerke, status=status, period=from_now(days=10))
    response = api(alice).patch(
        f"/api/v1/roadworks/{work.pk}/", {"properties": {"title": "Neu", "version": 1}}, format="json"
    )
    assert response.status_code == code
    if code == 403:
        assert response.json()["detail"] == str(MSG_NOT_ALLOWED_EDIT_STATUS).format(status=S(status).label)


def test_the_authority_edits_in_any_status(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=10))
    response = api(bob).patch(
        f"/api/v1/roadworks/{work.pk}/", {"properties": {"title": "Korrigiert", "version": 1}}, format="json"
    )
    assert response.status_code == 200


def test_a_step_enqueues_conflict_detection_on_commit(bob, stadtwerke, django_capture_on_commit_callbacks):
    # Submitting is no decision: detection is all that follows (decisions also mail the applicant, see
    # test_notifications.py).
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    with django_capture_on_commit_callbacks() as callbacks:
        roadwork_transition(user=bob, roadwork_id=work.pk, to_status=S.SUBMITTED, expected_version=1)
    assert len(callbacks) == 1


# --- Approving with open conflicts --------------------------------------------------------------


@pytest.fixture
def colliding(stadtwerke, telekom):
    """Two submitted applications on Kaiserring at the same time: an error-level C1 conflict."""
    first = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    second = make_roadwork(telekom, status=S.SUBMITTED, period=from_now(days=12), geometry=line(KAISERRING_NEARBY))
    return first, second


def test_approving_with_an_open_error_conflict_needs_an_override_reason(api, bob, colliding):
    first, _second = colliding
    # No detection has run yet: approving runs it first, so the decision sees the conflict.
    assert not Conflict.objects.exists()

    response = transition(api(bob), first, S.APPROVED)

    assert response.status_code == 409
    conflict = Conflict.objects.get()
    assert response.json()["conflicts"] == [conflict.pk]
    assert response.json()["detail"] == str(workflow.MSG_OVERRIDE_REQUIRED).format(count=1)
    first.refresh_from_db()
    assert first.status == S.SUBMITTED and not first.transitions.exists()


def test_an_override_reason_approves_records_the_override_and_accepts_the_conflict(api, bob, colliding):
    first, _second = colliding
    reason = "Arbeiten im Wechsel: Stadtwerke tagsüber, Telekom nachts."

    response = transition(api(bob), first, S.APPROVED, comment="Mit Auflagen.", override_reason=reason)

    assert response.status_code == 200, response.json()
    row = RoadworkTransition.objects.get(roadwork=first)
    assert row.override is True
    assert row.comment == f"Mit Auflagen.\n\n{reason}"
    conflict = Conflict.objects.get()
    assert (conflict.status, conflict.reason, conflict.status_changed_by) == (ConflictStatus.ACCEPTED, reason, bob)


def test_an_acknowledged_conflict_still_blocks_but_an_accepted_one_does_not(api, bob, colliding):
    first, _second = colliding
    conflicts_sweep()
    Conflict.objects.update(status=ConflictStatus.ACKNOWLEDGED)
    assert transition(api(bob), first, S.APPROVED).status_code == 409
    Conflict.objects.update(status=ConflictStatus.ACCEPTED, reason="abgestimmt")
    response = transition(api(bob), first, S.APPROVED)
    assert response.status_code == 200
    assert RoadworkTransition.objects.get(roadwork=first).override is False


def test_a_work_far_away_needs_no_override(api, bob, stadtwerke, telekom):
    first = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10))
    make_roadwork(telekom, status=S.SUBMITTED, period=from_now(days=10), geometry=line(NECKARAU))
    assert transition(api(bob), first, S.APPROVED).status_code == 200


# --- Emergency works ------------------------------------------------------------------------------


def report_emergency(client, **overrides):
    properties = {
        "title": "Wasserrohrbruch Kaiserring",
        "period": period_json(from_now(days=-0.1, length=1)),
        "is_emergency": True,
        **overrides,
    }
    return client.post("/api/v1/roadworks/", feature(geojson_line(KAISERRING), **properties), format="json")


def test_emergency_works_are_in_progress_at_once_and_await_a_decision(api, alice):
    response = report_emergency(api(alice))
    assert response.status_code == 201, response.json()
    properties = response.json()["properties"]
    assert properties["status"] == S.IN_PROGRESS
    assert properties["category"] == RoadworkCategory.EMERGENCY
    assert properties["decision_due"] is not None and properties["decided_at"] is None
    work = Roadwork.objects.get()
    assert list(work.transitions.values_list("action", "from_status", "to_status")) == [
        ("create_emergency", "", S.IN_PROGRESS)
    ]
    assert workflow.is_awaiting_decision(work)


def test_the_authority_approves_emergency_works_retroactively_and_they_keep_running(api, alice, bob):
    work = Roadwork.objects.get(pk=report_emergency(api(alice)).json()["id"])
    assert transition(api(alice), work, S.APPROVED).status_code == 403

    response = transition(api(bob), work, S.APPROVED, comment="Notmaßnahme bestätigt.")

    assert response.status_code == 200
    work.refresh_from_db()
    assert work.status == S.IN_PROGRESS and work.decided_at is not None
    row = work.transitions.last()
    assert (row.action, row.from_status, row.to_status) == ("approve_emergency", S.IN_PROGRESS, S.IN_PROGRESS)
    # Decided once: asking again is no longer a possible step.
    assert transition(api(bob), work, S.APPROVED).status_code == 409


def test_the_authority_refuses_emergency_works_retroactively_with_a_reason(api, alice, bob):
    work = Roadwork.objects.get(pk=report_emergency(api(alice)).json()["id"])
    assert transition(api(bob), work, S.REFUSED).status_code == 400
    response = transition(api(bob), work, S.REFUSED, comment="Kein Notfall: planbare Arbeiten.")
    assert response.status_code == 200
    work.refresh_from_db()
    assert work.status == S.REFUSED and work.decided_at is not None
    assert not workflow.is_awaiting_decision(work)


def test_finished_emergency_works_are_still_decided_afterwards(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.COMPLETED, is_emergency=True, period=from_now(days=-2, length=1))
    response = transition(api(bob), work, S.APPROVED)
    assert response.status_code == 200
    work.refresh_from_db()
    assert work.status == S.COMPLETED and work.decided_at is not None


def test_ordinary_running_works_cannot_be_approved_again(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1))
    assert transition(api(bob), work, S.APPROVED).status_code == 409


def test_emergency_works_must_be_running_or_about_to_start(api, alice):
    later = report_emergency(api(alice), period=period_json(from_now(days=3)))
    assert later.status_code == 400
    hours = workflow.EMERGENCY_START_AHEAD_HOURS
    assert later.json()["period"] == [str(workflow.MSG_EMERGENCY_NOT_NOW).format(hours=hours)]
    as_submitted = report_emergency(api(alice), status="submitted")
    assert as_submitted.status_code == 400
    assert as_submitted.json()["status"] == [str(workflow.MSG_EMERGENCY_STATUS)]
    assert not Roadwork.objects.exists()


def test_whether_works_are_an_emergency_cannot_change_later(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=10))
    response = api(bob).patch(
        f"/api/v1/roadworks/{work.pk}/", {"properties": {"is_emergency": True, "version": 1}}, format="json"
    )
    assert response.status_code == 400 and "is_emergency" in response.json()


# --- The system -----------------------------------------------------------------------------------


def test_the_system_starts_and_completes_works_only_on_the_clock(stadtwerke):
    ahead = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=1))
    running = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1, length=3))
    with pytest.raises(workflow.TransitionError):
        roadwork_transition(user=None, roadwork_id=ahead.pk, to_status=S.IN_PROGRESS, expected_version=1)
    with pytest.raises(workflow.TransitionError):
        roadwork_transition(user=None, roadwork_id=running.pk, to_status=S.COMPLETED, expected_version=1)


def test_the_system_cannot_decide(stadtwerke):
    from django.core.exceptions import PermissionDenied

    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=1))
    with pytest.raises(PermissionDenied):
        roadwork_transition(user=None, roadwork_id=work.pk, to_status=S.APPROVED, expected_version=1)


def test_a_person_reporting_a_start_by_transition_stamps_the_actual_start(api, alice, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.01))
    before = timezone.now() - timedelta(seconds=1)
    assert transition(api(alice), work, S.IN_PROGRESS).status_code == 200
    work.refresh_from_db()
    assert work.actual_start is not None and work.actual_start >= before
