"""The incident lifecycle: every step allowed and refused, who may take it, its history, its times and versions.

Extra persona: vera works in the traffic control room (Verkehrsleitzentrale).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role, User
from tests.conftest import feature, features_of, make_incident
from traffic import workflow
from traffic.models import Incident, IncidentStatus, IncidentTransition
from traffic.services import (
    MSG_COMMENT_REQUIRED,
    MSG_NOT_ALLOWED_EDIT,
    MSG_STATUS_BY_TRANSITION,
    MSG_TRANSITION_BEFORE_OCCURRED,
    MSG_TRANSITION_IN_FUTURE,
    MSG_TRANSITION_ROLE,
    TransitionNotAllowed,
    incident_transition,
)

pytestmark = pytest.mark.django_db

REPORTED, CONFIRMED = IncidentStatus.REPORTED, IncidentStatus.CONFIRMED
CLEARED, CANCELLED = IncidentStatus.CLEARED, IncidentStatus.CANCELLED
ALLOWED = {
    (REPORTED, CONFIRMED),
    (REPORTED, CLEARED),
    (REPORTED, CANCELLED),
    (CONFIRMED, CLEARED),
    (CONFIRMED, CANCELLED),
    (CLEARED, CONFIRMED),  # reopen
    (CANCELLED, REPORTED),  # reopen
}
ALL_PAIRS = list(itertools.product(IncidentStatus, repeat=2))
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in ALLOWED]
REOPENS = {(CLEARED, CONFIRMED), (CANCELLED, REPORTED)}


@pytest.fixture
def vera(db) -> User:
    return User.objects.create_user("vera", password="pw-vera-1", role=Role.CONTROL_ROOM)


def incident_in(status: str) -> Incident:
    """An incident that reached `status` 20 minutes after it occurred, with its own history row for that step."""
    now = timezone.now()
    times = {"occurred_at": now - timedelta(hours=1), "reported_at": now - timedelta(minutes=55)}
    if status == CONFIRMED:
        times["confirmed_at"] = now - timedelta(minutes=50)
    if status in (CLEARED, CANCELLED):
        times["cleared_at"] = now - timedelta(minutes=40)
    incident = make_incident(status=status, **times)
    IncidentTransition.objects.create(incident=incident, from_status="", to_status=status, at=times["reported_at"])
    return incident


def transition(client, incident: Incident, to: str, *, version: int | None = None, **extra):
    body = {"to": to, "version": incident.version if version is None else version, **extra}
    return client.post(f"/api/v1/incidents/{incident.pk}/transition/", body, format="json")


def comment_for(pair: tuple[str, str]) -> str:
    return "Fahrzeug wieder liegen geblieben" if pair in REOPENS else ""


# --- The state machine ------------------------------------------------------------------------------------


def test_the_workflow_declares_exactly_the_allowed_steps():
    assert {(t.source, t.target) for t in workflow.TRANSITIONS} == ALLOWED
    assert {t.name for t in workflow.TRANSITIONS if (t.source, t.target) in REOPENS} == {"reopen"}
    assert all(t.comment_required for t in workflow.TRANSITIONS if (t.source, t.target) in REOPENS)


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_it_takes_every_allowed_step_and_records_it(api, carol, source, target):
    incident = incident_in(source)
    response = transition(api(carol), incident, target, comment=comment_for((source, target)))
    assert response.status_code == 200, response.json()
    assert response.json()["properties"]["status"] == target
    assert response.json()["properties"]["version"] == incident.version + 1
    assert response["ETag"] == f'"{incident.version + 1}"'
    incident.refresh_from_db()
    assert incident.status == target
    step = incident.transitions.order_by("-at", "-id").first()
    assert (step.from_status, step.to_status, step.by) == (source, target, carol)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_it_refuses_every_step_the_lifecycle_does_not_have(api, carol, source, target):
    incident = incident_in(source)
    response = transition(api(carol), incident, target, comment="irgendwas")
    assert response.status_code == 409, response.json()
    expected = TransitionNotAllowed(current=source, target=target)
    assert response.json()["to"] == [str(expected)]
    assert response.json()["allowed"] == expected.allowed
    incident.refresh_from_db()
    assert incident.status == source and incident.version == 1
    assert incident.transitions.count() == 1


def test_the_refusal_names_the_possible_next_steps(carol):
    error = TransitionNotAllowed(current=CLEARED, target=CANCELLED)
    assert error.allowed == [CONFIRMED]
    assert str(IncidentStatus.CONFIRMED.label) in str(error)


# --- Who may ------------------------------------------------------------------------------------------------


STEPS_FOR_EVERY_STAFF_ROLE = sorted(ALLOWED - REOPENS)


@pytest.mark.parametrize("persona", ["carol", "vera", "bob"])
@pytest.mark.parametrize(("source", "target"), STEPS_FOR_EVERY_STAFF_ROLE)
def test_police_control_room_and_authority_confirm_clear_and_cancel(api, request, persona, source, target):
    incident = incident_in(source)
    response = transition(api(request.getfixturevalue(persona)), incident, target)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("persona", ["carol", "vera"])
@pytest.mark.parametrize(("source", "target"), sorted(REOPENS))
def test_police_and_control_room_reopen(api, request, persona, source, target):
    incident = incident_in(source)
    response = transition(api(request.getfixturevalue(persona)), incident, target, comment="doch noch da")
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(("source", "target"), sorted(REOPENS))
def test_the_authority_may_not_reopen(api, bob, source, target):
    incident = incident_in(source)
    response = transition(api(bob), incident, target, comment="doch noch da")
    assert response.status_code == 403
    expected = str(MSG_TRANSITION_ROLE).format(
        current=IncidentStatus(source).label, target=IncidentStatus(target).label
    )
    assert response.json()["detail"] == expected
    incident.refresh_from_db()
    assert incident.status == source


@pytest.mark.parametrize("persona", ["alice", "dave"])
@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_applicants_and_users_without_role_take_no_step(api, request, persona, source, target):
    incident = incident_in(source)
    response = transition(api(request.getfixturevalue(persona)), incident, target, comment="x")
    # Applicants and dave see active incidents only; the closed ones do not exist for them.
    assert response.status_code == (403 if source in (REPORTED, CONFIRMED) else 404)
    if response.status_code == 403:
        assert response.json()["detail"] == str(MSG_NOT_ALLOWED_EDIT)
    incident.refresh_from_db()
    assert incident.status == source and incident.transitions.count() == 1


def test_anonymous_users_take_no_step(api):
    incident = incident_in(REPORTED)
    assert transition(api(None), incident, CLEARED).status_code == 401
    incident.refresh_from_db()
    assert incident.status == REPORTED


# --- History and times --------------------------------------------------------------------------------------


def test_logging_records_the_first_step_and_each_later_step_records_who_when_and_why(api, carol, vera):
    body = feature({"type": "Point", "coordinates": [8.4750, 49.4846]}, kind="breakdown", street_name="Kaiserring")
    created = api(carol).post("/api/v1/incidents/", body, format="json")
    assert created.status_code == 201, created.json()
    incident = Incident.objects.get()
    first = incident.transitions.get()
    assert (first.from_status, first.to_status, first.by, first.at) == ("", REPORTED, carol, incident.reported_at)

    before = timezone.now()
    assert transition(api(vera), incident, CONFIRMED, version=1, comment="Kamera 12 bestätigt").status_code == 200
    assert transition(api(carol), incident, CLEARED, version=2, comment="abgeschleppt").status_code == 200
    after = timezone.now()

    incident.refresh_from_db()
    rows = list(incident.transitions.order_by("at", "id"))
    assert [(r.from_status, r.to_status, r.by, r.comment) for r in rows] == [
        ("", REPORTED, carol, ""),
        (REPORTED, CONFIRMED, vera, "Kamera 12 bestätigt"),
        (CONFIRMED, CLEARED, carol, "abgeschleppt"),
    ]
    assert before <= rows[1].at <= rows[2].at <= after
    # The status times are the steps' times.
    assert incident.confirmed_at == rows[1].at
    assert incident.cleared_at == rows[2].at
    assert incident.period.upper == incident.cleared_at
    assert incident.version == 3


def test_staff_read_the_history_through_the_api_and_others_do_not(api, carol, dave):
    incident = incident_in(REPORTED)
    transition(api(carol), incident, CONFIRMED, comment="vor Ort")
    response = api(carol).get(f"/api/v1/incidents/{incident.pk}/transitions/")
    assert response.status_code == 200
    assert [(row["from"], row["to"], row["by"], row["comment"]) for row in response.json()] == [
        (None, REPORTED, None, ""),
        (REPORTED, CONFIRMED, "carol", "vor Ort"),
    ]
    # Who did what is staff business, never public.
    assert api(dave).get(f"/api/v1/incidents/{incident.pk}/transitions/").status_code == 403
    assert api(None).get(f"/api/v1/incidents/{incident.pk}/transitions/").status_code == 403


def test_a_step_may_be_dated_back_to_when_it_happened(api, carol):
    incident = incident_in(REPORTED)
    when = timezone.now() - timedelta(minutes=30)
    response = transition(api(carol), incident, CLEARED, at=when.isoformat())
    assert response.status_code == 200, response.json()
    incident.refresh_from_db()
    assert incident.cleared_at == when
    assert incident.transitions.order_by("-at").first().at == when


@pytest.mark.parametrize(
    ("minutes", "message"),
    [(-120, MSG_TRANSITION_BEFORE_OCCURRED), (30, MSG_TRANSITION_IN_FUTURE)],
    ids=["before-it-occurred", "in-the-future"],
)
def test_it_refuses_a_step_dated_before_the_incident_or_in_the_future(api, carol, minutes, message):
    incident = incident_in(REPORTED)
    response = transition(api(carol), incident, CLEARED, at=(timezone.now() + timedelta(minutes=minutes)).isoformat())
    assert response.status_code == 400
    assert response.json()["at"] == [str(message)]
    incident.refresh_from_db()
    assert incident.status == REPORTED and incident.cleared_at is None


def test_it_refuses_a_step_dated_before_the_previous_step(api, carol):
    incident = incident_in(CONFIRMED)  # reported 55 minutes ago
    response = transition(api(carol), incident, CLEARED, at=(timezone.now() - timedelta(minutes=58)).isoformat())
    assert response.status_code == 400
    assert "at" in response.json()
    incident.refresh_from_db()
    assert incident.status == CONFIRMED


def test_a_reopen_needs_a_comment(api, carol):
    incident = incident_in(CLEARED)
    response = transition(api(carol), incident, CONFIRMED, comment="   ")
    assert response.status_code == 400
    assert response.json()["comment"] == [str(MSG_COMMENT_REQUIRED)]
    incident.refresh_from_db()
    assert incident.status == CLEARED


def test_a_reopened_incident_is_open_again_and_back_on_the_public_list(api, carol):
    incident = incident_in(CLEARED)
    assert features_of(api(None).get("/api/v1/incidents/")) == []
    assert transition(api(carol), incident, CONFIRMED, comment="Öl tritt wieder aus").status_code == 200
    incident.refresh_from_db()
    assert incident.cleared_at is None and incident.period.upper is None
    assert incident.confirmed_at is not None
    assert [f["id"] for f in features_of(api(None).get("/api/v1/incidents/"))] == [str(incident.pk)]


def test_a_reopened_false_report_is_an_unconfirmed_report_again(api, carol):
    incident = incident_in(CONFIRMED)
    assert transition(api(carol), incident, CANCELLED, comment="Fehlalarm").status_code == 200
    incident.refresh_from_db()
    assert transition(api(carol), incident, REPORTED, comment="doch echt").status_code == 200
    incident.refresh_from_db()
    assert (incident.status, incident.confirmed_at, incident.cleared_at) == (REPORTED, None, None)


# --- Versions -----------------------------------------------------------------------------------------------


def test_a_stale_version_answers_412_and_changes_nothing(api, carol, vera):
    incident = incident_in(REPORTED)
    assert transition(api(vera), incident, CONFIRMED, version=1).status_code == 200
    response = transition(api(carol), incident, CANCELLED, version=1)
    assert response.status_code == 412
    assert response.json()["current_version"] == 2
    incident.refresh_from_db()
    assert incident.status == CONFIRMED and incident.transitions.count() == 2


def test_a_step_without_a_version_answers_428(api, carol):
    incident = incident_in(REPORTED)
    response = api(carol).post(f"/api/v1/incidents/{incident.pk}/transition/", {"to": "cleared"}, format="json")
    assert response.status_code == 428
    incident.refresh_from_db()
    assert incident.status == REPORTED


def test_the_version_may_come_as_if_match(api, carol):
    incident = incident_in(REPORTED)
    response = api(carol).post(
        f"/api/v1/incidents/{incident.pk}/transition/", {"to": "confirmed"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200


# --- Bad input ----------------------------------------------------------------------------------------------


def test_it_refuses_an_unknown_status_and_unknown_fields(api, carol):
    incident = incident_in(REPORTED)
    response = transition(api(carol), incident, "vanished", officer_name="Meier")
    assert response.status_code == 400
    assert {"to", "officer_name"} <= set(response.json())
    incident.refresh_from_db()
    assert incident.status == REPORTED


def test_it_refuses_a_comment_longer_than_500_characters(api, carol):
    incident = incident_in(REPORTED)
    assert transition(api(carol), incident, CLEARED, comment="x" * 501).status_code == 400


@pytest.mark.parametrize("field", ["status", "confirmed_at", "cleared_at"])
def test_plain_writes_cannot_change_the_status_or_its_times(api, carol, field):
    incident = incident_in(REPORTED)
    value = "cleared" if field == "status" else timezone.now().isoformat()
    response = api(carol).patch(
        f"/api/v1/incidents/{incident.pk}/", {"properties": {field: value, "version": 1}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()[field] == [str(MSG_STATUS_BY_TRANSITION)]


def test_a_new_incident_cannot_start_in_another_status(api, carol):
    body = feature({"type": "Point", "coordinates": [8.4750, 49.4846]}, kind="hazard", status="confirmed")
    response = api(carol).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == [str(MSG_STATUS_BY_TRANSITION)]
    assert not Incident.objects.exists()


def test_a_read_incident_put_back_unchanged_is_accepted(api, carol):
    incident = incident_in(CONFIRMED)
    body = api(carol).get(f"/api/v1/incidents/{incident.pk}/").json()
    body["properties"]["description"] = "Ein Fahrstreifen frei"
    response = api(carol).put(f"/api/v1/incidents/{incident.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    incident.refresh_from_db()
    assert incident.description == "Ein Fahrstreifen frei" and incident.status == CONFIRMED


# --- Public visibility --------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [CLEARED, CANCELLED])
def test_a_closed_incident_leaves_the_public_list_and_the_map_at_once(api, client, carol, target):
    incident = incident_in(CONFIRMED)
    assert [f["id"] for f in features_of(api(None).get("/api/v1/incidents/"))] == [str(incident.pk)]
    assert transition(api(carol), incident, target).status_code == 200
    assert features_of(api(None).get("/api/v1/incidents/")) == []
    assert api(None).get(f"/api/v1/incidents/{incident.pk}/").status_code == 404
    map_ids = {f["id"] for f in features_of(client.get("/map/features.geojson"))}
    assert str(incident.pk) not in map_ids
    # Staff still find it, closed.
    assert api(carol).get(f"/api/v1/incidents/{incident.pk}/").json()["properties"]["status"] == target


# --- The service, called directly ---------------------------------------------------------------------------


def test_the_service_refuses_a_second_clearing(carol):
    incident = incident_in(REPORTED)
    cleared = incident_transition(
        user=carol, incident_id=incident.pk, to_status=CLEARED, comment="", expected_version=1
    )
    with pytest.raises(TransitionNotAllowed):
        incident_transition(user=carol, incident_id=incident.pk, to_status=CLEARED, comment="", expected_version=2)
    assert cleared.version == 2
