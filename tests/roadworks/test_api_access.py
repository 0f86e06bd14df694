"""Who sees and changes which roadworks and conflicts through the API."""

from __future__ import annotations

import pytest

from roadworks.models import Roadwork, RoadworkStatus
from roadworks.services import MSG_STATUS_BY_TRANSITION, conflicts_sweep
from roadworks.workflow import MSG_INITIAL_STATUS
from tests.conftest import KAISERRING, KAISERRING_NEARBY, feature, features_of, geojson_line, line, make_roadwork

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {f["id"] for f in features_of(response)}


@pytest.fixture
def works(stadtwerke, telekom):
    return {
        "alice_draft": make_roadwork(stadtwerke, status=RoadworkStatus.DRAFT),
        "alice_approved": make_roadwork(stadtwerke, status=RoadworkStatus.APPROVED),
        "erin_submitted": make_roadwork(telekom, status=RoadworkStatus.SUBMITTED),
        "erin_in_progress": make_roadwork(telekom, status=RoadworkStatus.IN_PROGRESS),
    }


def keys(works, *names) -> set[str]:
    return {str(works[name].pk) for name in names}


def test_anonymous_users_see_only_public_works(api, works):
    assert ids(api(None).get("/api/v1/roadworks/")) == keys(works, "alice_approved", "erin_in_progress")


def test_a_user_without_role_sees_only_public_works(api, dave, works):
    assert ids(api(dave).get("/api/v1/roadworks/")) == keys(works, "alice_approved", "erin_in_progress")


def test_an_applicant_sees_its_own_works_and_public_ones(api, alice, works):
    assert ids(api(alice).get("/api/v1/roadworks/")) == keys(works, "alice_draft", "alice_approved", "erin_in_progress")


def test_an_applicant_cannot_read_another_organisations_draft(api, erin, works):
    response = api(erin).get(f"/api/v1/roadworks/{works['alice_draft'].pk}/")
    assert response.status_code == 404


def test_the_authority_and_police_see_everything(api, bob, carol, works):
    assert ids(api(bob).get("/api/v1/roadworks/")) == keys(works, *works)
    assert ids(api(carol).get("/api/v1/roadworks/")) == keys(works, *works)


def test_anonymous_users_cannot_create(api):
    response = api(None).post("/api/v1/roadworks/", feature(geojson_line(KAISERRING), title="x", period=PERIOD))
    assert response.status_code == 401
    assert Roadwork.objects.count() == 0


@pytest.mark.parametrize("persona", ["dave", "carol"])
def test_users_without_an_applicant_role_cannot_create(api, persona, request):
    user = request.getfixturevalue(persona)
    body = feature(geojson_line(KAISERRING), title="x", period=PERIOD)
    response = api(user).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 403
    assert Roadwork.objects.count() == 0


@pytest.mark.parametrize("persona", ["alice", "bob"])
def test_a_new_work_cannot_start_out_approved(api, persona, request):
    body = feature(geojson_line(KAISERRING), title="x", period=PERIOD, status="approved")
    response = api(request.getfixturevalue(persona)).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 400
    assert response.json()["status"] == [str(MSG_INITIAL_STATUS)]
    assert Roadwork.objects.count() == 0


def test_an_applicant_cannot_approve_its_own_work(api, alice, stadtwerke):
    work = make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)
    response = api(alice).post(f"/api/v1/roadworks/{work.pk}/transition/", {"to": "approved", "version": 1})
    assert response.status_code == 403
    work.refresh_from_db()
    assert work.status == RoadworkStatus.SUBMITTED


def test_an_applicant_cannot_record_works_for_another_organisation(api, alice, telekom):
    body = feature(geojson_line(KAISERRING), title="x", period=PERIOD, organisation=telekom.pk)
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 403
    assert Roadwork.objects.count() == 0


def test_the_authority_records_works_for_an_organisation(api, bob, telekom):
    body = feature(geojson_line(KAISERRING), title="x", period=PERIOD, organisation=telekom.pk, status="submitted")
    response = api(bob).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 201, response.json()
    work = Roadwork.objects.get()
    assert work.organisation == telekom
    assert work.status == RoadworkStatus.SUBMITTED


