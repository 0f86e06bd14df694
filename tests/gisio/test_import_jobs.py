"""Large bulk imports run as a background job (gisio.models.ImportJob): 202 and a job resource in the API, a page that
reloads itself until the job has finished, the same report as a synchronous import, all or nothing, once only.

Here the job runs in the test's own transaction: the outbox hands it to the task's delay(), which the `run_jobs`
fixture replaces with a direct call (tests/gisio/test_import_worker.py runs it in a real Celery worker)."""

from __future__ import annotations

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Role
from gisio import tasks
from gisio.models import ImportJob, ImportJobStatus
from gisio.services import (
    MSG_FILE_UNREADABLE,
    MSG_IMPORTED,
    MSG_JOB_CRASHED,
    MSG_JOB_INTERRUPTED,
    MSG_NOT_ALLOWED,
    MSG_ORGANISATION_OTHER,
    import_job_run,
)
from roadworks.models import Roadwork
from tests.gisio.test_import import URL, collection, plan_feature, upload

pytestmark = pytest.mark.django_db

PLAN = [plan_feature("SW-JOB-1"), plan_feature("SW-JOB-2"), plan_feature("SW-JOB-3", status="submitted")]


@pytest.fixture(autouse=True)
def small_threshold(settings):
    """Files of more than two features become jobs here (200 in production)."""
    settings.AUMAN_IMPORT_SYNC_FEATURES = 2


@pytest.fixture
def run_jobs(monkeypatch, django_capture_on_commit_callbacks):
    """`with run_jobs(): upload(...)`: the outbox hands the job to Celery on commit, at the end of the block; here
    the task runs at once, in the test's transaction."""
    monkeypatch.setattr(tasks.import_job_run_task, "delay", lambda *args: tasks.import_job_run_task(*args))
    return lambda: django_capture_on_commit_callbacks(execute=True)


def job_of(response) -> ImportJob:
    assert response.status_code == 202, response.content
    return ImportJob.objects.get(pk=response.json()["id"])


def sync_answer(client, data: bytes, settings, **fields) -> dict:
    """What the same file gives when imported in the request."""
    settings.AUMAN_IMPORT_SYNC_FEATURES = 5000
    response = upload(client, data, **fields)
    settings.AUMAN_IMPORT_SYNC_FEATURES = 2
    return response.json()


# --- API -------------------------------------------------------------------------------------------------------------


def test_a_small_file_is_still_imported_in_the_request(api, alice):
    response = upload(api(alice), collection(*PLAN[:2]))
    assert response.status_code == 201, response.json()
    assert Roadwork.objects.count() == 2
    assert not ImportJob.objects.exists()


def test_a_large_file_answers_202_with_the_job_and_imports_nothing_yet(api, alice):
    response = upload(api(alice), collection(*PLAN), name="jahresplan.geojson")
    job = job_of(response)
    body = response.json()
    assert body["status"] == "queued"
    assert body["url"] == f"http://testserver{URL}{job.pk}/"
    assert response["Location"] == body["url"]
    assert (job.user, job.organisation, job.feature_count, job.file_name) == (
        alice,
        alice.organisation,
        3,
        "jahresplan.geojson",
    )
    assert bytes(job.data) == collection(*PLAN)
    assert Roadwork.objects.count() == 0
    queued = api(alice).get(body["url"]).json()
    assert queued["status"] == "queued" and queued["report"] is None and queued["error"] is None
    assert queued["feature_count"] == 3 and queued["dry_run"] is False and queued["started_at"] is None


