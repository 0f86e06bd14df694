"""The transactional outbox: follow-up work commits with the change, and a broker outage only delays it.

The end-to-end proof with a really stopped Redis is in tests/reliability/test_faults.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from jobs import outbox
from jobs.models import OutboxMessage
from jobs.tasks import outbox_relay
from roadworks import tasks as roadwork_tasks
from tests.conftest import KAISERRING, feature, geojson_line

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, tuple]]:
    """What reached the broker: the detection task's delay() is replaced by a recorder."""
    calls: list[tuple[str, tuple]] = []
    task = roadwork_tasks.conflicts_detect_for_roadwork
    monkeypatch.setattr(task, "delay", lambda *args: calls.append((task.name, args)))
    return calls


@pytest.fixture
def broker_down(monkeypatch) -> None:
    def refuse(*args):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(roadwork_tasks.conflicts_detect_for_roadwork, "delay", refuse)


def create_work(api, user):
    return api(user).post(
        "/api/v1/roadworks/", feature(geojson_line(KAISERRING), title="Gasleitung", period=PERIOD), format="json"
    )


def test_a_write_and_its_follow_up_task_commit_together(api, alice, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_work(api, alice)
    assert response.status_code == 201
    message = OutboxMessage.objects.get()
    assert (message.task, message.args) == ("roadworks.tasks.conflicts_detect_for_roadwork", [response.json()["id"]])
    # Handed over right after the commit, and marked so no relay sends it again.
    assert sent == [("roadworks.tasks.conflicts_detect_for_roadwork", (response.json()["id"],))]
    message.refresh_from_db()
    assert message.sent_at is not None and message.attempts == 1


def test_a_rolled_back_write_leaves_no_task_behind(alice, sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "some-id")
        raise RuntimeError("the write failed")
    assert not OutboxMessage.objects.exists()


def test_with_the_broker_down_the_write_succeeds_and_its_task_stays_pending(
    api, alice, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_work(api, alice)
    assert response.status_code == 201
    message = OutboxMessage.objects.get()
    assert message.sent_at is None
    assert message.attempts == 1 and "Connection refused" in message.last_error


def test_the_relay_sends_what_is_pending_once_the_broker_is_back(alice, sent, monkeypatch):
    first = outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "a")
    second = outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "b")
    assert outbox.pending_count() == 2

    assert outbox.relay() == 2
    assert [args for _, args in sent] == [("a",), ("b",)]  # oldest first
    assert outbox.relay() == 0  # sent once, not again
    assert outbox.pending_count() == 0
    assert OutboxMessage.objects.filter(pk__in=[first.pk, second.pk], sent_at__isnull=False).count() == 2


def test_the_relay_stops_at_a_broker_outage_and_keeps_the_rest(alice, broker_down):
    for key in ("a", "b", "c"):
        outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, key)
    assert outbox.relay() == 0
    # One attempt, then it stops: no point hammering a broker that is down.
    assert list(OutboxMessage.objects.order_by("pk").values_list("attempts", flat=True)) == [1, 0, 0]
    assert outbox.pending_count() == 3


def test_a_message_for_an_unknown_task_does_not_block_the_others(alice, sent):
    OutboxMessage.objects.create(task="no.such.task", args=[])
    outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "a")
    assert outbox.relay() == 1
    assert sent == [("roadworks.tasks.conflicts_detect_for_roadwork", ("a",))]
    stuck = OutboxMessage.objects.get(task="no.such.task")
    assert stuck.sent_at is None and "no.such.task" in stuck.last_error


def test_the_periodic_relay_sends_and_purges_old_sent_messages(alice, sent, settings):
    settings.AUMAN_OUTBOX_KEEP_DAYS = 7
    old = OutboxMessage.objects.create(task="roadworks.tasks.conflicts_detect_for_roadwork", args=["old"])
    OutboxMessage.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(days=8))
    outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "new")
    assert outbox_relay() == {"sent": 1, "purged": 1}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


def test_every_follow_up_of_the_services_goes_through_the_outbox():
    """No service may go back to on_commit(task.delay): that lost the task whenever the broker was down."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    apps = ("accounts", "auman", "gisio", "interop", "maps", "roadworks", "traffic")
    for path in [path for app in apps for path in root.glob(f"{app}/**/*.py")]:
        text = path.read_text()
        if re.search(r"on_commit\([^)]*\.(delay|apply_async)\(", text):
            offenders.append(path.name)
    assert offenders == []


def test_the_workers_relay_loop_carries_on_after_a_failure(monkeypatch):
    """A database or broker error in one tick must not end the loop: the next tick tries again."""
    import threading

    from jobs import signals

    calls: list[str] = []

    def flaky_relay() -> int:
        calls.append("tick")
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return 0

    monkeypatch.setattr(signals.outbox, "relay", flaky_relay)
    monkeypatch.setattr(signals, "close_old_connections", lambda: None)
    stop = threading.Event()
    loop = threading.Thread(target=signals.relay_loop, args=(stop, 0.01))
    loop.start()
    try:
        deadline = timezone.now() + timedelta(seconds=5)
        while len(calls) < 3 and timezone.now() < deadline:
            stop.wait(0.01)
    finally:
        stop.set()
        loop.join(timeout=5)
    assert len(calls) >= 3 and not loop.is_alive()


def test_the_operators_command_sends_and_says_what_is_left(alice, sent):
    from io import StringIO

    from django.core.management import call_command

    outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "a")
    out = StringIO()
    call_command("outbox_relay", stdout=out)
    assert out.getvalue().strip() == "sent: 1, still pending: 0"


def test_the_operators_command_fails_while_messages_stay_pending(alice, broker_down):
    from io import StringIO

    from django.core.management import call_command

    outbox.enqueue(roadwork_tasks.conflicts_detect_for_roadwork, "a")
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("outbox_relay", stdout=out)
    assert out.getvalue().strip() == "sent: 0, still pending: 1"
