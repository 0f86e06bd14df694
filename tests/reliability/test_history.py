"""Nothing lost: every change to roadworks, decisions, conflicts and incidents is kept (who, when, what changed),
viewable by those who may see the object, and never editable (database triggers refuse UPDATE and DELETE).

Personas: alice applies for Stadtwerke, erin for Telekom Bau (must not see alice's history), bob reviews for the
authority, carol is police, dave has no role."""

from __future__ import annotations

import html

import pytest
from django.contrib.gis.geos import MultiPolygon
from django.db import DatabaseError, connection, transaction
from django.test import Client

from roadworks import tasks as roadwork_tasks
from roadworks.models import (
    Conflict,
    ConflictEvent,
    Roadwork,
    RoadworkEvent,
    RoadworkStatus,
    RoadworkTransition,
)
from tests.conftest import KAISERRING, KAISERRING_NEARBY, feature, geojson_line, line, make_incident, make_roadwork
from traffic.models import IncidentEvent

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def work(api, alice):
    response = api(alice).post(
        "/api/v1/roadworks/", feature(geojson_line(KAISERRING), title="Gasleitung", period=PERIOD), format="json"
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_it_records_who_created_and_who_changed_a_roadwork_and_what(api, alice, bob, work):
    changed = api(alice).patch(
        f"/api/v1/roadworks/{work['id']}/", {"properties": {"title": "Gasleitung Kaiserring", "version": 1}}
    )
    assert changed.status_code == 200, changed.json()

    entries = api(bob).get(f"/api/v1/roadworks/{work['id']}/changes/").json()
    mine = [e for e in entries if e["object"] == "roadwork"]
    assert [e["action"] for e in mine] == ["insert", "update"]
    assert {e["user"] for e in mine} == {"alice"}
    update = mine[1]
    assert {"field": "title", "old": "Gasleitung", "new": "Gasleitung Kaiserring"} in update["changes"]
    # Bookkeeping is left out: the version counter is no change a person made.
    assert "version" not in {c["field"] for c in update["changes"]}


def test_it_records_the_workflow_step_and_who_took_it(api, alice, work):
    response = api(alice).post(
        f"/api/v1/roadworks/{work['id']}/transition/", {"to": RoadworkStatus.SUBMITTED, "version": 1}
    )
    assert response.status_code == 200, response.json()
    entries = api(alice).get(f"/api/v1/roadworks/{work['id']}/changes/").json()
    steps = [e for e in entries if e["object"] == "roadworktransition"]
    assert [s["user"] for s in steps] == ["alice", "alice"]  # the creation and the submission
    assert {"field": "to_status", "old": None, "new": "submitted"} in steps[-1]["changes"]
    status = [c for e in entries if e["object"] == "roadwork" for c in e["changes"] if c["field"] == "status"]
    assert status[-1] == {"field": "status", "old": "draft", "new": "submitted"}


def test_conflicts_written_by_raw_sql_are_recorded_with_the_task_that_wrote_them(stadtwerke, telekom, bob):
    first = make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)
    make_roadwork(telekom, status=RoadworkStatus.SUBMITTED, geometry=line(KAISERRING_NEARBY))
    # apply(): the task runs here, through Celery's signals, as the worker would run it.
    roadwork_tasks.conflicts_detect_for_roadwork.apply(args=[str(first.pk)])

    events = ConflictEvent.objects.filter(rule="C1")
    assert [e.pgh_label for e in events] == ["insert"]
    assert events[0].pgh_context.metadata["task"] == "roadworks.tasks.conflicts_detect_for_roadwork"

    from auman.history import history_of_roadwork

    conflict_entries = [e for e in history_of_roadwork(first.pk, user=bob) if e.object_model == "conflict"]
    assert conflict_entries and conflict_entries[0].task == "roadworks.tasks.conflicts_detect_for_roadwork"
    # What changed, not which object it is: the other side's id is no change (and may be another's draft).
    assert {c.field for c in conflict_entries[0].changes} >= {"rule", "status"}
    assert not {c.field for c in conflict_entries[0].changes} & {"roadwork_a", "roadwork_b", "id"}


def test_a_deleted_roadwork_keeps_its_history(stadtwerke):
    gone = make_roadwork(stadtwerke)
    pk = gone.pk
    gone.delete()
    assert list(RoadworkEvent.objects.filter(pgh_obj_id=pk).values_list("pgh_label", flat=True)) == [
        "insert",
        "delete",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE roadworks_roadworkevent SET title = 'forged'",
        "DELETE FROM roadworks_roadworkevent",
        "UPDATE roadworks_conflictevent SET status = 'accepted'",
        "DELETE FROM roadworks_roadworktransitionevent",
        "UPDATE traffic_incidentevent SET description = 'forged'",
        "DELETE FROM traffic_incidentevent",
    ],
)
def test_the_database_refuses_to_edit_or_delete_history(stadtwerke, telekom, statement):
    first, second = sorted(
        [make_roadwork(stadtwerke), make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))], key=lambda w: w.pk
    )
    Conflict.objects.create(
        rule="C1",
        roadwork_a=first,
        roadwork_b=second,
        overlap_period=first.period,
        place=MultiPolygon(line(KAISERRING).buffer(10)),
    )
    RoadworkTransition.objects.create(roadwork=first, action="create", to_status=RoadworkStatus.APPROVED)
    make_incident()
    with pytest.raises(DatabaseError, match="Cannot"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)