def test_the_finished_job_holds_the_report_and_the_roadworks_exist(api, alice, run_jobs):
    client = api(alice)
    with run_jobs():
        job = job_of(upload(client, collection(*PLAN)))
    answer = client.get(f"{URL}{job.pk}/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "done" and body["error"] is None
    assert body["started_at"] and body["finished_at"]
    report = body["report"]
    assert report["imported"] is True and report["total"] == 3
    assert report["summary"] == str(MSG_IMPORTED).format(total=3)
    assert [item["reference"] for item in report["created"]] == ["SW-JOB-1", "SW-JOB-2", "SW-JOB-3"]
    works = Roadwork.objects.filter(organisation=alice.organisation)
    assert {str(pk) for pk in works.values_list("pk", flat=True)} == {item["id"] for item in report["created"]}
    job.refresh_from_db()
    assert bytes(job.data) == b"", "the file is not kept once the job has run"


def test_a_dry_run_job_gives_the_synchronous_report_and_stores_nothing(api, alice, settings, run_jobs):
    client = api(alice)
    expected = sync_answer(client, collection(*PLAN), settings, dry_run="true")
    with run_jobs():
        job = job_of(upload(client, collection(*PLAN), dry_run="true"))
    body = client.get(f"{URL}{job.pk}/").json()
    assert body["dry_run"] is True
    assert body["report"] == expected
    assert Roadwork.objects.count() == 0


def test_a_job_with_a_rejected_feature_gives_the_synchronous_report_and_stores_nothing(api, alice, settings, run_jobs):
    client = api(alice)
    data = collection(*PLAN, plan_feature("SW-JOB-BAD", colour="red"))
    expected = sync_answer(client, data, settings)
    assert expected["imported"] is False and [r["index"] for r in expected["rejected"]] == [4]
    with run_jobs():
        job = job_of(upload(client, data))
    body = client.get(f"{URL}{job.pk}/").json()
    assert body["status"] == "done"
    assert body["report"] == expected
    assert Roadwork.objects.count() == 0


def test_the_report_of_a_job_speaks_the_language_of_the_upload(api, alice, run_jobs):
    client = api(alice)
    data = {"file": SimpleUploadedFile("plan.geojson", collection(*PLAN))}
    with run_jobs():
        job = job_of(client.post(URL, data, format="multipart", HTTP_ACCEPT_LANGUAGE="en"))
    assert job.language == "en"
    assert client.get(f"{URL}{job.pk}/").json()["report"]["summary"] == "3 roadworks were imported."


def test_a_refusal_or_an_unreadable_file_is_answered_at_once_not_queued(api, alice, telekom):
    refused = upload(api(alice), collection(*PLAN), organisation=str(telekom.pk))
    assert refused.status_code == 403 and refused.json()["detail"] == str(MSG_ORGANISATION_OTHER)
    unreadable = upload(api(alice), b"\x00 not a plan")
    assert unreadable.status_code == 400 and unreadable.json()["file"] == [str(MSG_FILE_UNREADABLE)]
    assert not ImportJob.objects.exists()


def test_only_the_user_who_started_a_job_sees_it(api, client, alice, erin, bob):
    job = job_of(upload(api(alice), collection(*PLAN)))
    url = f"{URL}{job.pk}/"
    assert api(alice).get(url).status_code == 200
    assert api(erin).get(url).status_code == 404
    assert api(bob).get(url).status_code == 404, "not even the authority: the job is the starter's"
    assert api(None).get(url).status_code == 401
    page = f"/gis/import/{job.pk}/"
    client.force_login(erin)
    assert client.get(page).status_code == 404
    client.logout()
    response = client.get(page)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_an_unknown_job_is_404(api, alice):
    assert api(alice).get(f"{URL}00000000-0000-0000-0000-000000000000/").status_code == 404


# --- Running a job ---------------------------------------------------------------------------------------------------


def test_a_job_whose_user_lost_the_right_to_import_fails_and_stores_nothing(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    alice.role = Role.NONE
    alice.save()
    assert import_job_run(job_id=job.pk) == ImportJobStatus.FAILED
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED
    assert job.error == str(MSG_NOT_ALLOWED)
    assert job.report is None and bytes(job.data) == b"" and job.finished_at is not None
    assert Roadwork.objects.count() == 0
    body = api(alice).get(f"{URL}{job.pk}/").json()
    assert body["status"] == "failed" and body["error"] == str(MSG_NOT_ALLOWED) and body["report"] is None


def test_a_job_of_a_deactivated_user_fails(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    alice.is_active = False
    alice.save()
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.error) == (ImportJobStatus.FAILED, str(MSG_NOT_ALLOWED))
    assert Roadwork.objects.count() == 0


def test_an_unreadable_stored_file_fails_cleanly(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    ImportJob.objects.filter(pk=job.pk).update(data=b"{ broken")
    assert import_job_run(job_id=job.pk) == ImportJobStatus.FAILED
    job.refresh_from_db()
    assert (job.status, job.error) == (ImportJobStatus.FAILED, str(MSG_FILE_UNREADABLE))
    assert Roadwork.objects.count() == 0


def test_an_unexpected_error_fails_the_job_with_a_message_and_logs_the_traceback(api, alice, monkeypatch, caplog):
    job = job_of(upload(api(alice), collection(*PLAN)))

    def broken(**kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr("gisio.services._import_features", broken)
    with caplog.at_level(logging.ERROR, logger="gisio.services"):
        assert import_job_run(job_id=job.pk) == ImportJobStatus.FAILED
    job.refresh_from_db()
    assert job.error == str(MSG_JOB_CRASHED)
    assert "fire" not in job.error and "Traceback" not in job.error
    assert any(record.exc_info and "fire" in str(record.exc_info[1]) for record in caplog.records)
    assert Roadwork.objects.count() == 0


def test_a_job_is_not_run_twice(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    assert import_job_run(job_id=job.pk) == ImportJobStatus.DONE
    job.refresh_from_db()
    finished = job.finished_at
    assert import_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.status == ImportJobStatus.DONE and job.finished_at == finished
    assert Roadwork.objects.count() == 3


def test_a_job_left_running_by_a_dead_worker_is_failed_when_its_message_comes_again(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportJobStatus.RUNNING, started_at=timezone.now() - timedelta(minutes=10)
    )
    assert import_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.error) == (ImportJobStatus.FAILED, str(MSG_JOB_INTERRUPTED))
    assert Roadwork.objects.count() == 0


def test_a_job_that_just_started_elsewhere_is_left_alone(api, alice):
    job = job_of(upload(api(alice), collection(*PLAN)))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJobStatus.RUNNING, started_at=timezone.now())
    assert import_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.status == ImportJobStatus.RUNNING


# --- The page --------------------------------------------------------------------------------------------------------


def test_a_large_upload_on_the_page_redirects_to_the_job_page_which_reloads_until_done(client, alice):
    client.force_login(alice)
    response = client.post("/gis/import/", {"file": SimpleUploadedFile("plan.geojson", collection(*PLAN))})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/gis/import/{job.pk}/"
    page = client.get(response["Location"])
    text = page.content.decode()
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="3">' in text
    assert 'data-status="queued"' in text and 'id="gis-import-report"' not in text

    import_job_run(job_id=job.pk)
    text = client.get(f"/gis/import/{job.pk}/").content.decode()
    assert 'http-equiv="refresh"' not in text
    assert 'data-status="done"' in text
    assert 'id="gis-import-created"' in text and "SW-JOB-3" in text
    assert str(MSG_IMPORTED).format(total=3) in text
    assert "<script>" not in text and "style=" not in text


def test_the_job_page_shows_rejections_and_failures(client, alice):
    client.force_login(alice)
    data = collection(*PLAN, plan_feature("SW-JOB-BAD", colour="red"))
    client.post("/gis/import/", {"file": SimpleUploadedFile("plan.geojson", data), "dry_run": "on"})
    job = ImportJob.objects.get()
    assert job.dry_run is True
    import_job_run(job_id=job.pk)
    text = client.get(f"/gis/import/{job.pk}/").content.decode()
    assert 'id="gis-import-rejected"' in text and "SW-JOB-BAD" in text and 'data-ok="false"' in text

    failed = ImportJob.objects.create(user=alice, feature_count=3, data=b"nonsense")
    import_job_run(job_id=failed.pk)
    text = client.get(f"/gis/import/{failed.pk}/").content.decode()
    assert 'data-status="failed"' in text and str(MSG_FILE_UNREADABLE) in text
    assert 'http-equiv="refresh"' not in text


# --- The command stays synchronous -----------------------------------------------------------------------------------


def test_the_command_imports_a_large_file_at_once(bob, stadtwerke, tmp_path):
    path = tmp_path / "plan.geojson"
    path.write_bytes(collection(*PLAN))
    call_command("import_roadworks", str(path), "--organisation", str(stadtwerke.pk), stdout=StringIO())
    assert Roadwork.objects.count() == 3
    assert not ImportJob.objects.exists()


def test_operators_see_jobs_in_the_admin_without_the_file(client, api, alice, django_user_model):
    job = job_of(upload(api(alice), collection(*PLAN), name="plan.geojson"))
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.org", "pw-root-1"))
    assert client.get("/admin/gisio/importjob/").status_code == 200
    page = client.get(f"/admin/gisio/importjob/{job.pk}/change/")
    assert page.status_code == 200 and "SW-JOB-1" not in page.content.decode()


def test_the_import_page_lists_the_users_own_recent_jobs(client, api, alice, erin):
    job = job_of(upload(api(alice), collection(*PLAN), name="jahresplan.geojson"))
    client.force_login(alice)
    text = client.get("/gis/import/").content.decode()
    assert 'id="gis-import-jobs"' in text and f'href="/gis/import/{job.pk}/"' in text and "jahresplan" in text
    client.force_login(erin)
    assert str(job.pk) not in client.get("/gis/import/").content.decode()
