"""Rule C1 with daily working windows and weekdays: works whose periods overlap collide only if both work at some
moment of the overlap. The SQL functions (migration 0004) decide it; these tests show both sides of each case."""

from __future__ import annotations

from datetime import time

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from roadworks.models import Conflict, ConflictStatus
from roadworks.services import conflicts_detect_for, conflicts_sweep
from tests.conftest import KAISERRING_NEARBY, line, local, make_roadwork, period

pytestmark = pytest.mark.django_db

WEEKDAYS = [0, 1, 2, 3, 4]
WEEKEND = [5, 6]
NIGHT = (time(20), time(5))
DAY = (time(7), time(16))


def windows_overlap(first: tuple, second: tuple) -> bool:
    """auman_windows_overlap((start, end, days), (start, end, days))."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auman_windows_overlap(%s, %s, %s::smallint[], %s, %s, %s::smallint[])", [*first, *second]
        )
        return cursor.fetchone()[0]


def active_together(during: DateTimeTZRange, first: tuple, second: tuple) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT auman_active_together(%s, %s, %s, %s::smallint[], %s, %s, %s::smallint[], 'Europe/Berlin')",
            [during, *first, *second],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((*NIGHT, WEEKDAYS), (*DAY, WEEKDAYS), False),  # night works and day works
        ((None, None, WEEKDAYS), (None, None, WEEKEND), False),  # Monday to Friday and the weekend
        ((*NIGHT, [4]), (time(0), time(6), [5]), True),  # Friday night runs into Saturday morning
        ((time(0), time(6), [5]), (*NIGHT, [4]), True),  # the same, the other way round
        ((*NIGHT, [6]), (time(4), time(6), [0]), True),  # Sunday night runs into Monday: the week wraps
        ((*NIGHT, [5]), (time(4), time(6), [0]), False),  # Saturday night ends on Sunday
        ((*NIGHT, []), (time(5), time(6), []), False),  # one ends at 05:00 when the other starts
        ((*NIGHT, []), (time(4, 59), time(6), []), True),  # one minute together
        ((time(7), time(16), []), (time(15), time(18), []), True),
        ((None, None, []), (None, None, []), True),  # around the clock, every day
        ((None, None, [2]), (*NIGHT, [1]), True),  # Tuesday night reaches into Wednesday
    ],
)
def test_windows_overlap_decides_on_the_weekly_pattern(first, second, expected):
    assert windows_overlap(first, second) is expected


WEEKEND_CLOSURE = (None, None, [])
WEEKDAY_WORKS = (*DAY, WEEKDAYS)


def test_a_short_overlap_is_checked_day_by_day():
    # A weekend closure from Saturday 06:00 to Monday 05:00 and works on weekdays 07:00-16:00: the weekly pattern
    # meets on Monday, but within the shared two days the weekday works never start.
    saturday = local(2027, 3, 6, 6)
    assert not active_together(DateTimeTZRange(saturday, local(2027, 3, 8, 5), "[)"), WEEKEND_CLOSURE, WEEKDAY_WORKS)
    assert active_together(DateTimeTZRange(saturday, local(2027, 3, 8, 8), "[)"), WEEKEND_CLOSURE, WEEKDAY_WORKS)
    # Exactly up to the start of the weekday works: still apart ([) ranges touch, they do not overlap).
    assert not active_together(DateTimeTZRange(saturday, local(2027, 3, 8, 7), "[)"), WEEKEND_CLOSURE, WEEKDAY_WORKS)


def test_a_crossing_window_counts_on_the_next_day_within_a_short_overlap():
    sunday_night = DateTimeTZRange(local(2027, 3, 7, 1), local(2027, 3, 7, 3), "[)")
    assert active_together(sunday_night, (*NIGHT, [5]), WEEKEND_CLOSURE)  # Saturday's night shift, 01:00 on Sunday
    assert not active_together(sunday_night, (*NIGHT, [6]), WEEKEND_CLOSURE)  # Sunday's starts at 20:00


def test_the_day_by_day_check_follows_local_time_across_the_clock_change():
    # Summer time starts on Sunday 28 March 2027: 20:00 local is 19:00 UTC on Saturday, 18:00 UTC on Sunday.
    sunday_evening = DateTimeTZRange(local(2027, 3, 28, 20), local(2027, 3, 28, 21), "[)")
    assert sunday_evening.lower.utcoffset().total_seconds() == 2 * 3600
    assert active_together(sunday_evening, (*NIGHT, [6]), WEEKEND_CLOSURE)
    before_the_window = DateTimeTZRange(local(2027, 3, 28, 18), local(2027, 3, 28, 20), "[)")
    assert not active_together(before_the_window, (*NIGHT, [6]), WEEKEND_CLOSURE)


# --- Rule C1 with windows --------------------------------------------------------------------------------------


def pair(stadtwerke, telekom, *, first: dict, second: dict):
    a = make_roadwork(stadtwerke, period=period(local(2027, 3, 1, 0), 28), **first)
    b = make_roadwork(telekom, geometry=line(KAISERRING_NEARBY), period=period(local(2027, 3, 8, 0), 28), **second)
    return a, b


def schedule(window: tuple | None = None, days: list[int] | None = None) -> dict:
    start, end = window or (None, None)
    return {"daily_start": start, "daily_end": end, "weekdays": days or []}


def test_night_works_and_day_works_on_the_same_street_do_not_collide(stadtwerke, telekom):
    night, day = pair(stadtwerke, telekom, first=schedule(NIGHT, WEEKDAYS), second=schedule(DAY, WEEKDAYS))
    assert conflicts_sweep()["found"] == 0
    assert conflicts_detect_for(roadwork_id=night.pk)["found"] == 0
    assert conflicts_detect_for(roadwork_id=day.pk)["found"] == 0


def test_two_night_works_at_the_same_place_collide(stadtwerke, telekom):
    first, _second = pair(stadtwerke, telekom, first=schedule(NIGHT, WEEKDAYS), second=schedule((time(22), time(4))))
    assert conflicts_detect_for(roadwork_id=first.pk)["found"] == 1
    assert conflicts_sweep() == {"found": 1, "changed": 0, "resolved": 0}


def test_weekday_works_and_weekend_works_do_not_collide(stadtwerke, telekom):
    pair(stadtwerke, telekom, first=schedule(days=WEEKDAYS), second=schedule(days=WEEKEND))
    assert conflicts_sweep()["found"] == 0


def test_friday_night_works_collide_with_saturday_morning_works(stadtwerke, telekom):
    pair(stadtwerke, telekom, first=schedule(NIGHT, [4]), second=schedule((time(0), time(6)), [5]))
    assert conflicts_sweep()["found"] == 1


def test_a_weekend_closure_does_not_collide_with_weekday_works_it_ends_before(stadtwerke, telekom):
    weekdays = make_roadwork(stadtwerke, period=period(local(2027, 3, 1, 0), 28), **schedule(DAY, WEEKDAYS))
    closure = make_roadwork(
        telekom,
        geometry=line(KAISERRING_NEARBY),
        period=DateTimeTZRange(local(2027, 3, 6, 6), local(2027, 3, 8, 5), "[)"),
    )
    assert conflicts_detect_for(roadwork_id=closure.pk)["found"] == 0

    # Running into Monday's working hours, it collides.
    closure.period = DateTimeTZRange(local(2027, 3, 6, 6), local(2027, 3, 8, 9), "[)")
    closure.save()
    assert conflicts_detect_for(roadwork_id=weekdays.pk)["found"] == 1


def test_a_changed_window_resolves_the_conflict(stadtwerke, telekom):
    first, _second = pair(stadtwerke, telekom, first=schedule(NIGHT), second=schedule(NIGHT))
    conflicts_sweep()
    first.daily_start, first.daily_end = DAY
    first.save()

    assert conflicts_detect_for(roadwork_id=first.pk) == {"found": 0, "changed": 0, "resolved": 1}
    assert list(Conflict.objects.values_list("status", flat=True)) == [ConflictStatus.RESOLVED]
