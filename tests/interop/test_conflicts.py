"""Rule C9: external works at a city work while both run; re-run per source after a poll."""

from __future__ import annotations

import pytest
from django.test import override_settings

from interop import services, tasks
from interop.models import ExternalItem, ExternalSource
from roadworks import page_selectors, rules
from roadworks import services as roadwork_services
from roadworks.models import Conflict, ConflictLayer, ConflictStatus, Severity
from tests.conftest import NECKARAU, line, make_roadwork
from tests.interop.conftest import rewrite, wzdx_feature, wzdx_feed
from tests.roadworks.rule_helpers import hits, rule_parameters

pytestmark = pytest.mark.django_db


def poll_and_detect(source: ExternalSource) -> dict[str, int]:
    services.source_poll(source_id=source.pk, force=True)
    return services.conflicts_detect_for_source(source_id=source.pk)


def item_id(source_item_id: str) -> str:
    return str(ExternalItem.objects.get(source_item_id=source_item_id).pk)


def test_c9_warns_when_external_works_lie_at_a_city_work_while_both_run(file_source, stadtwerke):
    work = make_roadwork(stadtwerke)
    source = file_source(wzdx_feed(wzdx_feature("A")))
    assert poll_and_detect(source)["found"] == 1
    assert hits("C9") == {(work.reference, ConflictLayer.EXTERNAL, item_id("A"))}
    conflict = Conflict.objects.get(rule="C9")
    assert conflict.severity == Severity.WARNING and not conflict.place.empty
    assert conflict.overlap_period.lower == work.period.lower  # the work starts after the item
    # the conflict pages name the external item by its title
    assert page_selectors.layer_item(ConflictLayer.EXTERNAL, item_id("A")).name == "Baustelle A"


def test_c9_ignores_external_works_elsewhere_or_at_another_time(file_source, stadtwerke):
    make_roadwork(stadtwerke)
    later = wzdx_feature("later", start_date="2028-01-01T00:00:00Z", end_date="2028-02-01T00:00:00Z")
    source = file_source(wzdx_feed(wzdx_feature("far", coords=NECKARAU), later))
    assert poll_and_detect(source)["found"] == 0
    assert not Conflict.objects.filter(rule="C9").exists()


def test_c9_counts_roadworks_and_closures_but_not_warnings_by_default(file_source, stadtwerke):
    make_roadwork(stadtwerke)
    warning = wzdx_feature("W")
    warning["properties"]["core_details"]["event_type"] = "restriction"
    source = file_source(wzdx_feed(warning))
    assert poll_and_detect(source)["found"] == 0
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C9={"kinds": ["roadworks", "warning"]})):
        assert services.conflicts_detect_for_source(source_id=source.pk)["found"] == 1


def test_c9_resolves_when_the_item_disappears_from_its_source(file_source, stadtwerke):
    make_roadwork(stadtwerke)
    source = file_source(wzdx_feed(wzdx_feature("A")))
    poll_and_detect(source)
    rewrite(source, wzdx_feed())
    assert poll_and_detect(source)["resolved"] == 1
    assert Conflict.objects.get(rule="C9").status == ConflictStatus.RESOLVED


def test_c9_for_one_source_leaves_the_conflicts_of_other_sources_alone(file_source, stadtwerke):
    make_roadwork(stadtwerke)
    first = file_source(wzdx_feed(wzdx_feature("A")), name="Heidelberg")
    second = file_source(wzdx_feed(wzdx_feature("B")), name="Ludwigshafen")
    poll_and_detect(first)
    poll_and_detect(second)
    rewrite(first, wzdx_feed())
    poll_and_detect(first)
    assert {obj for _, _, obj in hits("C9")} == {item_id("B")}


def test_c9_takes_no_items_of_a_disabled_source(file_source, stadtwerke):
    make_roadwork(stadtwerke)
    source = file_source(wzdx_feed(wzdx_feature("A")))
    poll_and_detect(source)
    ExternalSource.objects.filter(pk=source.pk).update(enabled=False)
    assert services.conflicts_detect_for_source(source_id=source.pk)["resolved"] == 1
    assert services.conflicts_detect_for_source(source_id=None)["found"] == 0  # the sweep agrees


def test_the_per_roadwork_run_includes_c9(file_source, stadtwerke):
    source = file_source(wzdx_feed(wzdx_feature("A")))
    services.source_poll(source_id=source.pk, force=True)
    work = make_roadwork(stadtwerke)
    assert roadwork_services.conflicts_detect_all_for(roadwork_id=work.pk)["C9"]["found"] == 1
    work.geometry = line(NECKARAU)
    work.save()
    assert rules.get("C9").for_roadwork(work.pk)["resolved"] == 1


def test_a_changing_poll_queues_c9_for_its_source(file_source, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.conflicts_detect_external, "delay", lambda source_id: queued.append(source_id))
    source = file_source(wzdx_feed(wzdx_feature("A")))
    with django_capture_on_commit_callbacks(execute=True):
        services.source_poll(source_id=source.pk, force=True)
    assert queued == [source.pk]
    with django_capture_on_commit_callbacks(execute=True):
        services.source_poll(source_id=source.pk, force=True)  # nothing changed: nothing to re-check
    assert queued == [source.pk]


def test_the_rule_knows_every_kind_of_external_item():
    from interop.models import ItemKind

    assert set(rules.EXTERNAL_KINDS) == set(ItemKind.values)


def test_the_conflict_mail_names_the_external_item_by_its_title(file_source, stadtwerke, mailoutbox):
    from django.utils import translation

    from roadworks import notifications

    stadtwerke.email = "baustellen@stadtwerke.example"
    stadtwerke.save()
    make_roadwork(stadtwerke)
    poll_and_detect(file_source(wzdx_feed(wzdx_feature("A")), name="Autobahn GmbH"))

    with override_settings(AUMAN_CONFLICT_NOTIFY_SEVERITIES=["error", "warning"]):
        assert notifications.conflicts_notify() == 1

    (mail,) = mailoutbox
    with translation.override("de"):
        assert f"{ConflictLayer.EXTERNAL.label}: Baustelle A\n" in mail.body
    assert f": {item_id('A')}\n" not in mail.body  # not by its database id
