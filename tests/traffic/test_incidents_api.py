"""Incidents through the API: police log them, the public sees active ones, bad input is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import feature, features_of, make_incident
from traffic.models import Incident, IncidentStatus
from traffic.services import MSG_STATUS_BY_TRANSITION

pytestmark = pytest.mark.django_db

POINT = {"type": "Point", "coordinates": [8.4750, 49.4846]}


def log(client, **properties):
    return client.post("/api/v1/incidents/", feature(POINT, kind="accident", **properties), format="json")


def test_the_police_log_an_incident_in_one_request(api, carol):
    response = log(api(carol), street_name="Kaiserring", lanes_blocked=1)
    assert response.status_code == 201, response.json()
    incident = Incident.objects.get()
    assert incident.reported_by == carol
    assert incident.status == IncidentStatus.REPORTED
    assert incident.period.lower == incident.occurred_at and incident.period.upper is None
    assert response.json()["geometry"]["coordinates"] == pytest.approx([8.4750, 49.4846], abs=1e-6)


@pytest.mark.parametrize("persona", ["alice", "dave"])
def test_applicants_and_users_without_role_cannot_log_incidents(api, persona, request):
    assert log(api(request.getfixturevalue(persona))).status_code == 403
    assert Incident.objects.count() == 0


def test_anonymous_users_cannot_log_incidents(api):
    assert log(api(None)).status_code == 401


def test_the_public_sees_active_incidents_only(api, carol):
    active = make_incident()
    make_incident(status=IncidentStatus.CLEARED, cleared_at=timezone.now())
    public = {f["id"] for f in features_of(api(None).get("/api/v1/incidents/"))}
    staff = {f["id"] for f in features_of(api(carol).get("/api/v1/incidents/"))}
    assert public == {str(active.pk)}
    assert len(staff) == 2


def test_clearing_an_incident_stamps_the_time_and_hides_it_from_the_public(api, carol):
    incident = make_incident()
    response = api(carol).post(
        f"/api/v1/incidents/{incident.pk}/transition/", {"to": "cleared", "version": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    incident.refresh_from_db()
    assert incident.cleared_at is not None
    assert incident.period.upper == incident.cleared_at
    assert features_of(api(None).get("/api/v1/incidents/")) == []


def test_it_refuses_a_status_change_by_patch_and_points_to_the_transition_endpoint(api, carol):
    # A plain field write would skip the history (who, when, why); status moves through transition/ only.
    incident = make_incident()
    response = api(carol).patch(
        f"/api/v1/incidents/{incident.pk}/", {"properties": {"status": "cleared", "version": 1}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["status"] == [str(MSG_STATUS_BY_TRANSITION)]
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.REPORTED and incident.cleared_at is None and incident.version == 1


def test_it_rejects_a_line_as_the_incident_location(api, carol):
    body = feature({"type": "LineString", "coordinates": [[8.47, 49.48], [8.48, 49.49]]}, kind="accident")
    response = api(carol).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400
    assert "location" in response.json()


def test_it_rejects_an_incident_outside_the_service_area(api, carol):
    body = feature({"type": "Point", "coordinates": [13.4, 52.5]}, kind="accident")
    response = api(carol).post("/api/v1/incidents/", body, format="json")
    assert response.status_code == 400
    assert "location" in response.json()
    assert Incident.objects.count() == 0


def test_it_rejects_clearance_before_occurrence(api, carol):
    now = timezone.now()
    response = log(
        api(carol),
        occurred_at=now.isoformat(),
        expected_clearance_at=(now - timedelta(hours=1)).isoformat(),
    )
    assert response.status_code == 400
    assert "expected_clearance_at" in response.json()
    assert Incident.objects.count() == 0


def test_it_rejects_an_unknown_kind_and_unknown_fields(api, carol):
    response = api(carol).post(
        "/api/v1/incidents/", feature(POINT, kind="meteor", driver_name="Max Mustermann"), format="json"
    )
    assert response.status_code == 400
    assert {"kind", "driver_name"} <= set(response.json())
    assert Incident.objects.count() == 0


def test_active_on_filters_incidents_by_their_period(api, carol):
    old = make_incident(
        occurred_at=timezone.now() - timedelta(days=10), reported_at=timezone.now() - timedelta(days=10)
    )
    old.status = IncidentStatus.CLEARED
    old.cleared_at = timezone.now() - timedelta(days=9)
    old.save()
    current = make_incident()
    day = (timezone.localdate() - timedelta(days=10)).isoformat()
    assert {f["id"] for f in features_of(api(carol).get(f"/api/v1/incidents/?active_on={day}"))} == {str(old.pk)}
    today = timezone.localdate().isoformat()
    assert {f["id"] for f in features_of(api(carol).get(f"/api/v1/incidents/?active_on={today}"))} == {str(current.pk)}
