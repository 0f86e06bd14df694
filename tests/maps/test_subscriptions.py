"""Subscriptions: the iCalendar feed of roadworks on a street or in a district, and the Atom feed of incidents."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from icalendar import Calendar

from maps.models import District
from maps.services import districts_load
from maps.subscriptions import MSG_STREET_OR_DISTRICT
from maps.tiles import MSG_DISTRICT
from roadworks.models import Roadwork, RoadworkStatus
from tests.conftest import BERLIN, NECKARAU, line, local, make_incident, make_roadwork, period
from traffic.models import IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db

ICS = "/abonnieren/baustellen.ics"
ATOM = "/abonnieren/ereignisse.atom"
ATOM_NS = {"atom": "http://www.w3.org/2005/Atom"}


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete_pattern("*")  # only this run's prefix: a benchmark may share the Redis database


def calendar(response) -> Calendar:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(response) -> dict[str, object]:
    return {str(event["UID"]): event for event in calendar(response).walk("VEVENT")}


def uid(work: Roadwork) -> str:
    return f"roadwork-{work.id}@auman"


# --- iCalendar -------------------------------------------------------------------------------------------------


def test_it_lists_the_public_works_on_a_street_one_event_each(stadtwerke):
    approved = make_roadwork(stadtwerke, title="Fernwärme", description="Neue Leitung zum Schloss.")
    running = make_roadwork(stadtwerke, status=RoadworkStatus.IN_PROGRESS, period=period(timezone.now(), 3))
    make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)  # not public yet
    make_roadwork(stadtwerke, status=RoadworkStatus.DRAFT)
    make_roadwork(stadtwerke, street_names=["Neckarauer Straße"], geometry=line(NECKARAU))
    found = events(Client().get(ICS, {"street": "Kaiserring"}))
    assert set(found) == {uid(approved), uid(running)}
    event = found[uid(approved)]
    assert "Fernwärme" in str(event["SUMMARY"]) and "Kaiserring" in str(event["SUMMARY"])
    assert str(event["LOCATION"]) == "Kaiserring"
    assert "Neue Leitung zum Schloss." in str(event["DESCRIPTION"])
    assert approved.reference in str(event["DESCRIPTION"])
    assert event.decoded("DTSTART") == approved.period.lower
    assert event.decoded("DTEND") == approved.period.upper
    assert "RRULE" not in event


def test_it_finds_the_street_however_its_name_is_typed(stadtwerke):
    work = make_roadwork(stadtwerke, street_names=["Seckenheimer Straße"])
    for typed in ("Seckenheimer Straße", "seckenheimer strasse", "Seckenheimer-Str.", "SECKENHEIMERSTRASSE"):
        assert set(events(Client().get(ICS, {"street": typed}))) == {uid(work)}, typed
    # A different street that merely contains the name is not this street.
    assert events(Client().get(ICS, {"street": "Seckenheimer"})) == {}


def test_it_writes_daily_working_hours_as_a_recurring_event_in_local_time(stadtwerke):
    # Monday 1 March 2027, 10:00 to Friday 12 March, works 07:00-16:00 on Monday, Wednesday and Friday.
    work = make_roadwork(
        stadtwerke,
        period=period(local(2027, 3, 1, 10), 11),
        daily_start=time(7),
        daily_end=time(16),
        weekdays=[0, 2, 4],
    )
    event = events(Client().get(ICS, {"street": "Kaiserring"}))[uid(work)]
    assert event.decoded("DTSTART") == datetime(2027, 3, 1, 7, tzinfo=BERLIN)
    assert event.decoded("DTEND") == datetime(2027, 3, 1, 16, tzinfo=BERLIN)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    rule = event["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"]
    assert rule["BYDAY"] == ["MO", "WE", "FR"]
    assert rule["UNTIL"] == [work.period.upper.astimezone(ZoneInfo("UTC"))]


def test_it_starts_the_series_on_the_first_working_day_inside_the_period(stadtwerke):
    # The period starts on a Tuesday evening; working hours are 20:00-05:00 on weekdays: first night Tuesday.
    work = make_roadwork(
        stadtwerke,
        period=period(local(2027, 3, 2, 19), 5),
        daily_start=time(20),
        daily_end=time(5),
        weekdays=[0, 1, 2, 3, 4],
    )
    event = events(Client().get(ICS, {"street": "Kaiserring"}))[uid(work)]
    assert event.decoded("DTSTART") == datetime(2027, 3, 2, 20, tzinfo=BERLIN)
    assert event.decoded("DTEND") == datetime(2027, 3, 3, 5, tzinfo=BERLIN)


def test_it_writes_the_time_zone_so_calendars_can_place_local_times(stadtwerke):
    make_roadwork(stadtwerke, daily_start=time(7), daily_end=time(16))
    timezones = calendar(Client().get(ICS, {"street": "Kaiserring"})).walk("VTIMEZONE")
    assert [str(tz["TZID"]) for tz in timezones] == ["Europe/Berlin"]


def test_it_keeps_an_events_uid_when_the_work_changes(stadtwerke):
    work = make_roadwork(stadtwerke, title="Alt")
    first = events(Client().get(ICS, {"street": "Kaiserring"}))[uid(work)]
    work.title = "Neu"
    work.version += 1
    work.save()
    second = events(Client().get(ICS, {"street": "Kaiserring"}))[uid(work)]
    assert "Neu" in str(second["SUMMARY"])
    assert int(second["SEQUENCE"]) == int(first["SEQUENCE"]) + 1


def test_it_lists_the_works_in_a_district(stadtwerke):
    districts_load()
    neckarau = make_roadwork(stadtwerke, street_names=["Neckarauer Straße"], geometry=line(NECKARAU))
    make_roadwork(stadtwerke)  # Kaiserring, in the centre
    district = District.objects.get(name="Neckarau")
    response = Client().get(ICS, {"district": district.id})
    assert set(events(response)) == {uid(neckarau)}
    assert "Neckarau" in str(calendar(response)["X-WR-CALNAME"])


def test_it_answers_304_while_the_calendar_is_unchanged(stadtwerke):
    make_roadwork(stadtwerke)
    first = Client().get(ICS, {"street": "Kaiserring"})
    assert Client().get(ICS, {"street": "Kaiserring"}, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    make_roadwork(stadtwerke)
    assert Client().get(ICS, {"street": "Kaiserring"}, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "street", MSG_STREET_OR_DISTRICT),
        ({"street": "Kaiserring", "district": "1"}, "street", MSG_STREET_OR_DISTRICT),
        ({"street": " - "}, "street", MSG_STREET_OR_DISTRICT),
        ({"district": "4711"}, "district", MSG_DISTRICT),
    ],
)
def test_it_refuses_a_calendar_without_exactly_one_known_place(params, field, message):
    response = Client().get(ICS, params)
    assert response.status_code == 400
    assert response.json() == {field: [str(message)]}


# --- Atom ------------------------------------------------------------------------------------------------------


def test_the_atom_feed_lists_active_incidents_newest_first():
    now = timezone.now()
    older = make_incident(kind=IncidentKind.BREAKDOWN, street_name="Kaiserring", reported_at=now - timedelta(hours=2))
    newer = make_incident(kind=IncidentKind.HAZARD, street_name="Parkring", description="Öl auf der Fahrbahn")
    make_incident(status=IncidentStatus.CLEARED, cleared_at=now)
    make_incident(status=IncidentStatus.CANCELLED, cleared_at=now)
    response = Client().get(ATOM)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2005/Atom}feed"
    entries = root.findall("atom:entry", ATOM_NS)
    assert [e.findtext("atom:id", namespaces=ATOM_NS) for e in entries] == [
        f"urn:uuid:{newer.id}",
        f"urn:uuid:{older.id}",
    ]
    first = entries[0]
    assert "Parkring" in first.findtext("atom:title", namespaces=ATOM_NS)
    assert "Öl auf der Fahrbahn" in first.findtext("atom:summary", namespaces=ATOM_NS)
    link = first.find("atom:link", ATOM_NS).get("href")
    assert "#map=17/49.48" in link and "/8.47" in link


def test_the_atom_feed_escapes_what_the_police_typed():
    make_incident(street_name="<script>alert(1)</script>", description="a & b < c")
    response = Client().get(ATOM)
    assert b"<script>" not in response.content
    entry = ET.fromstring(response.content).find("atom:entry", ATOM_NS)
    assert entry.findtext("atom:title", namespaces=ATOM_NS).endswith("<script>alert(1)</script>")
    assert "a & b < c" in entry.findtext("atom:summary", namespaces=ATOM_NS)
