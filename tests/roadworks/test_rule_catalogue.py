"""The rule catalogue: parameters from settings, checked at start-up; a parameter change re-runs the rule; every
run over the catalogue covers every rule; per-roadwork runs stay in their scope; the statements use the indexes."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import override_settings

from roadworks import rules, services, tasks
from roadworks.checks import check_conflict_rules
from roadworks.models import Conflict, ConflictStatus, Roadwork, RuleState, Severity
from tests.conftest import KAISERRING_NEARBY, NECKARAU, line, make_roadwork
from tests.roadworks.rule_helpers import rule_parameters

pytestmark = pytest.mark.django_db


def test_the_catalogue_has_every_rule_of_the_issue():
    assert rules.codes() == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"]
    severities = {info.code: info.severity for info in rules.describe()}
    assert severities == {
        "C1": "error",
        "C2": "warning",
        "C3": "error",
        "C4": "warning",
        "C5": "error",
        "C6": "warning",
        "C7": "warning",
        "C8": "warning",
        "C9": "warning",
        "C10": "info",
    }


def test_the_default_parameters_pass_the_check():
    assert check_conflict_rules(None) == []


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ({"C99": {}}, "unknown rules ['C99']"),
        ({"C2": {"distanz_m": 5}}, "AUMAN_CONFLICT_RULES['C2']: unknown parameters ['distanz_m']"),
        ({"C2": {"distance_m": -1}}, "AUMAN_CONFLICT_RULES['C2']['distance_m'] must be a number from 0 to 5000"),
        ({"C2": {"distance_m": "300"}}, "must be a number from 0 to 5000, not '300'"),
        ({"C10": {"months": 2.5}}, "AUMAN_CONFLICT_RULES['C10']['months'] must be a whole number from 1 to 60"),
        ({"C1": {"severity": "fatal"}}, "must be one of error, warning, info, not 'fatal'"),
        ({"C5": {"exempt_emergency": "yes"}}, "must be true or false, not 'yes'"),
        ({"C4": {"impacts": []}}, "must be a non-empty list of distinct values"),
        ({"C7": {"kinds": ["tram_line", "ferry"]}}, "must be a non-empty list of distinct values"),
        ({"C8": {"buffer_m": 10}}, "AUMAN_CONFLICT_RULES['C8']: unknown parameters ['buffer_m']"),
    ],
)
def test_the_system_check_names_a_bad_parameter(configured, message):
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(**configured)):
        errors = check_conflict_rules(None)
    assert errors and all(error.id == "roadworks.E001" for error in errors)
    assert any(message in error.msg for error in errors), [error.msg for error in errors]


def test_the_mailed_severities_are_checked_too():
    with override_settings(AUMAN_CONFLICT_NOTIFY_SEVERITIES=["error", "fatal"]):
        errors = check_conflict_rules(None)
    assert [error.msg for error in errors] == [
        "AUMAN_CONFLICT_NOTIFY_SEVERITIES: unknown severities ['fatal']; use error, warning, info"
    ]


def test_a_missing_parameter_is_an_error_too():
    configured = rule_parameters()
    del configured["C6"]["distance_m"]
    with override_settings(AUMAN_CONFLICT_RULES=configured):
        assert "AUMAN_CONFLICT_RULES['C6']: parameters ['distance_m'] are missing" in check_conflict_rules(None)[0].msg


def test_manage_py_check_fails_loudly_on_a_bad_parameter():
    with (
        override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"buffer_m": "ten"})),
        pytest.raises(SystemCheckError, match=r"roadworks\.E001"),
    ):
        call_command("check")


def test_the_environment_overrides_single_parameters(monkeypatch):
    from auman import settings as project_settings

    monkeypatch.setenv("AUMAN_CONFLICT_RULES", '{"C2": {"distance_m": 500}, "C10": {"enabled": false}}')
    configured = project_settings._conflict_rules()
    assert configured["C2"] == {"enabled": True, "severity": "warning", "distance_m": 500, "skip_when_c1": True}
    assert configured["C10"]["enabled"] is False and configured["C10"]["months"] == 6


def test_a_severity_parameter_changes_the_stored_severity(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    services.conflicts_detect_for(roadwork_id=first.pk)
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"severity": "warning"})):
        assert services.conflicts_detect_for(roadwork_id=first.pk) == {"found": 1, "changed": 1, "resolved": 0}
    assert Conflict.objects.get().severity == Severity.WARNING


def test_a_disabled_rule_resolves_its_conflicts(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    services.conflicts_sweep()
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"enabled": False})):
        assert services.conflicts_sweep() == {"found": 0, "changed": 0, "resolved": 1}
    assert Conflict.objects.get().status == ConflictStatus.RESOLVED


# --- A parameter change re-runs the rule ---------------------------------------------------------------------


def test_a_full_sweep_records_what_each_rule_ran_with():
    services.conflicts_sweep_all()
    states = dict(RuleState.objects.values_list("code", "fingerprint"))
    assert states == {rule.code: rule.fingerprint() for rule in rules.CATALOGUE}
    assert services.conflicts_rules_changed() == []
    assert RuleState.objects.get(code="C2").parameters["distance_m"] == 300


def test_a_changed_parameter_re_runs_that_rule_once(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    coords = [(x, y + 30) for x, y in line(KAISERRING_NEARBY).coords]  # 30 m away: no C1 at 10 m
    make_roadwork(telekom, geometry=LineString(coords, srid=25832))
    services.conflicts_sweep_all()
    assert not Conflict.objects.filter(rule="C1").exists()

    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"buffer_m": 50})):
        assert services.conflicts_rules_changed() == ["C1", "C2"]  # C2 leaves C1's pairs to C1: it depends on it
        results = services.conflicts_sweep_changed_rules()
        assert set(results) == {"C1", "C2"} and results["C1"]["found"] == 1
        assert services.conflicts_sweep_changed_rules() == {}
    assert Conflict.objects.get(rule="C1").status == ConflictStatus.OPEN
    # Back to the start-up values: changed again, and the conflict goes.
    assert services.conflicts_rules_changed() == ["C1", "C2"]
    services.conflicts_sweep_changed_rules()
    assert Conflict.objects.get(rule="C1").status == ConflictStatus.RESOLVED


def test_a_starting_worker_queues_the_re_run_of_changed_rules(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.conflicts_sweep_changed_rules, "delay", lambda: queued.append(True))
    from celery.signals import worker_ready

    worker_ready.send(sender=None)
    assert queued == [True]


# --- Runs over the catalogue ------------------------------------------------------------------------------------


def test_detection_for_a_roadwork_runs_every_rule(stadtwerke):
    work = make_roadwork(stadtwerke)
    assert list(services.conflicts_detect_all_for(roadwork_id=work.pk)) == rules.codes()
    assert list(services.conflicts_sweep_all()) == rules.codes()


def test_a_run_for_one_roadwork_leaves_other_pairs_alone(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    services.conflicts_sweep()
    # The pair stops colliding, but only a third work is re-checked: the pair's conflict is not its business.
    Roadwork.objects.update(geometry=line(NECKARAU))
    third = make_roadwork(stadtwerke, reference="THIRD")
    assert services.conflicts_detect_for(roadwork_id=third.pk)["resolved"] == 0
    assert Conflict.objects.get().status == ConflictStatus.OPEN


@pytest.mark.parametrize("code", ["C1", "C2", "C10"])
def test_a_pair_rule_for_one_roadwork_uses_the_gist_index(stadtwerke, telekom, code):
    base = line(NECKARAU)
    for i in range(300):
        coords = [(x + 50 * (i % 30), y + 50 * (i // 30)) for x, y in base.coords]
        make_roadwork(telekom, reference=f"IDX-{i}", geometry=LineString(coords, srid=25832), excavation=True)
    first = make_roadwork(stadtwerke, excavation=True)
    sql, params = rules.get(code).statement(one=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE roadworks_roadwork")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, {**params, "id": str(first.pk)})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "roadwork_geom_period_gist" in plan, plan