def test_an_applicant_cannot_change_another_organisations_work(api, erin, works):
    work = works["alice_approved"]
    response = api(erin).patch(f"/api/v1/roadworks/{work.pk}/", {"properties": {"title": "x", "version": 1}})
    assert response.status_code == 403
    work.refresh_from_db()
    assert work.title != "x"


def test_the_authority_approves_a_submitted_work(api, bob, works):
    work = works["erin_submitted"]
    # All fixture works lie on Kaiserring at the same time: approving needs an override.
    body = {"to": "approved", "override_reason": "Abgestimmt im Koordinierungstermin", "version": 1}
    response = api(bob).post(f"/api/v1/roadworks/{work.pk}/transition/", body)
    assert response.status_code == 200, response.json()
    assert response.json()["properties"]["status"] == "approved"
    assert response.json()["properties"]["version"] == 2
    assert response["ETag"] == '"2"'


def test_the_status_cannot_be_changed_by_an_edit(api, bob, works):
    work = works["erin_submitted"]
    response = api(bob).patch(
        f"/api/v1/roadworks/{work.pk}/", {"properties": {"status": "approved", "version": 1}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["status"] == [str(MSG_STATUS_BY_TRANSITION)]
    work.refresh_from_db()
    assert work.status == RoadworkStatus.SUBMITTED and work.version == 1


def test_an_edit_may_send_the_unchanged_status_back(api, bob, works):
    work = works["erin_submitted"]
    response = api(bob).patch(
        f"/api/v1/roadworks/{work.pk}/",
        {"properties": {"status": "submitted", "title": "Neu", "version": 1}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["properties"]["title"] == "Neu"


def test_a_stale_write_is_refused_with_412(api, bob, alice, works):
    work = works["alice_draft"]
    url = f"/api/v1/roadworks/{work.pk}/"
    etag = api(alice).get(url)["ETag"]
    assert (
        api(bob).patch(url, {"properties": {"title": "Bob's change"}}, format="json", HTTP_IF_MATCH=etag).status_code
        == 200
    )

    response = api(alice).patch(url, {"properties": {"title": "Alice's change"}}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response.json()["current_version"] == 2
    work.refresh_from_db()
    assert work.title == "Bob's change"


def test_a_write_without_a_version_is_refused_with_428(api, alice, works):
    work = works["alice_draft"]
    response = api(alice).patch(f"/api/v1/roadworks/{work.pk}/", {"properties": {"title": "x"}}, format="json")
    assert response.status_code == 428
    work.refresh_from_db()
    assert work.title != "x"


def test_there_is_no_delete(api, bob, works):
    response = api(bob).delete(f"/api/v1/roadworks/{works['alice_draft'].pk}/")
    assert response.status_code == 405
    assert Roadwork.objects.filter(pk=works["alice_draft"].pk).exists()


def test_conflicts_are_scoped_by_organisation(api, alice, erin, bob, dave, stadtwerke, telekom, authority_org):
    make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY), status=RoadworkStatus.SUBMITTED)
    # A pair that touches neither alice's nor erin's works: only the authority sees it.
    make_roadwork(authority_org, geometry=line([(8.4600, 49.4900), (8.4620, 49.4905)]))
    make_roadwork(authority_org, geometry=line([(8.4601, 49.4900), (8.4621, 49.4905)]))
    conflicts_sweep()

    assert len(features_of(api(bob).get("/api/v1/conflicts/"))) == 2
    assert len(features_of(api(alice).get("/api/v1/conflicts/"))) == 1
    assert len(features_of(api(erin).get("/api/v1/conflicts/"))) == 1
    assert features_of(api(dave).get("/api/v1/conflicts/")) == []
    assert features_of(api(None).get("/api/v1/conflicts/")) == []


def test_a_conflict_names_both_sides_and_its_rule(api, bob, stadtwerke, telekom):
    a = make_roadwork(stadtwerke)
    b = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    properties = features_of(api(bob).get("/api/v1/conflicts/"))[0]["properties"]
    assert {properties["roadwork_a"], properties["roadwork_b"]} == {str(a.pk), str(b.pk)}
    assert properties["rule"] == "C1"
    assert properties["overlap_period"]["lower"].startswith("2027-03-01T07:00:00+01:00")
