"""Works go in progress and complete at their times (the periodic task), or when the applicant reports it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from roadworks import services, tasks
from roadworks.models import Roadwork, RoadworkStatus, RoadworkTransition
from roadworks.services import (
    MSG_REPORT_END_BEFORE_START,
    MSG_REPORT_FUTURE,
    MSG_REPORT_START_FIRST,
    roadworks_advance_statuses,
)
from tests.conftest import NECKARAU, line, make_roadwork, wait_until
from tests.roadworks.rule_helpers import wait_for_idle_worker

from .helpers import from_now, report

S = RoadworkStatus


def steps(work: Roadwork) -> list[tuple[str, str, str, str | None]]:
    return list(
        RoadworkTransition.objects.filter(roadwork=work)
        .order_by("at", "id")
        .values_list("action", "from_status", "to_status", "by__username")
    )


@pytest.mark.django_db
class TestThePeriodicTask:
    def test_it_starts_approved_works_whose_period_has_begun(self, stadtwerke):
        started = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1 / 24 / 60))
        ahead = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=1 / 24))

        result = roadworks_advance_statuses()

        assert result == {"started": 1, "completed": 0, "skipped": 0}
        started.refresh_from_db()
        ahead.refresh_from_db()
        assert (started.status, ahead.status) == (S.IN_PROGRESS, S.APPROVED)
        assert steps(started) == [("start", S.APPROVED, S.IN_PROGRESS, None)]
        # The system does not invent an actual start; the planned one stands until the applicant reports.
        assert started.actual_start is None
        assert started.version == 2

    def test_it_completes_running_works_whose_period_has_ended(self, stadtwerke):
        ended = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-2, length=2 - 1 / 24 / 60))
        running = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-2, length=3))

        assert roadworks_advance_statuses() == {"started": 0, "completed": 1, "skipped": 0}

        ended.refresh_from_db()
        running.refresh_from_db()
        assert (ended.status, running.status) == (S.COMPLETED, S.IN_PROGRESS)
        assert steps(ended) == [("complete", S.IN_PROGRESS, S.COMPLETED, None)]

    def test_it_starts_and_completes_an_approved_work_whose_whole_period_passed(self, stadtwerke):
        missed = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-3, length=1))

        assert roadworks_advance_statuses() == {"started": 1, "completed": 1, "skipped": 0}

        assert Roadwork.objects.get(pk=missed.pk).status == S.COMPLETED
        assert [step[0] for step in steps(missed)] == ["start", "complete"]

    def test_it_leaves_other_statuses_alone(self, stadtwerke):
        for status in (S.DRAFT, S.SUBMITTED, S.MODIFICATION_REQUESTED, S.REFUSED, S.CANCELLED, S.REVOKED):
            make_roadwork(stadtwerke, status=status, period=from_now(days=-3, length=1))
        assert roadworks_advance_statuses() == {"started": 0, "completed": 0, "skipped": 0}
        assert not RoadworkTransition.objects.exists()

    def test_a_second_run_does_nothing(self, stadtwerke):
        make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1))
        roadworks_advance_statuses()
        assert roadworks_advance_statuses() == {"started": 0, "completed": 0, "skipped": 0}
        assert RoadworkTransition.objects.count() == 1

    def test_it_completes_undecided_emergency_works_which_still_await_their_decision(self, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.IN_PROGRESS, is_emergency=True, period=from_now(days=-1, length=0.5))
        roadworks_advance_statuses()
        work.refresh_from_db()
        assert work.status == S.COMPLETED and work.decided_at is None

    def test_each_step_enqueues_conflict_detection(self, stadtwerke, django_capture_on_commit_callbacks):
        make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1))
        make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-3, length=1), geometry=line(NECKARAU))
        with django_capture_on_commit_callbacks() as callbacks:
            roadworks_advance_statuses()
        assert len(callbacks) == 2

    def test_a_work_changed_meanwhile_is_skipped_not_failed(self, stadtwerke, monkeypatch):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1))
        original = services.selectors.roadworks_due_to_start

        def due_then_edited(*, now):
            rows = list(original(now=now).values_list("pk", "version"))
            Roadwork.objects.filter(pk=work.pk).update(version=5)  # someone edits between query and step
            return FakeQuerySet(rows)

        monkeypatch.setattr(services.selectors, "roadworks_due_to_start", due_then_edited)
        assert roadworks_advance_statuses() == {"started": 0, "completed": 0, "skipped": 1}
        assert Roadwork.objects.get(pk=work.pk).status == S.APPROVED

    def test_the_task_calls_the_service(self, stadtwerke):
        make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1))
        assert tasks.roadworks_advance_statuses() == {"started": 1, "completed": 0, "skipped": 0}


class FakeQuerySet:
    def __init__(self, rows):
        self.rows = rows

    def values_list(self, *fields):
        return self.rows


def test_the_task_is_scheduled_in_celery_beat_every_few_minutes():
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("roadworks_advance_statuses")]
    assert len(entries) == 1
    assert entries[0]["task"] == "roadworks.tasks.roadworks_advance_statuses"
    assert timedelta(minutes=1) <= entries[0]["schedule"] <= timedelta(minutes=15)
    from auman.celery import app

    app.loader.import_default_modules()
    assert "roadworks.tasks.roadworks_advance_statuses" in app.tasks


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_advances_a_work_that_has_just_begun(celery_worker_process, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-1 / 24 / 60))

    tasks.roadworks_advance_statuses.delay()

    wait_until(lambda: Roadwork.objects.get(pk=work.pk).status == S.IN_PROGRESS)
    assert steps(work) == [("start", S.APPROVED, S.IN_PROGRESS, None)]
    # The start queues conflict detection: let it finish before the database is flushed for the next test.
    wait_for_idle_worker()


# --- Reports by the applicant -------------------------------------------------------------------


@pytest.mark.django_db
class TestReports:
    def test_reporting_the_start_moves_an_approved_work_in_progress(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        started = timezone.now() - timedelta(minutes=30)

        response = report(api(alice), work, actual_start=started.isoformat())

        assert response.status_code == 200, response.json()
        assert response.json()["properties"]["status"] == S.IN_PROGRESS
        work.refresh_from_db()
        assert work.actual_start == started
        assert steps(work) == [("start", S.APPROVED, S.IN_PROGRESS, "alice")]
        assert response["ETag"] == '"2"'

    def test_reporting_the_end_completes_a_running_work(self, api, alice, stadtwerke):
        work = make_roadwork(
            stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1), actual_start=timezone.now() - timedelta(days=1)
        )
        response = report(api(alice), work, actual_end=timezone.now().isoformat())
        assert response.status_code == 200, response.json()
        work.refresh_from_db()
        assert work.status == S.COMPLETED and work.actual_end is not None
        assert steps(work) == [("complete", S.IN_PROGRESS, S.COMPLETED, "alice")]

    def test_start_and_end_at_once_record_both_steps(self, api, bob, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.5))
        now = timezone.now()
        response = report(
            api(bob),
            work,
            actual_start=(now - timedelta(hours=3)).isoformat(),
            actual_end=(now - timedelta(hours=1)).isoformat(),
        )
        assert response.status_code == 200, response.json()
        assert [step[0] for step in steps(work)] == ["start", "complete"]
        assert Roadwork.objects.get(pk=work.pk).version == 2

    def test_a_later_report_corrects_the_time_without_a_step(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1))
        corrected = timezone.now() - timedelta(hours=20)
        assert report(api(alice), work, actual_start=corrected.isoformat()).status_code == 200
        work.refresh_from_db()
        assert work.status == S.IN_PROGRESS and work.actual_start == corrected
        assert steps(work) == []

    def test_the_end_must_follow_the_start(self, api, alice, stadtwerke):
        start = timezone.now() - timedelta(hours=2)
        work = make_roadwork(stadtwerke, status=S.IN_PROGRESS, period=from_now(days=-1), actual_start=start)
        response = report(api(alice), work, actual_end=(start - timedelta(minutes=5)).isoformat())
        assert response.status_code == 400
        expected = str(MSG_REPORT_END_BEFORE_START).format(start=timezone.localtime(start).isoformat())
        assert response.json()["actual_end"] == [expected]
        assert Roadwork.objects.get(pk=work.pk).status == S.IN_PROGRESS

    def test_a_time_in_the_future_is_refused_beyond_a_few_minutes(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        too_late = report(api(alice), work, actual_start=(timezone.now() + timedelta(minutes=30)).isoformat())
        assert too_late.status_code == 400
        assert too_late.json()["actual_start"] == [str(MSG_REPORT_FUTURE)]
        clock_skew = report(api(alice), work, actual_start=(timezone.now() + timedelta(minutes=2)).isoformat())
        assert clock_skew.status_code == 200

    def test_an_end_without_a_start_is_refused_for_approved_works(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        response = report(api(alice), work, actual_end=timezone.now().isoformat())
        assert response.status_code == 409
        assert response.json()["detail"] == str(MSG_REPORT_START_FIRST)

    @pytest.mark.parametrize("status", [S.DRAFT, S.SUBMITTED, S.REFUSED, S.CANCELLED, S.REVOKED])
    def test_works_not_approved_have_nothing_to_report(self, api, bob, stadtwerke, status):
        work = make_roadwork(stadtwerke, status=status, period=from_now(days=-0.1))
        assert report(api(bob), work, actual_start=timezone.now().isoformat()).status_code == 409
        assert Roadwork.objects.get(pk=work.pk).actual_start is None

    @pytest.mark.parametrize(("persona", "code"), [("erin", 403), ("carol", 403), ("dave", 403)])
    def test_only_the_applicant_organisation_and_the_authority_report(self, api, request, stadtwerke, persona, code):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        response = report(api(request.getfixturevalue(persona)), work, actual_start=timezone.now().isoformat())
        assert response.status_code == code
        assert Roadwork.objects.get(pk=work.pk).status == S.APPROVED

    def test_an_empty_or_unknown_report_is_refused(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        assert report(api(alice), work).status_code == 400
        assert report(api(alice), work, actual_begin=timezone.now().isoformat()).status_code == 400
        assert report(api(alice), work, actual_start="yesterday").status_code == 400

    def test_a_stale_report_is_refused_with_412(self, api, alice, stadtwerke):
        work = make_roadwork(stadtwerke, status=S.APPROVED, period=from_now(days=-0.1))
        response = report(api(alice), work, version=7, actual_start=timezone.now().isoformat())
        assert response.status_code == 412
