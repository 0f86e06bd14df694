"""Synthetic roadworks for the conflict-rule benchmark and tests, and a brute-force reference for rule C1.

No Django set-up at import: tests import this module too. The reference is deliberately naive and independent of
the SQL: every pair, period overlap in Python, distance with Shapely, and the daily windows and weekdays walked day
by day in local time over the whole common period (no weekly-pattern shortcut, no bit masks).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# Daily windows and weekdays the synthetic works draw from (None: around the clock, every day).
WINDOWS = ((time(20), time(5)), (time(7), time(16)), (time(9), time(15)), (time(22), time(6)), (time(6), time(14)))
WEEKDAY_SETS = ((0, 1, 2, 3, 4), (5, 6), (0, 2, 4), (4,), (5,))
STREETS = tuple(f"Teststraße {n}" for n in range(400))


@dataclass(frozen=True)
class WorkSpec:
    """A synthetic roadwork in the storage SRID, ready to become a Roadwork."""

    index: int
    coords: list[tuple[float, float]]
    start: datetime
    end: datetime
    daily_start: time | None
    daily_end: time | None
    weekdays: tuple[int, ...]
    status: str
    street: str
    excavation: bool
    organisation: int  # 0 or 1: which of two organisations


def synthetic_works(
    rng: random.Random,
    count: int,
    *,
    centre: tuple[float, float],
    spread_m: float,
    first_day: datetime,
    span_days: float,
    statuses: tuple[str, ...],
    window_share: float = 0.3,
    weekday_share: float = 0.2,
) -> list[WorkSpec]:
    """Lines of 2-6 vertices (20-120 m steps) spread over a square, periods of 1 to 40 days (a third of them
    at most 3 days) over span_days; some with daily windows, some with weekdays."""
    works = []
    for index in range(count):
        e = centre[0] + rng.uniform(-spread_m, spread_m)
        n = centre[1] + rng.uniform(-spread_m, spread_m)
        heading = rng.uniform(0, 2 * math.pi)
        coords = [(e, n)]
        for _ in range(rng.randint(1, 5)):
            step = rng.uniform(20, 120)
            heading += rng.uniform(-0.3, 0.3)
            e, n = e + step * math.cos(heading), n + step * math.sin(heading)
            coords.append((e, n))
        start = first_day + timedelta(days=rng.uniform(0, span_days))
        length = rng.uniform(0.2, 3) if rng.random() < 1 / 3 else rng.uniform(1, 40)
        window = rng.choice(WINDOWS) if rng.random() < window_share else (None, None)
        weekdays = rng.choice(WEEKDAY_SETS) if rng.random() < weekday_share else ()
        # Streets by grid cell (200 m): works close together often share a name, as on a real street.
        street = STREETS[(int(coords[0][0] // 200) * 31 + int(coords[0][1] // 200)) % len(STREETS)]
        works.append(
            WorkSpec(
                index=index,
                coords=coords,
                start=start,
                end=start + timedelta(days=length),
                daily_start=window[0],
                daily_end=window[1],
                weekdays=weekdays,
                status=rng.choice(statuses),
                street=street,
                excavation=rng.random() < 0.3,
                organisation=rng.randint(0, 1),
            )
        )
    return works


# --- Brute-force reference for rule C1 -------------------------------------------------------------------------


def _instances(
    lower: datetime, upper: datetime, start: time | None, end: time | None, weekdays: Iterable[int], tz: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The times within [lower, upper) at which a schedule works, walking every local day."""
    days = set(weekdays)
    result = []
    day: date = lower.astimezone(tz).date() - timedelta(days=1)
    last = upper.astimezone(tz).date()
    while day <= last:
        if not days or day.weekday() in days:
            if start is None:
                begin = datetime.combine(day, time(0), tzinfo=tz)
                finish = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
            else:
                begin = datetime.combine(day, start, tzinfo=tz)
                finish_day = day if end > start else day + timedelta(days=1)
                finish = datetime.combine(finish_day, end, tzinfo=tz)
            begin, finish = max(begin, lower), min(finish, upper)
            if begin < finish:
                result.append((begin, finish))
        day += timedelta(days=1)
    return result


def active_together(x, y, tz: ZoneInfo) -> bool:
    """Do works x and y (objects with period bounds and schedules) work at the same moment?"""
    lower, upper = max(x.start, y.start), min(x.end, y.end)
    if lower >= upper:
        return False
    if x.daily_start is None and not x.weekdays and y.daily_start is None and not y.weekdays:
        return True
    first = _instances(lower, upper, x.daily_start, x.daily_end, x.weekdays, tz)
    second = _instances(lower, upper, y.daily_start, y.daily_end, y.weekdays, tz)
    return any(a0 < b1 and b0 < a1 for a0, a1 in first for b0, b1 in second)


@dataclass(frozen=True)
class ReferenceWork:
    key: str
    geometry: object  # shapely geometry in the storage SRID
    start: datetime
    end: datetime
    daily_start: time | None
    daily_end: time | None
    weekdays: tuple[int, ...]
    status: str


@dataclass(frozen=True)
class ReferenceResult:
    pairs: set[frozenset[str]]
    near_and_overlapping: int  # pairs within the buffer whose periods overlap
    kept_apart_by_schedules: int  # of those, pairs whose windows and weekdays never meet


def c1_reference(
    works: list[ReferenceWork], *, buffer_m: float, statuses: Iterable[str], tz: ZoneInfo
) -> ReferenceResult:
    """Rule C1 pair by pair: both take road space, periods overlap, within buffer_m, and they work together."""
    statuses = set(statuses)
    candidates = [w for w in works if w.status in statuses]
    pairs: set[frozenset[str]] = set()
    near = apart = 0
    for i, x in enumerate(candidates):
        for y in candidates[i + 1 :]:
            if not (x.start < y.end and y.start < x.end):
                continue
            if x.geometry.distance(y.geometry) > buffer_m:
                continue
            near += 1
            if active_together(x, y, tz):
                pairs.add(frozenset((x.key, y.key)))
            else:
                apart += 1
    return ReferenceResult(pairs=pairs, near_and_overlapping=near, kept_apart_by_schedules=apart)
