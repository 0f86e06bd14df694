"""manage.py check_feeds: builds and validates every registered feed, reports stale items, fails on errors."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.utils import timezone

from roadworks.models import Roadwork, RoadworkStatus
from tests.conftest import make_incident, make_roadwork, period
from traffic.feeds import registry
from traffic.feeds.registry import FEEDS, Feed
from traffic.models import Incident

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("check_feeds", *args, stdout=out)
    return out.getvalue()


def test_it_validates_every_registered_feed_on_data_of_every_kind(every_roadwork, every_incident):
    output = run()
    for key in FEEDS:
        assert f"OK    {key} " in output, output
    assert "ERROR" not in output


def test_it_reports_works_that_ended_two_weeks_ago_and_items_not_updated_for_two_weeks(stadtwerke):
    now = timezone.now()
    ended = make_roadwork(stadtwerke, status=RoadworkStatus.IN_PROGRESS, period=period(now - timedelta(days=30), 10))
    fresh = make_roadwork(stadtwerke, period=period(now, 10))
    untouched = make_incident()
    Roadwork.objects.filter(pk=ended.pk).update(updated_at=now - timedelta(days=20))
    Incident.objects.filter(pk=untouched.pk).update(updated_at=now - timedelta(days=15))
    output = run()
    assert f"STALE 1 roadworks ended more than 14 days ago: {ended.pk}" in output
    assert f"STALE 1 roadworks not updated for 14 days: {ended.pk}" in output
    assert f"STALE 1 incidents not updated for 14 days: {untouched.pk}" in output
    assert str(fresh.pk) not in output
    # stale items are a warning; --strict makes them an error
    with pytest.raises(CommandError, match="3 stale item"):
        run("--strict")


def test_it_fails_with_a_non_zero_exit_code_when_a_feed_is_invalid(monkeypatch, stadtwerke):
    make_roadwork(stadtwerke)
    broken = Feed(
        key="broken",
        title="Broken",
        format="WZDx 4.2",
        url_name="feeds:wzdx-workzones",
        content_type="application/geo+json",
        validate=lambda body: ["features/0: everything is wrong"],
    )
    monkeypatch.setitem(registry.FEEDS, "broken", broken)
    with pytest.raises(CommandError, match="1 feed"):
        run()
    # from the command line, as cron or CI runs it: the exit code says it
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "check_feeds", "--feed", "broken", "--skip-checks"])
    assert exit_info.value.code == 1


def test_it_exits_with_zero_when_every_feed_is_valid(stadtwerke):
    make_roadwork(stadtwerke)
    execute_from_command_line(["manage.py", "check_feeds", "--skip-checks"])  # no SystemExit: exit code 0


def test_it_refuses_an_unknown_feed_name():
    with pytest.raises(CommandError, match="unknown feed"):
        run("--feed", "nonsense")
