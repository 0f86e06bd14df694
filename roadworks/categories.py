"""A roadwork's category and its decision deadline: the one definition of both.

Categories follow the permit schemes the issue names (UK Street Manager's minor/standard/major/immediate):

- emergency: emergency works (is_emergency), whatever their length;
- major: a full closure, or more than 10 working days;
- standard: 4 to 10 working days;
- minor: up to 3 working days.

The length is the number of working days (workdays.py: Monday to Friday less the state's public holidays)
on which the period touches, counted in local time; the start and end days count. Daily windows and
weekdays do not shorten it: a work on five nights in one week takes five working days.

The decision is due `settings.AUMAN_DECISION_DAYS[category]` working days after the day of submission.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from .models import RoadworkCategory, TrafficManagement
from .workdays import add_working_days, working_days_between

MINOR_MAX_WORKING_DAYS = 3
STANDARD_MAX_WORKING_DAYS = 10


def local_days(period: DateTimeTZRange) -> tuple[date, date]:
    """First and last local day a half-open period [lower, upper) touches."""
    first = timezone.localtime(period.lower).date()
    # The end is exclusive: works ending at 00:00 do not touch that day.
    last = timezone.localtime(period.upper - timedelta(microseconds=1)).date()
    return first, max(first, last)


def working_days(period: DateTimeTZRange, *, state: str | None = None, stop_after: int | None = None) -> int:
    first, last = local_days(period)
    return working_days_between(first, last, state=state, stop_after=stop_after)


def categorise(
    *, period: DateTimeTZRange, traffic_management: str, is_emergency: bool, state: str | None = None
) -> str:
    if is_emergency:
        return RoadworkCategory.EMERGENCY
    if traffic_management == TrafficManagement.FULL_CLOSURE:
        return RoadworkCategory.MAJOR
    days = working_days(period, state=state, stop_after=STANDARD_MAX_WORKING_DAYS)
    if days <= MINOR_MAX_WORKING_DAYS:
        return RoadworkCategory.MINOR
    if days <= STANDARD_MAX_WORKING_DAYS:
        return RoadworkCategory.STANDARD
    return RoadworkCategory.MAJOR


def decision_due(*, category: str, submitted_at: datetime, state: str | None = None) -> date:
    """The last local day on which the decision is in time."""
    days = settings.AUMAN_DECISION_DAYS[category or RoadworkCategory.STANDARD]
    return add_working_days(timezone.localtime(submitted_at).date(), days, state=state)