def test_the_orm_cannot_edit_history_either(stadtwerke):
    make_roadwork(stadtwerke)
    with pytest.raises(DatabaseError), transaction.atomic():
        RoadworkEvent.objects.update(title="forged")
    with pytest.raises(DatabaseError), transaction.atomic():
        RoadworkEvent.objects.all().delete()
    assert RoadworkEvent.objects.get().title == "Leitungsbau Kaiserring"


def test_history_of_another_organisations_work_is_not_shown(api, erin, dave, work):
    # erin cannot see alice's draft at all; dave neither.
    assert api(erin).get(f"/api/v1/roadworks/{work['id']}/changes/").status_code == 404
    assert api(None).get(f"/api/v1/roadworks/{work['id']}/changes/").status_code in (401, 404)


def test_the_public_sees_an_approved_work_but_not_who_changed_it(api, stadtwerke):
    approved = make_roadwork(stadtwerke, status=RoadworkStatus.APPROVED)
    assert api(None).get(f"/api/v1/roadworks/{approved.pk}/").status_code == 200
    assert api(None).get(f"/api/v1/roadworks/{approved.pk}/changes/").status_code == 401


def test_the_detail_page_shows_the_change_history_to_the_applicant_and_the_authority(alice, bob, erin, api, work):
    api(alice).patch(f"/api/v1/roadworks/{work['id']}/", {"properties": {"title": "Neuer Titel", "version": 1}})
    for user in (alice, bob):
        page = html.unescape(web(user).get(f"/baustellen/{work['id']}/").content.decode())
        assert 'id="history-changes"' in page
        assert "Gasleitung → Neuer Titel" in page
    assert web(erin).get(f"/baustellen/{work['id']}/").status_code == 404


def test_incident_changes_name_the_officer_and_are_for_staff_only(api, carol, alice):
    created = api(carol).post(
        "/api/v1/incidents/",
        feature(
            {"type": "Point", "coordinates": [8.4750, 49.4846]},
            kind="breakdown",
            street_name="Kaiserring",
            occurred_at="2026-11-21T08:00:00+01:00",
        ),
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    changed = api(carol).patch(f"/api/v1/incidents/{pk}/", {"properties": {"lanes_blocked": 2, "version": 1}})
    assert changed.status_code == 200, changed.json()

    entries = api(carol).get(f"/api/v1/incidents/{pk}/changes/").json()
    incident_entries = [e for e in entries if e["object"] == "incident"]
    assert [e["action"] for e in incident_entries] == ["insert", "update"]
    assert {"field": "lanes_blocked", "old": None, "new": 2} in incident_entries[1]["changes"]
    assert all(e["user"] == "carol" for e in incident_entries)
    assert api(alice).get(f"/api/v1/incidents/{pk}/changes/").status_code in (403, 404)

    page = web(carol).get(f"/polizei/{pk}/verlauf/")
    assert page.status_code == 200
    assert 'id="history-changes"' in page.content.decode()
    assert IncidentEvent.objects.filter(pgh_obj_id=pk).count() == 2
    assert web(alice).get(f"/polizei/{pk}/verlauf/").status_code == 403


@pytest.mark.parametrize("function", ["_pgh_attach_context", "_pgtrigger_should_ignore"])
def test_the_trigger_helpers_open_no_subtransaction_per_row(function):
    """An EXCEPTION block in PL/pgSQL opens a subtransaction on every call: pghistory's and pgtrigger's own
    helpers had one, which made a sweep writing 25,000 conflicts 15 times slower (auman/trigger_helpers.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = %s", [function])
        [(source,)] = cursor.fetchall()
    assert "EXCEPTION" not in source.upper()
    assert "current_setting(" in source and ", true)" in source


def test_pgtrigger_ignore_still_skips_the_history_trigger(stadtwerke):
    import pgtrigger

    work = make_roadwork(stadtwerke)
    before = work.events.count()
    with pgtrigger.ignore("roadworks.Roadwork:update_update"):
        Roadwork.objects.filter(pk=work.pk).update(title="ohne Historie")
    assert work.events.count() == before
    Roadwork.objects.filter(pk=work.pk).update(title="mit Historie")
    assert work.events.count() == before + 1


def test_it_records_the_changes_of_a_works_detours_and_attachments(api, alice, bob, work, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    url = f"/api/v1/roadworks/{work['id']}/"
    detour = {"name": "Umleitung Nord", "geometry": geojson_line(KAISERRING_NEARBY)}
    added = api(alice).patch(url, {"properties": {"detours": [detour], "version": 1}}, format="json")
    assert added.status_code == 200, added.json()
    detour_id = added.json()["properties"]["detours"][0]["id"]
    renamed = {**detour, "id": detour_id, "name": "Umleitung Nord über Ring"}
    assert api(alice).patch(url, {"properties": {"detours": [renamed], "version": 2}}, format="json").status_code == 200
    upload = api(alice).post(
        f"{url}attachments/",
        {"file": SimpleUploadedFile("plan.pdf", b"%PDF-1.7\n%%EOF\n"), "kind": "traffic_sign_plan"},
        format="multipart",
    )
    assert upload.status_code == 201, upload.json()

    entries = api(bob).get(f"{url}changes/").json()
    detours = [e for e in entries if e["object"] == "detour"]
    assert [e["action"] for e in detours] == ["insert", "update"]  # renamed in place, not deleted and made again
    assert {"field": "name", "old": "Umleitung Nord", "new": "Umleitung Nord über Ring"} in detours[1]["changes"]
    assert {e["user"] for e in detours} == {"alice"}
    (attachment,) = [e for e in entries if e["object"] == "attachment"]
    assert attachment["action"] == "insert" and attachment["user"] == "alice"
    assert {"field": "original_name", "old": None, "new": "plan.pdf"} in attachment["changes"]
