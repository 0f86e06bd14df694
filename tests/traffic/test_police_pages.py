"""The police pages as HTML: who may open them, what they offer, and the admin keeping to the workflow.

Extra persona: vera works in the traffic control room (Verkehrsleitzentrale).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from tests.conftest import make_incident
from traffic.models import Accident, AccidentCategory, Incident, IncidentKind, IncidentStatus, IncidentTransition

pytestmark = pytest.mark.django_db

QUICK_ENTRY = "/polizei/neu/"
LIST = "/polizei/"


@pytest.fixture
def vera(db) -> User:
    return User.objects.create_user("vera", password="pw-vera-1", role=Role.CONTROL_ROOM)


def web(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def config_of(response, element_id: str) -> dict:
    html = response.content.decode()
    start = html.index(f'id="{element_id}"')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_the_pages_have_their_names():
    assert reverse("traffic:quick-entry") == QUICK_ENTRY
    assert reverse("traffic:incident-list") == LIST


@pytest.mark.parametrize("url", [QUICK_ENTRY, LIST])
def test_anonymous_users_are_sent_to_the_login(url):
    response = web(None).get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("url", [QUICK_ENTRY, LIST])
@pytest.mark.parametrize("persona", ["alice", "dave"])
def test_applicants_and_users_without_role_are_refused(request, url, persona):
    assert web(request.getfixturevalue(persona)).get(url).status_code == 403


@pytest.mark.parametrize("url", [QUICK_ENTRY, LIST])
@pytest.mark.parametrize("persona", ["carol", "vera", "bob"])
def test_police_control_room_and_authority_open_the_pages(request, url, persona):
    response = web(request.getfixturevalue(persona)).get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_the_quick_entry_offers_every_kind_and_code_with_labels_and_a_phone_layout(carol):
    response = web(carol).get(QUICK_ENTRY)
    html = response.content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    for kind in IncidentKind:
        assert f'id="qe-kind-{kind.value}" value="{kind.value}"' in html
    assert 'id="qe-kind-accident" value="accident" checked' in html
    for category in AccidentCategory:
        assert f'<option value="{category.value}">{category.value} – {category.label}</option>' in html
    for field in ("category", "type", "kind", "killed", "seriously_injured", "slightly_injured"):
        assert f'for="qe-accident-{field}"' in html and f'id="qe-accident-{field}"' in html
    assert "vendor/leaflet/leaflet.js" in html and "traffic/quick_entry.js" in html
    config = config_of(response, "auman-quick-entry-config")
    assert config["incidentsUrl"] == "/api/v1/incidents/"
    assert config["nearestStreetUrl"] == "/api/v1/streets/nearest/"
    assert config["casualtiesByCategory"] == {
        "1": ["killed", "seriously_injured", "slightly_injured"],
        "2": ["seriously_injured", "slightly_injured"],
        "3": ["slightly_injured"],
    }
    assert config["csrfToken"]
    assert config["strings"]["save"]


def test_the_pages_are_german_by_default(carol):
    html = web(carol).get(QUICK_ENTRY).content.decode()
    assert '<html lang="de">' in html


def test_the_list_shows_active_incidents_newest_first_with_the_steps_the_user_may_take(carol, bob):
    now = timezone.now()
    older = make_incident(street_name="Luisenring", reported_at=now - timedelta(minutes=30))
    newer = make_incident(
        street_name="Kaiserring",
        status=IncidentStatus.CONFIRMED,
        confirmed_at=now - timedelta(minutes=4),
        reported_at=now - timedelta(minutes=5),
    )
    Accident.objects.create(
        incident=newer, location=newer.location, occurred_at=newer.occurred_at, category=5, kind=2, type=6
    )
    closed = make_incident(
        street_name="Parkring",
        status=IncidentStatus.CLEARED,
        occurred_at=now - timedelta(hours=2),
        reported_at=now - timedelta(hours=2),
        cleared_at=now - timedelta(hours=1),
    )
    old = make_incident(
        street_name="Friedrichsring",
        status=IncidentStatus.CLEARED,
        occurred_at=now - timedelta(days=3),
        reported_at=now - timedelta(days=3),
        cleared_at=now - timedelta(days=2),
    )
    html = web(carol).get(LIST).content.decode()
    active = html[html.index('id="pl-active"') : html.index('id="pl-closed"')]
    assert active.index(str(newer.pk)) < active.index(str(older.pk))
    assert str(closed.pk) in html[html.index('id="pl-closed"') :]
    assert str(old.pk) not in html
    assert str(AccidentCategory(5).label) in active
    # carol (police) may confirm the report, clear and cancel both, and reopen the closed one.
    assert 'data-to="confirmed"' in active and 'data-to="cleared"' in active and 'data-to="cancelled"' in active
    assert 'data-to="confirmed" data-comment-required="true"' in html[html.index('id="pl-closed"') :]
    # bob (authority) may not reopen: no button for it.
    bob_html = web(bob).get(LIST).content.decode()
    assert "data-comment-required" not in bob_html[bob_html.index('id="pl-closed"') :]


def test_the_list_escapes_what_officers_typed(carol):
    make_incident(street_name="<script>alert(1)</script>", description="<img src=x onerror=alert(1)>")
    html = web(carol).get(LIST).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# --- The admin keeps to the workflow ------------------------------------------------------------------------


def test_the_admin_cannot_set_the_status_and_records_the_first_step(db):
    root = User.objects.create_superuser("root", password="pw-root-1")
    client = web(root)
    form = {
        "kind": "breakdown",
        "status": "cleared",  # read-only in the admin: ignored
        "cleared_at_0": "2026-05-04",
        "cleared_at_1": "09:00:00",
        "street_name": "Kaiserring",
        "description": "",
        "organisation": "",
        "location": json.dumps({"type": "Point", "coordinates": [8.4750, 49.4846]}),
        "affected_line": "",
        "lanes_blocked": "1",
        "direction": "unknown",
        "occurred_at_0": "2026-05-04",
        "occurred_at_1": "08:15:00",
        "reported_at_0": "2026-05-04",
        "reported_at_1": "08:20:00",
        "_save": "Sichern",
    }
    response = client.post(reverse("admin:traffic_incident_add"), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert incident.status == IncidentStatus.REPORTED and incident.cleared_at is None
    step = IncidentTransition.objects.get()
    assert (step.from_status, step.to_status, step.by, step.at) == ("", "reported", root, incident.reported_at)
    change = client.get(reverse("admin:traffic_incident_change", args=[incident.pk])).content.decode()
    assert 'name="status"' not in change  # shown, not editable
