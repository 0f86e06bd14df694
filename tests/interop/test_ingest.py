"""Polling a source: upsert by the source's id, remove what disappears, never duplicate; the service area; health;
one transaction per poll; the lock; the beat task and the command."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.utils import timezone

from interop import selectors, services, tasks
from interop.fetch import MSG_FILE_UNREADABLE
from interop.models import ExternalItem, ExternalSource
from interop.parsers import MSG_DUPLICATE_ID, MSG_NO_GEOMETRY
from interop.parsers.wzdx import MSG_NOT_WZDX
from interop.services import MSG_OUTSIDE, MSG_PERIOD_ORDER
from tests.conftest import NECKARAU
from tests.interop.conftest import HONOLULU, rewrite, wzdx_feature, wzdx_feed
from tests.interop.test_parsers import DATEX3

pytestmark = pytest.mark.django_db


def poll(source: ExternalSource) -> services.PollResult:
    return services.source_poll(source_id=source.pk, force=True)


def test_it_stores_a_feeds_items_in_the_storage_srid(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("B", coords=NECKARAU)))
    result = poll(source)
    assert (result.status, result.items, result.created, result.updated, result.removed) == ("ok", 2, 2, 0, 0)
    item = ExternalItem.objects.get(source=source, source_item_id="A")
    assert item.geometry.srid == settings.AUMAN_SRID and item.geometry.geom_type == "LineString"
    assert 460_000 < item.geometry.coords[0][0] < 470_000  # UTM 32N easting of Mannheim
    assert item.kind == "roadworks" and item.restriction == "lane_closure" and item.title == "Baustelle A"
    assert item.period.lower.isoformat() == "2027-03-01T06:00:00+00:00"
    source.refresh_from_db()
    assert source.item_count == 2 and source.skipped_count == 0 and source.healthy


def test_a_second_poll_of_the_same_feed_changes_nothing(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("B")))
    poll(source)
    stamps = dict(ExternalItem.objects.values_list("source_item_id", "updated_at"))
    ids = dict(ExternalItem.objects.values_list("source_item_id", "pk"))
    again = poll(source)
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert dict(ExternalItem.objects.values_list("source_item_id", "updated_at")) == stamps
    assert dict(ExternalItem.objects.values_list("source_item_id", "pk")) == ids


def test_it_updates_changed_items_in_place_and_removes_those_gone(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("B"), wzdx_feature("C")))
    poll(source)
    a_id = ExternalItem.objects.get(source_item_id="A").pk
    rewrite(source, wzdx_feed(wzdx_feature("A", name="Neuer Name"), wzdx_feature("C"), wzdx_feature("D")))
    result = poll(source)
    assert (result.created, result.updated, result.removed) == (1, 1, 1)
    assert sorted(ExternalItem.objects.values_list("source_item_id", flat=True)) == ["A", "C", "D"]
    renamed = ExternalItem.objects.get(source_item_id="A")
    assert renamed.pk == a_id and renamed.title == "Neuer Name"


def test_the_same_id_in_two_sources_is_two_items_and_one_source_never_duplicates(file_source):
    first = file_source(wzdx_feed(wzdx_feature("A")), name="Heidelberg")
    second = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("A", name="again")), name="Ludwigshafen")
    poll(first)
    result = poll(second)
    poll(second)
    assert ExternalItem.objects.filter(source_item_id="A").count() == 2
    assert ExternalItem.objects.get(source=second).title == "Baustelle A"
    assert result.skipped == [{"record": "A", "reason": str(MSG_DUPLICATE_ID)}]


def test_items_outside_the_service_area_are_skipped_and_reported(file_source):
    source = file_source(wzdx_feed(wzdx_feature("inside"), wzdx_feature("hawaii", coords=HONOLULU)))
    result = poll(source)
    assert list(ExternalItem.objects.values_list("source_item_id", flat=True)) == ["inside"]
    assert {"record": "hawaii", "reason": str(MSG_OUTSIDE)} in result.skipped
    source.refresh_from_db()
    assert source.skipped_count == 1 and source.skipped == [{"record": "hawaii", "reason": str(MSG_OUTSIDE)}]


def test_an_item_that_moves_out_of_the_area_is_removed(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A")))
    poll(source)
    rewrite(source, wzdx_feed(wzdx_feature("A", coords=HONOLULU)))
    assert poll(source).removed == 1
    assert not ExternalItem.objects.exists()


def test_an_item_ending_before_it_starts_is_skipped(file_source):
    backwards = wzdx_feature("B", start_date="2027-03-10T00:00:00Z", end_date="2027-03-01T00:00:00Z")
    source = file_source(wzdx_feed(wzdx_feature("A"), backwards))
    result = poll(source)
    assert {"record": "B", "reason": str(MSG_PERIOD_ORDER)} in result.skipped
    assert ExternalItem.objects.count() == 1


def test_an_item_without_dates_is_open_ended(file_source):
    undated = wzdx_feature("A")
    del undated["properties"]["start_date"], undated["properties"]["end_date"]
    poll(file_source(wzdx_feed(undated)))
    item = ExternalItem.objects.get()
    assert item.period.lower is None and item.period.upper is None


def test_a_lenient_datex_feed_is_stored_and_its_skipped_records_show_in_the_health(file_source):
    source = file_source(DATEX3, fmt="datex2", name="Landesmeldestelle")
    result = poll(source)
    assert result.status == "ok"
    assert sorted(ExternalItem.objects.values_list("source_item_id", "kind")) == [
        ("S1-R1", "roadworks"),
        ("S1-R2", "closure"),
    ]
    source.refresh_from_db()
    assert source.skipped_count == 3
    assert {"record": "S1-R4", "reason": str(MSG_NO_GEOMETRY)} in source.skipped


def test_a_bad_feed_shows_an_error_and_leaves_the_items_as_they_were(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("B")))
    poll(source)
    source.refresh_from_db()
    success = source.last_success_at
    rewrite(source, b'{"type": "FeatureCollection", "features": [')  # cut off in transfer
    result = poll(source)
    assert result.status == "error" and str(MSG_NOT_WZDX) in result.error
    source.refresh_from_db()
    assert not source.healthy and str(MSG_NOT_WZDX) in source.last_error
    assert source.last_success_at == success and source.item_count == 2
    assert sorted(ExternalItem.objects.values_list("source_item_id", flat=True)) == ["A", "B"]


def test_a_failing_write_leaves_nothing_half_written(file_source, monkeypatch):
    source = file_source(wzdx_feed(wzdx_feature("A"), wzdx_feature("B")))
    poll(source)
    rewrite(source, wzdx_feed(wzdx_feature("A", name="changed"), wzdx_feature("C")))
    real_ingest = services.items_ingest

    def ingest_then_fail(**kwargs):
        real_ingest(**kwargs)  # the upsert and the delete ran ...
        raise DatabaseError("disk full")  # ... and then the transaction fails

    monkeypatch.setattr(services, "items_ingest", ingest_then_fail)
    result = poll(source)
    assert result.status == "error" and "disk full" in result.error
    assert sorted(ExternalItem.objects.values_list("source_item_id", "title")) == [
        ("A", "Baustelle A"),
        ("B", "Baustelle B"),
    ]
    source.refresh_from_db()
    assert "disk full" in source.last_error and source.item_count == 2


def test_a_missing_file_is_an_error_in_the_health(db):
    source = ExternalSource.objects.create(name="Weg", file_path="/nonexistent/feed.json", format="wzdx")
    result = poll(source)
    assert result.status == "error"
    source.refresh_from_db()
    assert source.last_error.startswith(str(MSG_FILE_UNREADABLE).format(detail=""))
    assert source.last_success_at is None


def test_only_enabled_sources_whose_interval_passed_are_due(file_source):
    never = file_source(wzdx_feed(), name="never polled")
    recent = file_source(wzdx_feed(), name="recent", last_attempt_at=timezone.now() - timedelta(minutes=1))
    old = file_source(wzdx_feed(), name="old", last_attempt_at=timezone.now() - timedelta(minutes=6))
    file_source(wzdx_feed(), name="off", enabled=False)
    assert selectors.sources_due() == sorted([never.pk, old.pk])
    assert services.source_poll(source_id=recent.pk).status == "not_due"


def test_a_source_being_polled_elsewhere_is_not_polled_again(file_source):
    source = file_source(wzdx_feed(wzdx_feature("A")))
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**{k: v for k, v in params.items() if k != "context"}, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [services._LOCK_KEY, source.pk])
        assert poll(source).status == "locked"
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [services._LOCK_KEY, source.pk])
    assert poll(source).status == "ok"


def test_the_beat_polls_every_minute_and_enqueues_each_due_source(file_source, monkeypatch):
    entry = settings.CELERY_BEAT_SCHEDULE["interop-poll-sources"]
    assert entry["task"] == "interop.tasks.sources_poll_due" and entry["schedule"] == timedelta(minutes=1)
    due = file_source(wzdx_feed(), name="due")
    file_source(wzdx_feed(), name="recent", last_attempt_at=timezone.now())
    queued = []
    monkeypatch.setattr(tasks.source_poll, "delay", lambda source_id: queued.append(source_id))
    assert tasks.sources_poll_due() == [due.pk]
    assert queued == [due.pk]


def test_the_command_polls_one_source_by_name(file_source, capsys):
    file_source(wzdx_feed(wzdx_feature("A")), name="Heidelberg")
    file_source(wzdx_feed(wzdx_feature("B")), name="Ludwigshafen")
    call_command("poll_sources", "--source", "Heidelberg")
    assert "Heidelberg: ok, 1 items (1 new" in capsys.readouterr().out
    assert list(ExternalItem.objects.values_list("source_item_id", flat=True)) == ["A"]
    call_command("poll_sources")
    assert ExternalItem.objects.count() == 2


def test_the_command_fails_on_an_unknown_source_or_a_failed_poll(file_source):
    with pytest.raises(CommandError, match="No external source named 'Mars'"):
        call_command("poll_sources", "--source", "Mars")
    file_source(b"nonsense", name="kaputt")
    with pytest.raises(CommandError, match="1 of 1 sources failed"):
        call_command("poll_sources")


def test_a_source_deleted_before_its_poll_is_skipped(db):
    assert services.source_poll(source_id=987654).status == "missing"


def test_only_sources_marked_for_the_city_feeds_give_items_to_them(file_source):
    shared = file_source(wzdx_feed(wzdx_feature("A")), name="Heidelberg", include_in_city_feeds=True)
    file_source(wzdx_feed(wzdx_feature("B")), name="Autobahn")
    off = file_source(wzdx_feed(wzdx_feature("C")), name="Aus", include_in_city_feeds=True)
    for source in ExternalSource.objects.all():
        poll(source)
    ExternalSource.objects.filter(pk=off.pk).update(enabled=False)
    assert [(i.source_id, i.source_item_id) for i in selectors.items_for_city_feeds()] == [(shared.pk, "A")]
