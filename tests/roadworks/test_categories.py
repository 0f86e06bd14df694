"""Categories from working days (Monday to Friday less the state's public holidays) and closure."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from roadworks.categories import categorise, working_days
from roadworks.models import RoadworkCategory, TrafficManagement
from roadworks.workdays import add_working_days, is_working_day, public_holidays, working_days_between
from tests.conftest import KAISERRING, feature, geojson_line, local, make_roadwork

C = RoadworkCategory
LANE = TrafficManagement.LANE_CLOSURE


def span(start: datetime, end: datetime) -> DateTimeTZRange:
    return DateTimeTZRange(start, end, "[)")


def category(start: datetime, end: datetime, **kwargs) -> str:
    values = {"traffic_management": LANE, "is_emergency": False, **kwargs}
    return categorise(period=span(start, end), **values)


# --- The calendar -------------------------------------------------------------------------------


def test_the_calendar_knows_easter_and_the_states_own_holidays():
    bw = public_holidays(2027, state="BW")
    assert {date(2027, 3, 26), date(2027, 3, 29), date(2027, 5, 27), date(2027, 1, 6)} <= bw  # Easter, Corpus Christi
    hamburg = public_holidays(2027, state="HH")
    assert date(2027, 5, 27) not in hamburg and date(2027, 10, 31) in hamburg  # Reformation Day in the north


def test_weekends_holidays_and_christmas_eve():
    assert not is_working_day(date(2027, 3, 27), state="BW")  # Saturday
    assert not is_working_day(date(2027, 3, 29), state="BW")  # Easter Monday
    assert is_working_day(date(2026, 12, 24), state="BW")  # Christmas Eve is not a public holiday
    assert not is_working_day(date(2026, 12, 25), state="BW")


def test_counting_includes_both_ends_and_is_zero_for_an_empty_span():
    assert working_days_between(date(2027, 3, 8), date(2027, 3, 12), state="BW") == 5
    assert working_days_between(date(2027, 3, 12), date(2027, 3, 8), state="BW") == 0


def test_adding_working_days_skips_the_start_day_weekends_and_holidays():
    assert add_working_days(date(2027, 3, 25), 1, state="BW") == date(2027, 3, 30)  # over Easter
    assert add_working_days(date(2027, 3, 25), 5, state="BW") == date(2027, 4, 5)
    assert add_working_days(date(2027, 3, 8), 0, state="BW") == date(2027, 3, 8)


# --- Working days of a period -------------------------------------------------------------------


def test_works_over_easter_count_only_the_working_days():
    # Thursday before Easter to the Tuesday after: Thursday and Tuesday only.
    easter = span(local(2027, 3, 25, 7), local(2027, 3, 30, 17))
    assert working_days(easter, state="BW") == 2
    assert category(local(2027, 3, 25, 7), local(2027, 3, 30, 17), state="BW") == C.MINOR


def test_works_over_christmas_depend_on_the_states_holidays():
    # 21 Dec 2026 to 6 Jan 2027: ten working days in Baden-Württemberg (Epiphany is a holiday), eleven in Hamburg.
    start, end = local(2026, 12, 21, 7), local(2027, 1, 6, 17)
    assert working_days(span(start, end), state="BW") == 10
    assert working_days(span(start, end), state="HH") == 11
    assert category(start, end, state="BW") == C.STANDARD
    assert category(start, end, state="HH") == C.MAJOR


def test_the_configured_state_is_used_by_default(settings):
    start, end = local(2026, 12, 21, 7), local(2027, 1, 6, 17)
    settings.AUMAN_HOLIDAY_STATE = "HH"
    assert category(start, end) == C.MAJOR
    settings.AUMAN_HOLIDAY_STATE = "BW"
    assert category(start, end) == C.STANDARD


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (local(2027, 3, 10, 17), C.MINOR),  # Mon-Wed: 3 working days
        (local(2027, 3, 11, 17), C.STANDARD),  # Mon-Thu: 4
        (local(2027, 3, 19, 17), C.STANDARD),  # two weeks: 10
        (local(2027, 3, 22, 17), C.MAJOR),  # 11
    ],
)
def test_the_boundaries_between_minor_standard_and_major(end, expected):
    assert category(local(2027, 3, 8, 7), end, state="BW") == expected


def test_a_period_ending_at_midnight_does_not_touch_the_next_day():
    assert category(local(2027, 3, 8), local(2027, 3, 11), state="BW") == C.MINOR  # [Mon 00:00, Thu 00:00)
    assert category(local(2027, 3, 8), local(2027, 3, 11, 1), state="BW") == C.STANDARD


def test_days_are_local_days_whatever_the_offset_given():
    # Sunday 23:30 UTC is Monday 00:30 in Berlin: the works touch Monday to Thursday.
    start = datetime(2027, 3, 7, 23, 30, tzinfo=ZoneInfo("UTC"))
    assert working_days(span(start, local(2027, 3, 11, 17)), state="BW") == 4


def test_a_night_shift_over_a_weekend_is_one_working_day():
    assert working_days(span(local(2027, 3, 12, 20), local(2027, 3, 13, 5)), state="BW") == 1


def test_a_full_closure_is_major_however_short():
    start, end = local(2027, 3, 8, 20), local(2027, 3, 9, 5)
    assert category(start, end, traffic_management=TrafficManagement.FULL_CLOSURE) == C.MAJOR


def test_emergency_works_are_emergency_whatever_their_length_or_closure():
    start, end = local(2027, 3, 8, 7), local(2027, 5, 8, 17)
    closure = TrafficManagement.FULL_CLOSURE
    assert category(start, end, traffic_management=closure, is_emergency=True) == C.EMERGENCY


# --- Stored on the roadwork ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_category_is_stored_on_save_and_follows_changes(stadtwerke):
    work = make_roadwork(stadtwerke, period=span(local(2027, 3, 8, 7), local(2027, 3, 9, 17)))
    assert work.category == C.MINOR
    work.traffic_management = TrafficManagement.FULL_CLOSURE
    work.save(update_fields=["traffic_management"])
    work.refresh_from_db()
    assert work.category == C.MAJOR


@pytest.mark.django_db
def test_the_api_shows_the_category_and_recomputes_it_on_an_edit(api, alice):
    period = {"lower": "2027-03-08T07:00:00+01:00", "upper": "2027-03-09T17:00:00+01:00"}
    created = api(alice).post("/api/v1/roadworks/", feature(geojson_line(KAISERRING), title="x", period=period))
    assert created.json()["properties"]["category"] == C.MINOR
    longer = {"lower": "2027-03-08T07:00:00+01:00", "upper": "2027-03-26T17:00:00+01:00"}
    url = created.json()["properties"]["url"]
    response = api(alice).patch(url, {"properties": {"period": longer, "version": 1}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["properties"]["category"] == C.MAJOR


@pytest.mark.django_db
def test_the_category_cannot_be_set_by_a_client(api, alice):
    period = {"lower": "2027-03-08T07:00:00+01:00", "upper": "2027-03-09T17:00:00+01:00"}
    body = feature(geojson_line(KAISERRING), title="x", period=period, category="major")
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 201
    assert response.json()["properties"]["category"] == C.MINOR
