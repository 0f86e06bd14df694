"""Decision deadlines: working days per category from the (last) submission; the overdue list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from roadworks import workflow
from roadworks.api import MSG_OVERDUE_AUTHORITY_ONLY
from roadworks.categories import decision_due
from roadworks.models import Roadwork, RoadworkCategory, RoadworkStatus
from roadworks.selectors import roadworks_overdue
from roadworks.workdays import add_working_days
from tests.conftest import KAISERRING, feature, features_of, geojson_line, local, make_roadwork

from .helpers import from_now, period_json, transition

S = RoadworkStatus


def test_the_decision_is_due_the_configured_working_days_after_the_submission_day(settings):
    settings.AUMAN_DECISION_DAYS = {"minor": 5, "standard": 10, "major": 20, "emergency": 2}
    settings.AUMAN_HOLIDAY_STATE = "BW"
    thursday_before_easter = local(2027, 3, 25, 16)
    assert decision_due(category=RoadworkCategory.MINOR, submitted_at=thursday_before_easter) == date(2027, 4, 5)
    assert decision_due(category=RoadworkCategory.EMERGENCY, submitted_at=thursday_before_easter) == date(2027, 3, 31)
    assert decision_due(category=RoadworkCategory.MAJOR, submitted_at=thursday_before_easter) == date(2027, 4, 26)


def test_the_submission_day_is_the_local_day():
    # 23:30 UTC on Friday is Saturday in Berlin: counting starts from Saturday, so Monday is the first day.
    friday_night_utc = datetime(2027, 3, 12, 23, 30, tzinfo=UTC)
    assert decision_due(category=RoadworkCategory.EMERGENCY, submitted_at=friday_night_utc, state="BW") == date(
        2027, 3, 16
    )


def test_the_deadlines_are_a_setting(settings):
    settings.AUMAN_DECISION_DAYS = {"minor": 1, "standard": 10, "major": 20, "emergency": 0}
    monday = local(2027, 3, 8, 9)
    assert decision_due(category=RoadworkCategory.MINOR, submitted_at=monday) == date(2027, 3, 9)
    assert decision_due(category=RoadworkCategory.EMERGENCY, submitted_at=monday) == date(2027, 3, 8)


@pytest.mark.parametrize(
    "value", ['{"minor": -1}', '{"tiny": 3}', "[5, 10]", '{"major": "20"}', '{"major": true}', "not json"]
)
def test_bad_deadline_settings_fail_loudly(monkeypatch, value):
    from auman import settings as project_settings

    monkeypatch.setenv("AUMAN_DECISION_DAYS", value)
    with pytest.raises(ImproperlyConfigured):
        project_settings._decision_days()


def test_deadline_settings_may_override_some_categories(monkeypatch):
    from auman import settings as project_settings

    monkeypatch.setenv("AUMAN_DECISION_DAYS", '{"major": 30}')
    assert project_settings._decision_days() == {"minor": 5, "standard": 10, "major": 30, "emergency": 2}


# --- Stamped by the workflow --------------------------------------------------------------------


@pytest.mark.django_db
def test_submitting_stamps_the_submission_and_the_due_day(api, alice):
    body = feature(geojson_line(KAISERRING), title="x", period=period_json(from_now(days=20, length=2)))
    created = api(alice).post("/api/v1/roadworks/", body, format="json")
    work = Roadwork.objects.get(pk=created.json()["id"])
    assert work.decision_due is None

    response = transition(api(alice), work, S.SUBMITTED)

    properties = response.json()["properties"]
    work.refresh_from_db()
    assert work.category == RoadworkCategory.MINOR
    expected = add_working_days(timezone.localdate(), 5)
    assert work.decision_due == expected
    assert properties["decision_due"] == expected.isoformat()
    assert properties["decision_overdue"] is False


@pytest.mark.django_db
def test_a_resubmission_restarts_the_deadline(api, alice, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.DRAFT, period=from_now(days=40, length=2))
    transition(api(alice), work, S.SUBMITTED)
    long_ago = timezone.now() - timedelta(days=30)
    Roadwork.objects.filter(pk=work.pk).update(submitted_at=long_ago, decision_due=long_ago.date())
    transition(api(bob), work, S.MODIFICATION_REQUESTED, comment="Bitte Verkehrszeichenplan ergänzen.")

    transition(api(alice), work, S.SUBMITTED)

    work.refresh_from_db()
    assert work.submitted_at > timezone.now() - timedelta(minutes=1)
    assert work.decision_due == add_working_days(timezone.localdate(), 5)


@pytest.mark.django_db
def test_a_decision_stamps_decided_at_and_ends_the_wait(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=10), decision_due=date(2020, 1, 1))
    assert workflow.is_overdue(work, timezone.localdate())
    transition(api(bob), work, S.REFUSED, comment="Kollision mit Veranstaltung.")
    work.refresh_from_db()
    assert work.decided_at is not None
    assert not workflow.is_overdue(work, timezone.localdate())


# --- The overdue list ---------------------------------------------------------------------------


@pytest.fixture
def waiting(stadtwerke, telekom):
    yesterday = timezone.localdate() - timedelta(days=1)
    today = timezone.localdate()
    return {
        "overdue": make_roadwork(stadtwerke, status=S.SUBMITTED, decision_due=yesterday),
        "due_today": make_roadwork(telekom, status=S.SUBMITTED, decision_due=today),
        "decided": make_roadwork(stadtwerke, status=S.APPROVED, decision_due=yesterday),
        "emergency_overdue": make_roadwork(
            telekom, status=S.IN_PROGRESS, is_emergency=True, decision_due=yesterday, period=from_now(days=-3)
        ),
        "emergency_decided": make_roadwork(
            telekom,
            status=S.IN_PROGRESS,
            is_emergency=True,
            decision_due=yesterday,
            decided_at=timezone.now(),
            period=from_now(days=-3),
        ),
    }


@pytest.mark.django_db
def test_the_authority_lists_overdue_decisions(api, bob, waiting):
    refs = {f["properties"]["reference"] for f in features_of(api(bob).get("/api/v1/roadworks/?overdue=true"))}
    assert refs == {waiting["overdue"].reference, waiting["emergency_overdue"].reference}
    rest = {f["properties"]["reference"] for f in features_of(api(bob).get("/api/v1/roadworks/?overdue=false"))}
    assert rest == {waiting[name].reference for name in ("due_today", "decided", "emergency_decided")}


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["alice", "carol", "dave", None])
def test_only_the_authority_may_list_overdue_decisions(api, request, waiting, persona):
    user = request.getfixturevalue(persona) if persona else None
    response = api(user).get("/api/v1/roadworks/?overdue=true")
    assert response.status_code == 403
    assert response.json()["detail"] == str(MSG_OVERDUE_AUTHORITY_ONLY)


@pytest.mark.django_db
def test_the_overdue_selector_and_the_flag_on_each_work_agree(waiting):
    today = timezone.localdate()
    selected = set(roadworks_overdue(today=today).values_list("pk", flat=True))
    flagged = {work.pk for work in Roadwork.objects.all() if workflow.is_overdue(work, today)}
    assert selected == flagged == {waiting["overdue"].pk, waiting["emergency_overdue"].pk}


@pytest.mark.django_db
def test_the_public_does_not_see_deadlines(api, bob, waiting):
    work = waiting["decided"]
    public = api(None).get(f"/api/v1/roadworks/{work.pk}/").json()["properties"]
    internal = api(bob).get(f"/api/v1/roadworks/{work.pk}/").json()["properties"]
    for name in ("decision_due", "decision_overdue", "submitted_at", "decided_at", "contact_name"):
        assert name not in public
        assert name in internal
