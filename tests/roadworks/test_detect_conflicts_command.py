from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from roadworks.models import Conflict
from tests.conftest import KAISERRING_NEARBY, line, make_roadwork

pytestmark = pytest.mark.django_db


def test_detect_conflicts_runs_the_sweep_and_reports_counts(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    out = StringIO()
    call_command("detect_conflicts", stdout=out)
    assert Conflict.objects.count() == 1
    assert out.getvalue().startswith("C1: 1 conflicts hold; 1 new or changed, 0 resolved (no longer hold).")
    assert "C8: 0 conflicts hold" in out.getvalue()
    call_command("detect_conflicts", stdout=out)
    assert "0 new or changed" in out.getvalue()


def test_the_sweep_is_scheduled_in_celery_beat():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "roadworks.tasks.conflicts_sweep" in tasks
    from auman.celery import app

    app.loader.import_default_modules()
    assert "roadworks.tasks.conflicts_sweep" in app.tasks
