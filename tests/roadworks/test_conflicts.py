"""Rule C1: roadworks within the buffer whose periods overlap conflict; detection is idempotent.

A conflict that stops holding is marked resolved (not deleted) and reopens when it holds again."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString
from django.db import connection
from django.test import override_settings

from roadworks.models import Conflict, ConflictStatus, RoadworkStatus
from roadworks.services import conflicts_detect_for, conflicts_sweep
from tests.conftest import KAISERRING, KAISERRING_NEARBY, NECKARAU, line, local, make_roadwork, period
from tests.roadworks.rule_helpers import rule_parameters

pytestmark = pytest.mark.django_db


def conflict_pairs() -> set[tuple[str, str]]:
    return {(str(a), str(b)) for a, b in Conflict.objects.values_list("roadwork_a_id", "roadwork_b_id")}


def ordered(x, y) -> tuple[str, str]:
    return tuple(sorted((str(x.pk), str(y.pk))))


def test_it_finds_works_at_the_same_place_and_time(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY), period=period(local(2027, 3, 5), 10))

    result = conflicts_detect_for(roadwork_id=first.pk)

    assert result["found"] == 1
    conflict = Conflict.objects.get()
    assert (str(conflict.roadwork_a_id), str(conflict.roadwork_b_id)) == ordered(first, second)
    assert conflict.rule == "C1"
    assert conflict.status == ConflictStatus.OPEN
    # The overlap is the shared time: second starts 5 March, first ends 11 March 07:00.
    assert conflict.overlap_period.lower == local(2027, 3, 5)
    assert conflict.overlap_period.upper == local(2027, 3, 11, 7)
    assert not conflict.place.empty
    assert conflict.place.srid == 25832


def test_it_ignores_works_far_apart(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(NECKARAU))
    assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 0
    assert Conflict.objects.count() == 0


def test_it_ignores_works_at_different_times(stadtwerke, telekom):
    first = make_roadwork(stadtwerke, period=period(local(2027, 3, 1), 5))
    make_roadwork(telekom, period=period(local(2027, 3, 6), 5))  # starts exactly when the first ends
    assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 0


def test_it_uses_the_buffer_parameter(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    # A parallel street about 30 m away: no conflict at 10 m, a conflict at 50 m.
    coords = [(x, y + 30) for x, y in line(KAISERRING).coords]
    make_roadwork(telekom, geometry=LineString(coords, srid=25832))
    assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 0
    # AUMAN_CONFLICT_BUFFER_M sets C1's buffer_m at start-up; the rule reads its parameter.
    with override_settings(AUMAN_CONFLICT_RULES=rule_parameters(C1={"buffer_m": 50})):
        assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 1


def test_running_detection_twice_gives_the_same_rows(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_detect_for(roadwork_id=first.pk)
    before = list(Conflict.objects.values("id", "roadwork_a", "roadwork_b", "overlap_period", "updated_at"))

    again = conflicts_detect_for(roadwork_id=first.pk)

    assert again == {"found": 1, "changed": 0, "resolved": 0}
    assert list(Conflict.objects.values("id", "roadwork_a", "roadwork_b", "overlap_period", "updated_at")) == before


def test_a_change_that_removes_the_overlap_marks_the_conflict_resolved(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_detect_for(roadwork_id=first.pk)
    assert Conflict.objects.get().status == ConflictStatus.OPEN

    second.geometry = line(NECKARAU)
    second.save()
    result = conflicts_detect_for(roadwork_id=second.pk)

    assert result == {"found": 0, "changed": 0, "resolved": 1}
    conflict = Conflict.objects.get()
    assert conflict.status == ConflictStatus.RESOLVED
    assert conflict.status_changed_at is not None and conflict.status_changed_by is None
    # Running again changes nothing: a resolved conflict stays resolved, once.
    assert conflicts_detect_for(roadwork_id=second.pk) == {"found": 0, "changed": 0, "resolved": 0}


def test_a_resolved_conflict_reopens_when_the_works_collide_again(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    conflict_id = Conflict.objects.get().pk
    second.geometry = line(NECKARAU)
    second.save()
    conflicts_sweep()
    Conflict.objects.update(reason="was accepted before it vanished")

    second.geometry = line(KAISERRING_NEARBY)
    second.save()
    result = conflicts_detect_for(roadwork_id=first.pk)

    assert result == {"found": 1, "changed": 1, "resolved": 0}
    conflict = Conflict.objects.get()
    assert conflict.pk == conflict_id
    assert conflict.status == ConflictStatus.OPEN
    assert conflict.reason == ""
    assert conflicts_sweep() == {"found": 1, "changed": 0, "resolved": 0}


def test_an_accepted_conflict_that_no_longer_holds_is_resolved(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    Conflict.objects.update(status=ConflictStatus.ACCEPTED, reason="Gemeinsame Baugrube")
    second.period = period(local(2028, 1, 1), 3)
    second.save()

    conflicts_sweep()

    conflict = Conflict.objects.get()
    assert conflict.status == ConflictStatus.RESOLVED
    assert conflict.reason == "Gemeinsame Baugrube"


def test_a_conflict_keeps_its_status_when_detection_runs_again(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_detect_for(roadwork_id=first.pk)
    Conflict.objects.update(status=ConflictStatus.ACCEPTED, reason="Abgestimmt im Baustellenkoordinierungstermin")

    conflicts_sweep()

    conflict = Conflict.objects.get()
    assert conflict.status == ConflictStatus.ACCEPTED
    assert conflict.reason.startswith("Abgestimmt")


@pytest.mark.parametrize(
    "status", [RoadworkStatus.DRAFT, RoadworkStatus.REFUSED, RoadworkStatus.CANCELLED, RoadworkStatus.COMPLETED]
)
def test_works_that_do_not_take_road_space_do_not_conflict(stadtwerke, telekom, status):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY), status=status)
    assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 0


def test_cancelling_a_work_resolves_its_conflicts(stadtwerke, telekom):
    first = make_roadwork(stadtwerke)
    make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_detect_for(roadwork_id=first.pk)
    first.status = RoadworkStatus.CANCELLED
    first.save()

    conflicts_detect_for(roadwork_id=first.pk)

    assert list(Conflict.objects.values_list("status", flat=True)) == [ConflictStatus.RESOLVED]


def test_the_sweep_finds_every_pair_once(stadtwerke, telekom):
    a = make_roadwork(stadtwerke)
    b = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    c = make_roadwork(telekom, geometry=line(KAISERRING))
    make_roadwork(stadtwerke, geometry=line(NECKARAU))

    result = conflicts_sweep()

    assert result["found"] == 3
    assert conflict_pairs() == {ordered(a, b), ordered(a, c), ordered(b, c)}
    assert conflicts_sweep() == {"found": 3, "changed": 0, "resolved": 0}


def test_the_sweep_resolves_conflicts_that_no_longer_hold(stadtwerke, telekom):
    make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    second.period = period(local(2028, 1, 1), 3)
    second.save()

    assert conflicts_sweep()["resolved"] == 1
    assert Conflict.objects.get().status == ConflictStatus.RESOLVED
    assert conflicts_sweep() == {"found": 0, "changed": 0, "resolved": 0}


def test_detection_uses_the_gist_index(stadtwerke, telekom):
    # With enough rows and fresh statistics the planner must choose the GiST index on (geometry, period).
    base = line(NECKARAU)
    for i in range(300):
        coords = [(x + 50 * (i % 30), y + 50 * (i // 30)) for x, y in base.coords]
        make_roadwork(telekom, reference=f"IDX-{i}", geometry=LineString(coords, srid=25832))
    first = make_roadwork(stadtwerke)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE roadworks_roadwork")
        cursor.execute("SET LOCAL enable_seqscan = off")  # small tables: make the choice about the index, not size
        cursor.execute(
            "EXPLAIN SELECT y.id FROM roadworks_roadwork x JOIN roadworks_roadwork y ON y.id <> x.id "
            "AND y.period && x.period AND ST_DWithin(y.geometry, x.geometry, 10) WHERE x.id = %s",
            [str(first.pk)],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "roadwork_geom_period_gist" in plan, plan


def test_a_conflict_names_either_another_roadwork_or_a_layer_item_never_both(stadtwerke, telekom):
    from django.db import IntegrityError, transaction

    first = make_roadwork(stadtwerke)
    second = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY))
    common = {"rule": "CX", "roadwork_a": first, "overlap_period": first.period, "place": first.geometry.buffer(5)}
    Conflict.objects.create(layer="black_spot", layer_object_id="42", **common)
    with transaction.atomic(), pytest.raises(IntegrityError):
        Conflict.objects.create(**common)  # neither side
    a, b = sorted([first, second], key=lambda r: str(r.pk))
    with transaction.atomic(), pytest.raises(IntegrityError):
        Conflict.objects.create(**{**common, "roadwork_a": a}, roadwork_b=b, layer="event", layer_object_id="7")
    with transaction.atomic(), pytest.raises(IntegrityError):
        Conflict.objects.create(layer="black_spot", layer_object_id="42", **common)  # the same hit twice
