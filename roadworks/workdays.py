"""The working-day calendar: Monday to Friday, less the public holidays of the configured German state.

Deadlines and categories count working days (Arbeitstage). Saturdays count as Werktage in some German
rules, but an authority does not decide on them, so they are not working days here. Holidays come from
the `holidays` package (settings.AUMAN_HOLIDAY_STATE, e.g. "BW"); 24 and 31 December are not public
holidays and so count as working days.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays
from django.conf import settings


@lru_cache(maxsize=256)
def _holidays(state: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("DE", subdiv=state, years=year))


def public_holidays(year: int, *, state: str | None = None) -> frozenset[date]:
    return _holidays(state or settings.AUMAN_HOLIDAY_STATE, year)


def is_working_day(day: date, *, state: str | None = None) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year, state=state)


def working_days_between(first: date, last: date, *, state: str | None = None, stop_after: int | None = None) -> int:
    """Working days from `first` to `last`, both included; 0 when last < first.

    With stop_after, counting stops once the count exceeds it (callers that only compare with a bound)."""
    count = 0
    day = first
    while day <= last:
        if is_working_day(day, state=state):
            count += 1
            if stop_after is not None and count > stop_after:
                break
        day += timedelta(days=1)
    return count


def add_working_days(start: date, days: int, *, state: str | None = None) -> date:
    """The `days`-th working day after `start`; `start` itself is not counted (§ 187 BGB, § 31 VwVfG)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, state=state):
            remaining -= 1
    return day
