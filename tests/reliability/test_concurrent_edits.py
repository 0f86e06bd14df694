"""Two people edit the same thing: the second save never silently overwrites the first.

Pages carry the version they were loaded with (a hidden field) and answer a stale save with a clear message that
keeps the person's input; the API answers 412 to a stale If-Match (or version) and 428 to a write without one.
The police pages' buttons post through the API with the version of the list they were loaded with."""

from __future__ import annotations

import html
import re

import pytest

from roadworks import views
from roadworks.models import Roadwork
from tests.conftest import make_incident, make_roadwork
from tests.roadworks.helpers import from_now
from tests.roadworks.test_pages import edit_data, shows, web

pytestmark = pytest.mark.django_db


def version_in(page: str) -> str:
    match = re.search(r'<input type="hidden" name="version" value="(\d+)"', page)
    assert match, "the form carries no version"
    return match.group(1)


@pytest.fixture
def draft(stadtwerke) -> Roadwork:
    from roadworks.models import RoadworkStatus

    return make_roadwork(stadtwerke, status=RoadworkStatus.DRAFT, period=from_now(days=20))


def test_two_people_open_the_form_and_the_second_save_is_refused_with_their_input_kept(alice, bob, draft):
    alices, bobs = web(alice), web(bob)
    alice_page = alices.get(f"/baustellen/{draft.pk}/bearbeiten/").content.decode()
    bob_page = bobs.get(f"/baustellen/{draft.pk}/bearbeiten/").content.decode()
    assert version_in(alice_page) == version_in(bob_page) == "1"

    first = alices.post(
        f"/baustellen/{draft.pk}/bearbeiten/", edit_data(draft, title="Alices Fassung", version=version_in(alice_page))
    )
    assert first.status_code == 302

    second = bobs.post(
        f"/baustellen/{draft.pk}/bearbeiten/",
        edit_data(draft, title="Bobs Fassung", version=version_in(bob_page), organisation=str(draft.organisation_id)),
    )
    assert second.status_code == 409
    assert shows(second, views.MSG_STALE_FORM)
    # Bob's words are still in the form, for him to compare and save again.
    assert 'value="Bobs Fassung"' in html.unescape(second.content.decode())
    draft.refresh_from_db()
    assert (draft.title, draft.version) == ("Alices Fassung", 2)


def test_two_api_clients_with_the_same_etag_the_second_gets_412(api, alice, bob, draft):
    etag_alice = api(alice).get(f"/api/v1/roadworks/{draft.pk}/")["ETag"]
    etag_bob = api(bob).get(f"/api/v1/roadworks/{draft.pk}/")["ETag"]
    assert etag_alice == etag_bob

    ok = api(alice).patch(
        f"/api/v1/roadworks/{draft.pk}/", {"properties": {"title": "Alices Fassung"}}, HTTP_IF_MATCH=etag_alice
    )
    assert ok.status_code == 200, ok.json()
    stale = api(bob).patch(
        f"/api/v1/roadworks/{draft.pk}/", {"properties": {"title": "Bobs Fassung"}}, HTTP_IF_MATCH=etag_bob
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    blind = api(bob).patch(f"/api/v1/roadworks/{draft.pk}/", {"properties": {"title": "Ohne Version"}})
    assert blind.status_code == 428
    draft.refresh_from_db()
    assert draft.title == "Alices Fassung"


def test_two_officers_clearing_the_same_incident_the_second_gets_412(api, carol, police_org):
    from accounts.models import Role, User

    other = User.objects.create_user("frank", organisation=police_org, role=Role.POLICE)
    incident = make_incident(status="confirmed")
    page = web(carol).get("/polizei/").content.decode()
    assert f'data-version="{incident.version}"' in page

    first = api(carol).post(f"/api/v1/incidents/{incident.pk}/transition/", {"to": "cleared", "version": 1})
    assert first.status_code == 200, first.json()
    second = api(other).post(f"/api/v1/incidents/{incident.pk}/transition/", {"to": "cleared", "version": 1})
    assert second.status_code == 412


def test_two_coordinators_accepting_the_same_conflict_the_second_is_told_and_the_first_reason_kept(
    bob, authority_org, stadtwerke, telekom
):
    # Conflicts carry no version: their state machine refuses a step from a status they are no longer in.
    from accounts.models import Role, User
    from roadworks.models import ConflictStatus, RoadworkStatus
    from tests.conftest import KAISERRING_NEARBY, line
    from tests.roadworks.test_pages import conflict_between

    grace = User.objects.create_user("grace", organisation=authority_org, role=Role.AUTHORITY)
    conflict = conflict_between(
        make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED),
        make_roadwork(telekom, status=RoadworkStatus.SUBMITTED, geometry=line(KAISERRING_NEARBY)),
    )
    bobs, graces = web(bob), web(grace)
    assert bobs.get(f"/konflikte/{conflict.pk}/").status_code == 200
    assert graces.get(f"/konflikte/{conflict.pk}/").status_code == 200

    first = bobs.post(f"/konflikte/{conflict.pk}/status/", {"status": "accepted", "reason": "Bobs Abstimmung"})
    assert first.status_code == 302
    second = graces.post(f"/konflikte/{conflict.pk}/status/", {"status": "accepted", "reason": "Graces Abstimmung"})
    assert second.status_code == 409
    conflict.refresh_from_db()
    assert (conflict.status, conflict.reason) == (ConflictStatus.ACCEPTED, "Bobs Abstimmung")
