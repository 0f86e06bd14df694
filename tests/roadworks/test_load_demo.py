"""load_demo: idempotent demo data that keeps the demo map current; demo_logins: the table `make run` prints."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from itertools import pairwise

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.management.commands.demo_logins import CHANGED, HINT_NO_DEMO_USERS
from accounts.models import Organisation, Role, User
from auman.geo import service_area
from roadworks import workflow
from roadworks.management.commands.load_demo import (
    DEMO_INCIDENTS,
    DEMO_ROADWORKS,
    DEMO_USERS,
    demo_incident_id,
    demo_password,
)
from roadworks.models import (
    Conflict,
    Detour,
    Roadwork,
    RoadworkCategory,
    RoadworkStatus,
    RoadworkTransition,
    TrafficManagement,
)
from roadworks.selectors import roadworks_overdue
from tests.conftest import client_for
from traffic.models import ACTIVE_INCIDENT_STATUSES, Incident, IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def demo_logins() -> str:
    out = StringIO()
    call_command("demo_logins", stdout=out)
    return out.getvalue()


def row_counts() -> dict[str, int]:
    return {
        "organisations": Organisation.objects.count(),
        "users": User.objects.count(),
        "tokens": Token.objects.count(),
        "roadworks": Roadwork.objects.count(),
        "incidents": Incident.objects.count(),
        "conflicts": Conflict.objects.count(),
    }


@pytest.fixture
def demo(db) -> None:
    load_demo()


def demo_roadworks():
    return Roadwork.objects.filter(reference__in=[spec.reference for spec in DEMO_ROADWORKS])


def demo_incidents():
    return Incident.objects.filter(id__in=[demo_incident_id(spec.key) for spec in DEMO_INCIDENTS])


def test_it_leaves_the_same_rows_when_run_twice(db):
    summary = load_demo()
    first = row_counts()
    ids = set(Roadwork.objects.values_list("id", flat=True)) | set(Incident.objects.values_list("id", flat=True))
    conflicts = set(Conflict.objects.values_list("id", "rule", "roadwork_a", "roadwork_b"))

    load_demo()

    assert row_counts() == first
    assert (
        set(Roadwork.objects.values_list("id", flat=True)) | set(Incident.objects.values_list("id", flat=True)) == ids
    )
    assert set(Conflict.objects.values_list("id", "rule", "roadwork_a", "roadwork_b")) == conflicts
    assert first["roadworks"] == len(DEMO_ROADWORKS) and first["incidents"] == len(DEMO_INCIDENTS)
    assert first["users"] == first["tokens"] == len(DEMO_USERS)
    assert len(summary.strip().splitlines()) == 1, summary


def test_it_lets_every_demo_user_sign_in_and_use_the_api_with_a_token(demo):
    for spec in DEMO_USERS:
        user = User.objects.get(username=spec.username)
        assert user.role == spec.role and user.organisation.name == spec.organisation
        assert Client().login(username=spec.username, password=demo_password(spec.username)), spec.username
        assert Token.objects.filter(user=user).exists()
        assert client_for(user).get("/api/v1/roadworks/").status_code == 200


def test_it_gives_each_role_its_kind_of_organisation(demo):
    kinds = {user.role: user.organisation.kind for user in User.objects.select_related("organisation")}
    assert kinds[Role.AUTHORITY] == Organisation.Kind.AUTHORITY
    assert kinds[Role.APPLICANT] == Organisation.Kind.UTILITY
    assert kinds[Role.POLICE] == Organisation.Kind.POLICE
    assert Role.CONTROL_ROOM in kinds


def test_it_does_not_reset_a_changed_demo_password(demo):
    user = User.objects.get(username="behoerde")
    user.set_password("a-password-of-her-own")
    user.save()
    token = Token.objects.get(user=user).key

    load_demo()

    user.refresh_from_db()
    assert user.check_password("a-password-of-her-own")
    assert not user.check_password(demo_password("behoerde"))
    assert Token.objects.get(user=user).key == token


def test_it_puts_every_demo_geometry_inside_the_service_area(demo):
    area = service_area()
    for roadwork in demo_roadworks():
        assert roadwork.geometry.srid == settings.AUMAN_SRID
        assert area.covers(roadwork.geometry), roadwork.reference
    for incident in demo_incidents():
        assert area.covers(incident.location), incident.street_name
        if incident.affected_line is not None:
            assert area.covers(incident.affected_line), incident.street_name


def test_it_draws_lines_and_at_least_one_area(demo):
    types = {roadwork.geometry.geom_type for roadwork in demo_roadworks()}
    assert {"LineString", "Polygon"} <= types


def test_it_covers_every_traffic_management_value(demo):
    used = set(demo_roadworks().values_list("traffic_management", flat=True))
    assert used == set(TrafficManagement.values)


def test_it_finds_the_deliberate_conflict_without_a_worker(demo):
    pair = Conflict.objects.filter(roadwork_a__reference__startswith="DEMO-").select_related("roadwork_a", "roadwork_b")
    # The deliberate pair among the demo's conflicts (a conflict with a layer has no roadwork_b); no order is
    # defined among them, so the pair is looked for rather than taken first.
    pairs = {frozenset((c.roadwork_a.reference, c.roadwork_b.reference)) for c in pair if c.roadwork_b is not None}
    assert frozenset(("DEMO-001", "DEMO-002")) in pairs


def test_it_spreads_statuses_and_times_around_now(demo):
    now = timezone.now()
    works = list(demo_roadworks())
    statuses = {work.status for work in works}
    assert {
        RoadworkStatus.APPROVED,
        RoadworkStatus.IN_PROGRESS,
        RoadworkStatus.SUBMITTED,
        RoadworkStatus.DRAFT,
        RoadworkStatus.COMPLETED,
    } <= statuses
    active = [w for w in works if w.status == RoadworkStatus.IN_PROGRESS]
    assert active and all(w.period.lower <= now < w.period.upper for w in active)
    assert any(w.status == RoadworkStatus.APPROVED and now < w.period.lower < now + timedelta(weeks=4) for w in works)
    completed = [w for w in works if w.status == RoadworkStatus.COMPLETED]
    assert completed and all(now - timedelta(days=14) < w.period.upper < now for w in completed)


def test_it_recomputes_the_periods_relative_to_now_on_every_run(demo):
    stale = DateTimeTZRange(timezone.now() - timedelta(days=400), timezone.now() - timedelta(days=390), "[)")
    Roadwork.objects.filter(reference="DEMO-001").update(period=stale)
    Incident.objects.filter(id=demo_incident_id("accident-tattersall")).update(
        occurred_at=stale.lower, reported_at=stale.lower, confirmed_at=stale.lower
    )

    load_demo()

    now = timezone.now()
    period = Roadwork.objects.get(reference="DEMO-001").period
    assert period.lower <= now < period.upper
    assert Incident.objects.get(id=demo_incident_id("accident-tattersall")).occurred_at > now - timedelta(hours=2)


def test_it_logs_active_incidents_of_every_main_kind_and_one_cleared(demo):
    incidents = list(demo_incidents())
    active = [i for i in incidents if i.status in ACTIVE_INCIDENT_STATUSES]
    assert len(active) >= 5
    assert {
        IncidentKind.ACCIDENT,
        IncidentKind.BREAKDOWN,
        IncidentKind.OBSTRUCTION,
        IncidentKind.HAZARD,
        IncidentKind.POLICE_OPERATION,
    } <= {i.kind for i in active}
    assert all(i.period.upper is None for i in active)
    cleared = [i for i in incidents if i.status == IncidentStatus.CLEARED]
    assert len(cleared) == 1 and cleared[0].period.upper == cleared[0].cleared_at


def test_it_lists_the_demo_logins_with_password_and_token(demo):
    table = demo_logins()
    for spec in DEMO_USERS:
        user = User.objects.get(username=spec.username)
        line = next(line for line in table.splitlines() if line.startswith(spec.username + " "))
        assert demo_password(spec.username) in line
        assert Token.objects.get(user=user).key in line
        assert user.organisation.name in line


def test_it_hides_a_changed_password_in_the_logins_table(demo):
    user = User.objects.get(username="polizei")
    user.set_password("changed-by-carol")
    user.save()

    line = next(line for line in demo_logins().splitlines() if line.startswith("polizei "))

    assert CHANGED in line
    assert demo_password("polizei") not in line and "changed-by-carol" not in line


def test_it_hints_at_load_demo_when_there_are_no_demo_logins(db):
    assert demo_logins().strip() == HINT_NO_DEMO_USERS


# --- The application's parts and the workflow -------------------------------------------------


def test_it_shows_night_works_with_daily_windows_and_weekdays(demo):
    night = Roadwork.objects.get(reference="DEMO-003")
    assert (night.daily_start.hour, night.daily_end.hour) == (20, 5)
    assert night.weekdays == [0, 1, 2, 3, 4]
    assert Roadwork.objects.filter(reference__startswith="DEMO-", daily_start__isnull=False).count() >= 2


def test_it_gives_works_detours_inside_their_periods_and_a_pedestrian_route(demo):
    area = service_area()
    detoured = Roadwork.objects.get(reference="DEMO-003")
    assert detoured.detours.count() == 2
    timed = Detour.objects.filter(roadwork__reference__startswith="DEMO-", period__isnull=False)
    assert timed.exists()
    for detour in Detour.objects.filter(roadwork__reference__startswith="DEMO-").select_related("roadwork"):
        assert area.covers(detour.geometry), detour.name
        if detour.period is not None:
            assert detour.roadwork.period.lower <= detour.period.lower < detour.period.upper
            assert detour.period.upper <= detour.roadwork.period.upper
    assert Roadwork.objects.filter(reference__startswith="DEMO-", pedestrian_route__isnull=False).exists()


def test_it_reports_one_emergency_awaiting_its_decision(demo):
    emergency = Roadwork.objects.get(reference__startswith="DEMO-", is_emergency=True)
    assert emergency.status == RoadworkStatus.IN_PROGRESS
    assert emergency.category == RoadworkCategory.EMERGENCY
    assert workflow.is_awaiting_decision(emergency)
    assert list(emergency.transitions.values_list("action", flat=True)) == ["create_emergency"]


def test_it_gives_every_work_a_history_that_ends_in_its_status(demo):
    now = timezone.now()
    for work in demo_roadworks():
        steps = list(work.transitions.order_by("at", "id"))
        assert steps, work.reference
        assert steps[0].from_status == "" and steps[-1].to_status == work.status, work.reference
        assert all(a.to_status == b.from_status for a, b in pairwise(steps)), work.reference
        assert all(step.at <= now for step in steps), work.reference
        # Each step is one the workflow defines (creation aside).
        names = {t.name for t in workflow.TRANSITIONS} | {"create", "create_emergency"}
        assert {step.action for step in steps} <= names, work.reference


def test_it_keeps_the_history_and_detours_the_same_on_a_second_run(demo):
    before = (RoadworkTransition.objects.count(), Detour.objects.count())
    load_demo()
    assert (RoadworkTransition.objects.count(), Detour.objects.count()) == before


def test_it_shows_an_overdue_decision_and_contacts(demo):
    overdue = roadworks_overdue().filter(reference__startswith="DEMO-")
    assert overdue.filter(status=RoadworkStatus.SUBMITTED).exists()
    assert not demo_roadworks().filter(contact_email="").exists()
    assert all(work.category for work in demo_roadworks())


# --- Coordination rules: the demo shows each one ------------------------------------------------------------------


def test_it_shows_every_coordination_rule_at_least_once(demo):
    from roadworks.models import ConflictStatus

    open_by_rule = {rule: sorted(refs) for rule, refs in _open_conflicts_by_rule().items()}
    for rule in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C10"):
        assert open_by_rule.get(rule), f"{rule} shows no open conflict in the demo: {open_by_rule}"
    assert ConflictStatus.OPEN


def _open_conflicts_by_rule() -> dict[str, set[str]]:
    from roadworks.models import ConflictStatus

    result: dict[str, set[str]] = {}
    for rule, a, b, layer, item in Conflict.objects.filter(status=ConflictStatus.OPEN).values_list(
        "rule", "roadwork_a__reference", "roadwork_b__reference", "layer", "layer_object_id"
    ):
        result.setdefault(rule, set()).add(f"{a}/{b or layer + ':' + item}")
    return result


def test_it_refuses_a_register_with_real_roadworks_unless_forced(stadtwerke):
    from tests.conftest import make_roadwork

    make_roadwork(stadtwerke, reference="2026-REAL-1")
    before = row_counts()

    with pytest.raises(CommandError) as refused:
        load_demo()

    assert "1" in str(refused.value) and "--force" in str(refused.value)
    assert row_counts() == before  # nothing loaded
    call_command("load_demo", "--force", stdout=StringIO())
    assert Roadwork.objects.filter(reference__startswith="DEMO-").count() == len(DEMO_ROADWORKS)


def test_it_refuses_a_public_https_site_unless_forced(settings):
    settings.SITE_URL = "https://baustellen.example.org"

    with pytest.raises(CommandError) as refused:
        load_demo()

    assert "https://baustellen.example.org" in str(refused.value)
    assert not Roadwork.objects.exists()


def test_a_second_run_is_not_refused_by_its_own_demo_data():
    load_demo()
    load_demo()  # the demo roadworks are not "real data"
    assert Roadwork.objects.filter(reference__startswith="DEMO-").count() == len(DEMO_ROADWORKS)
