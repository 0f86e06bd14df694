"""The Waze CIFS feeds (XML and JSON): valid against the official CIFS 2.0 XSD, the mapping rules, the closure
self-check, the filters and HTTP behaviour, and a roadwork's round trip from the API into the feed.

alice applies for Stadtwerke, bob approves for the authority; the feeds are read anonymously, as Waze reads them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.gis.geos import LineString
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from lxml import etree

from roadworks.models import Direction, RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, NECKARAU, feature, geojson_line, line, make_incident, make_roadwork
from tests.feeds.situation_data import (
    make_accident,
    make_every_accident,
    make_windowed_works,
    official_errors,
    official_schema,
    straight_line,
)
from tests.roadworks.helpers import transition
from traffic.feeds import waze
from traffic.feeds.registry import FEEDS
from traffic.models import Accident, AccidentCategory, IncidentDirection, IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db

XML_URL = "/feeds/waze/cifs.xml"
JSON_URL = "/feeds/waze/cifs.json"


def cifs_schema():
    return official_schema("waze-cifs", "incidents_feed-2.0.0.xsd")


def get_xml(client, **params: str) -> etree._Element:
    response = client.get(XML_URL, params)
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content)


def incidents_by_id(document: etree._Element) -> dict[str, etree._Element]:
    return {incident.get("id"): incident for incident in document.iterfind("incident")}


def polyline_of(incident: etree._Element) -> list[tuple[float, float]]:
    numbers = [float(value) for value in incident.findtext("location/polyline").split()]
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def close_to(points: list[tuple[float, float]], lon_lat: list[tuple[float, float]]) -> bool:
    """Lat/lon pairs against lon/lat coordinates, within the six-decimal precision of the feed."""
    return len(points) == len(lon_lat) and all(
        abs(lat - want_lat) <= 2e-6 and abs(lon - want_lon) <= 2e-6
        for (lat, lon), (want_lon, want_lat) in zip(points, lon_lat, strict=True)
    )


# --- Validity ----------------------------------------------------------------------------------------------------


def test_it_publishes_xml_valid_against_the_official_cifs_xsd_for_every_kind_of_roadwork_and_incident(
    client, every_roadwork, every_incident, stadtwerke
):
    make_windowed_works(stadtwerke)
    make_every_accident()
    response = client.get(XML_URL)
    assert response.status_code == 200
    assert official_errors(cifs_schema(), response.content) == []
    document = etree.fromstring(response.content)
    types = {(item.findtext("type"), item.findtext("subtype")) for item in document.iterfind("incident")}
    assert {"ROAD_CLOSED", "HAZARD", "ACCIDENT"} <= {kind for kind, _ in types}
    assert ("ACCIDENT", "ACCIDENT_MAJOR") in types and ("ACCIDENT", "ACCIDENT_MINOR") in types
    # The feed's own check (what check_feeds runs) agrees, and finds no closure Waze would refuse in this data.
    assert FEEDS["waze-cifs-xml"].validate(response.content) == []


def test_it_publishes_a_valid_document_when_nothing_is_on_the_road(client):
    body = client.get(XML_URL).content
    # CIFS wants at least one <incident>: an empty feed is the one thing the XSD refuses, and the feed's own
    # check lets exactly that pass.
    errors = official_errors(cifs_schema(), body)
    assert len(errors) == 1 and "Missing child element" in errors[0]
    assert FEEDS["waze-cifs-xml"].validate(body) == []
    assert FEEDS["waze-cifs-json"].validate(client.get(JSON_URL).content) == []


def test_the_json_feed_is_the_xml_feed_element_for_element(client, every_roadwork, every_incident, stadtwerke):
    make_windowed_works(stadtwerke)
    xml_body = client.get(XML_URL).content
    json_response = client.get(JSON_URL)
    assert json_response["Content-Type"] == "application/json"
    data = json.loads(json_response.content)
    assert {"timestamp", "incidents"} == set(data)
    converted = waze.json_to_xml(json_response.content)
    assert official_errors(cifs_schema(), converted) == []
    assert FEEDS["waze-cifs-json"].validate(json_response.content) == []
    # Same incidents, same elements, same text (the timestamp is the build time of each).
    from_json, from_xml = etree.fromstring(converted), etree.fromstring(xml_body)
    for tree in (from_json, from_xml):
        tree.set("timestamp", "")
    assert etree.tostring(from_json, method="c14n") == etree.tostring(from_xml, method="c14n")
    assert len(from_xml) == len(data["incidents"]) > 40


def test_it_escapes_markup_and_drops_characters_xml_cannot_carry(client, stadtwerke):
    make_roadwork(stadtwerke, title='Rohrbruch <Ecke> & "Markt"', description="Teil\x0b 2 – Straße")
    body = client.get(XML_URL).content
    assert official_errors(cifs_schema(), body) == []
    assert etree.fromstring(body).findtext("incident/description") == 'Rohrbruch <Ecke> & "Markt": Teil 2 – Straße'


# --- Mapping rules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("traffic_management", "expected"), list(waze.ROADWORK_TYPES.items()))
def test_it_maps_traffic_management_to_a_cifs_type(client, stadtwerke, traffic_management, expected):
    work = make_roadwork(stadtwerke, traffic_management=traffic_management)
    incident = incidents_by_id(get_xml(client))[str(work.pk)]
    assert (incident.findtext("type"), incident.findtext("subtype")) == expected


def test_only_a_full_closure_is_a_road_closed():
    closures = [tm for tm, (kind, _) in waze.ROADWORK_TYPES.items() if kind == "ROAD_CLOSED"]
    assert closures == [TrafficManagement.FULL_CLOSURE]
    assert set(waze.ROADWORK_TYPES) == set(TrafficManagement)


@pytest.mark.parametrize(
    ("category", "subtype"),
    [
        (AccidentCategory.KILLED, "ACCIDENT_MAJOR"),
        (AccidentCategory.SERIOUSLY_INJURED, "ACCIDENT_MAJOR"),
        (AccidentCategory.SLIGHTLY_INJURED, "ACCIDENT_MINOR"),
        (AccidentCategory.SERIOUS_PROPERTY_DAMAGE, "ACCIDENT_MINOR"),
        (AccidentCategory.OTHER_PROPERTY_DAMAGE, "ACCIDENT_MINOR"),
        (AccidentCategory.INTOXICATED_OTHER, "ACCIDENT_MINOR"),
    ],
)
def test_it_calls_an_accident_major_when_someone_was_killed_or_seriously_injured(client, category, subtype):
    crash = make_accident(category)
    incident = incidents_by_id(get_xml(client))[str(crash.pk)]
    assert (incident.findtext("type"), incident.findtext("subtype")) == ("ACCIDENT", subtype)


def test_an_accident_not_yet_classified_is_minor_and_casualty_counts_decide_too(client):
    unclassified = make_incident(kind=IncidentKind.ACCIDENT)
    # Casualties counted beyond the category (a slightly injured person died later) make it major too.
    killed = make_accident(AccidentCategory.SLIGHTLY_INJURED)
    Accident.objects.filter(incident=killed).update(killed=1)
    serious = make_accident(AccidentCategory.OTHER_PROPERTY_DAMAGE)
    Accident.objects.filter(incident=serious).update(seriously_injured=2)
    none_counted = make_accident(AccidentCategory.SLIGHTLY_INJURED)
    Accident.objects.filter(incident=none_counted).update(killed=0, seriously_injured=0)
    items = incidents_by_id(get_xml(client))
    assert {
        item.pk: items[str(item.pk)].findtext("subtype") for item in (unclassified, killed, serious, none_counted)
    } == {
        unclassified.pk: "ACCIDENT_MINOR",
        killed.pk: "ACCIDENT_MAJOR",
        serious.pk: "ACCIDENT_MAJOR",
        none_counted.pk: "ACCIDENT_MINOR",
    }


@pytest.mark.parametrize(("kind", "expected"), list(waze.INCIDENT_TYPES.items()))
def test_it_maps_other_incident_kinds_to_hazards(client, kind, expected):
    item = make_incident(kind=kind)
    incident = incidents_by_id(get_xml(client))[str(item.pk)]
    assert (incident.findtext("type"), incident.findtext("subtype")) == expected


def test_a_police_operation_with_an_affected_stretch_is_a_closure(client):
    item = make_incident(kind=IncidentKind.POLICE_OPERATION, affected_line=line(KAISERRING))
    incident = incidents_by_id(get_xml(client))[str(item.pk)]
    assert (incident.findtext("type"), incident.findtext("subtype")) == ("ROAD_CLOSED", "ROAD_CLOSED_HAZARD")


def test_it_leaves_out_cleared_and_cancelled_incidents(client):
    cleared = make_incident(status=IncidentStatus.CLEARED, cleared_at=timezone.now())
    cancelled = make_incident(status=IncidentStatus.CANCELLED, cleared_at=timezone.now())
    active = make_incident()
    ids = set(incidents_by_id(get_xml(client)))
    assert str(active.pk) in ids and str(cleared.pk) not in ids and str(cancelled.pk) not in ids


def test_it_writes_the_polyline_as_lat_lon_in_the_direction_of_travel(client, stadtwerke):
    forward = make_roadwork(stadtwerke, direction=Direction.FORWARD)
    backward = make_roadwork(stadtwerke, direction=Direction.BACKWARD)
    both = make_roadwork(stadtwerke, direction=Direction.BOTH)
    items = incidents_by_id(get_xml(client))
    assert close_to(polyline_of(items[str(forward.pk)]), KAISERRING)
    assert close_to(polyline_of(items[str(backward.pk)]), KAISERRING[::-1])
    assert items[str(forward.pk)].findtext("location/direction") == "ONE_DIRECTION"
    assert items[str(both.pk)].findtext("location/direction") == "BOTH_DIRECTIONS"
    # Rounded to six decimals (about 0.1 m), as Waze asks; trailing zeros carry nothing and are left off.
    assert items[str(both.pk)].findtext("location/polyline").split()[:2] == ["49.484", "8.474"]
    assert all(len(value.split(".")[1]) <= 6 for value in items[str(forward.pk)].findtext("location/polyline").split())


def test_it_gives_an_incident_its_stretch_or_its_point_twice(client):
    stretch = make_incident(kind=IncidentKind.BREAKDOWN, affected_line=line(KAISERRING), direction="backward")
    point = make_incident(kind=IncidentKind.SPILL, direction=IncidentDirection.UNKNOWN)
    items = incidents_by_id(get_xml(client))
    assert close_to(polyline_of(items[str(stretch.pk)]), KAISERRING[::-1])
    assert items[str(stretch.pk)].findtext("location/direction") == "ONE_DIRECTION"
    assert close_to(polyline_of(items[str(point.pk)]), [(8.4750, 49.4846), (8.4750, 49.4846)])
    assert items[str(point.pk)].find("location/direction") is None


def test_it_names_the_streets_and_falls_back_to_the_title(client, stadtwerke):
    named = make_roadwork(stadtwerke, street_names=["Kaiserring", "Tattersallstraße"])
    nameless = make_roadwork(stadtwerke, street_names=[], title="Hausanschluss Gas")
    items = incidents_by_id(get_xml(client))
    assert items[str(named.pk)].findtext("location/street") == "Kaiserring, Tattersallstraße"
    assert items[str(nameless.pk)].findtext("location/street") == "Hausanschluss Gas"
    assert items[str(named.pk)].findtext("location/location_description") == named.reference


def test_it_writes_start_and_end_with_their_offset(client, stadtwerke):
    summer = make_roadwork(
        stadtwerke, period=DateTimeTZRange(datetime(2027, 7, 1, 5, tzinfo=UTC), datetime(2027, 7, 2, 15, tzinfo=UTC))
    )
    winter = make_roadwork(stadtwerke)  # 1 March 2027, 07:00 Berlin
    items = incidents_by_id(get_xml(client))
    assert items[str(summer.pk)].findtext("starttime") == "2027-07-01T07:00:00+02:00"
    assert items[str(summer.pk)].findtext("endtime") == "2027-07-02T17:00:00+02:00"
    assert items[str(winter.pk)].findtext("starttime") == "2027-03-01T07:00:00+01:00"
    timestamp = get_xml(client).get("timestamp")
    assert datetime.fromisoformat(timestamp).utcoffset() is not None


def test_it_turns_daily_windows_and_weekdays_into_a_schedule(client, stadtwerke):
    works = make_windowed_works(stadtwerke)
    items = incidents_by_id(get_xml(client))

    def schedule(name: str) -> dict[str, str]:
        element = items[str(works[name].pk)].find("schedule")
        return {child.tag: child.text for child in element}

    weekdays = dict.fromkeys(("monday", "tuesday", "wednesday", "thursday", "friday"), "07:00-17:00")
    assert schedule("weekdays") == weekdays
    assert schedule("everyday") == {"everyday": "09:00-15:30"}
    # 20:00-05:00 on Fridays and Sundays: the evening on its day, the early hours on the next.
    assert schedule("night") == {
        "monday": "00:00-05:00",
        "friday": "20:00-23:59",
        "saturday": "00:00-05:00",
        "sunday": "20:00-23:59",
    }
    assert schedule("night_everyday") == {"everyday": "00:00-04:00,22:00-23:59"}
    assert schedule("saturdays") == {"saturday": "00:00-23:59"}
    assert make_roadwork(stadtwerke).pk and items[str(works["weekdays"].pk)].find("schedule") is not None


def test_a_work_without_a_daily_window_or_weekdays_has_no_schedule(client, stadtwerke):
    work = make_roadwork(stadtwerke)
    assert incidents_by_id(get_xml(client))[str(work.pk)].find("schedule") is None
    [item] = json.loads(client.get(JSON_URL).content)["incidents"]
    assert "schedule" not in item


def test_a_window_across_midnight_on_the_weekend_sorts_the_windows_of_each_day(client, stadtwerke):
    work = make_roadwork(stadtwerke, daily_start=time(20), daily_end=time(5), weekdays=[6, 5, 6])
    element = incidents_by_id(get_xml(client))[str(work.pk)].find("schedule")
    assert [(child.tag, child.text) for child in element] == [
        ("monday", "00:00-05:00"),
        ("saturday", "20:00-23:59"),
        ("sunday", "00:00-05:00,20:00-23:59"),
    ]
    [item] = json.loads(client.get(JSON_URL).content)["incidents"]
    assert list(item["schedule"].items()) == [(child.tag, child.text) for child in element]


def test_separate_parts_are_incidents_of_their_own_with_stable_ids(client, stadtwerke):
    from django.contrib.gis.geos import MultiLineString

    geometry = MultiLineString(
        [LineString(KAISERRING, srid=4326), LineString(NECKARAU, srid=4326)], srid=4326
    ).transform(25832, clone=True)
    work = make_roadwork(stadtwerke, geometry=geometry)
    first = set(incidents_by_id(get_xml(client)))
    assert str(work.pk) in first and len(first) == 2
    work.title = "Neuer Titel"
    work.save()
    assert set(incidents_by_id(get_xml(client))) == first


# --- The closure self-check --------------------------------------------------------------------------------------


def test_the_self_check_warns_about_closures_waze_would_refuse(stadtwerke):
    full = {"traffic_management": TrafficManagement.FULL_CLOSURE}
    short = make_roadwork(stadtwerke, geometry=straight_line(20), **full)
    long = make_roadwork(stadtwerke, geometry=straight_line(12_000), **full)
    x, y = straight_line(1).coords[0]
    dot = make_roadwork(stadtwerke, geometry=LineString([(x, y), (x, y)], srid=25832), **full)
    fine = make_roadwork(stadtwerke, geometry=straight_line(100), **full)
    # A short stretch that is not a closure is none of Waze's business.
    make_roadwork(stadtwerke, geometry=straight_line(20), traffic_management=TrafficManagement.LANE_CLOSURE)

    body = waze.build_now()
    warnings = waze.closure_warnings(body)
    assert len(warnings) == 3
    # Lengths are measured on the ground from the published lat/lon, so a 20 m line in the map projection
    # reads a few decimetres different.
    assert str(waze.MSG_CLOSURE_TOO_SHORT).format(id=short.pk, length=20) in warnings
    assert str(waze.MSG_CLOSURE_TOO_FEW_POINTS).format(id=dot.pk) in warnings
    [too_long] = [warning for warning in warnings if str(long.pk) in warning]
    length = int(re.search(r" (\d+) m ", too_long).group(1))  # the message is German or English
    assert 11_900 <= length <= 12_000
    assert too_long == str(waze.MSG_CLOSURE_TOO_LONG).format(id=long.pk, length=length)
    assert not any(str(fine.pk) in warning for warning in warnings)
    # check_feeds sees them through the registry, marked as warnings after a clean schema check.
    assert sorted(FEEDS["waze-cifs-xml"].validate(body)) == sorted(waze.WARNING_PREFIX + w for w in warnings)


def test_the_self_check_counts_points_that_round_to_the_same_position_as_one():
    body = (
        b'<incidents timestamp="2027-03-01T07:00:00+01:00"><incident id="abc"><creationtime>2027-03-01T07:00:00Z'
        b"</creationtime><updatetime>2027-03-01T07:00:00Z</updatetime><type>ROAD_CLOSED</type><description>x"
        b"</description><location><street>Ring</street><polyline>49.484000 8.474000 49.484000 8.474000</polyline>"
        b"</location><starttime>2027-03-01T07:00:00Z</starttime></incident></incidents>"
    )
    assert waze.closure_warnings(body) == [str(waze.MSG_CLOSURE_TOO_FEW_POINTS).format(id="abc")]


def test_the_feeds_are_registered_with_their_checks():
    assert FEEDS["waze-cifs-xml"].url_name == "feeds:waze-cifs-xml"
    assert FEEDS["waze-cifs-json"].content_type == "application/json"
    assert FEEDS["waze-cifs-xml"].validate(b"<incidents/>")  # not valid: no timestamp, no incident
    assert FEEDS["waze-cifs-json"].validate(b"{}")


# --- Round trip through the API ------------------------------------------------------------------------------------


def test_a_roadwork_created_through_the_api_appears_with_its_id_times_and_geometry(api, client, alice, bob):
    body = feature(
        geojson_line(KAISERRING),
        title="Kabelverlegung",
        street_names=["Kaiserring"],
        period={"lower": "2027-05-03T07:00:00+02:00", "upper": "2027-05-14T17:00:00+02:00"},
        traffic_management="full_closure",
        status="submitted",
    )
    created = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert created.status_code == 201, created.content
    work_id = created.json()["id"]
    from roadworks.models import Roadwork

    work = Roadwork.objects.get(pk=work_id)
    assert str(work_id) not in incidents_by_id(get_xml(client))  # submitted: not public yet
    assert transition(api(bob), work, "approved").status_code == 200

    incident = incidents_by_id(get_xml(client))[str(work_id)]
    assert incident.findtext("starttime") == "2027-05-03T07:00:00+02:00"
    assert incident.findtext("endtime") == "2027-05-14T17:00:00+02:00"
    assert close_to(polyline_of(incident), KAISERRING)
    assert (incident.findtext("type"), incident.findtext("subtype")) == ("ROAD_CLOSED", "ROAD_CLOSED_CONSTRUCTION")
    json_item = next(item for item in json.loads(client.get(JSON_URL).content)["incidents"] if item["id"] == work_id)
    assert json_item["starttime"] == "2027-05-03T07:00:00+02:00"


# --- Filters and HTTP ----------------------------------------------------------------------------------------------


def test_it_filters_by_bbox_updated_since_and_active_on(client, stadtwerke):
    near = make_roadwork(stadtwerke)
    far = make_roadwork(stadtwerke, geometry=line(NECKARAU))
    ids = set(incidents_by_id(get_xml(client, bbox="8.47,49.48,8.48,49.49")))
    assert str(near.pk) in ids and str(far.pk) not in ids

    later = timezone.now() + timedelta(seconds=1)
    assert set(incidents_by_id(get_xml(client, updated_since=(later + timedelta(hours=1)).isoformat()))) == set()

    # Looking back: a completed work and a cleared incident show on a day they were active.
    done = make_roadwork(
        stadtwerke,
        status=RoadworkStatus.COMPLETED,
        period=DateTimeTZRange(datetime(2026, 1, 5, 7, tzinfo=UTC), datetime(2026, 1, 9, 16, tzinfo=UTC)),
    )
    assert str(done.pk) not in set(incidents_by_id(get_xml(client)))
    assert str(done.pk) in set(incidents_by_id(get_xml(client, active_on="2026-01-07")))
    assert str(near.pk) not in set(incidents_by_id(get_xml(client, active_on="2026-01-07")))


def test_it_answers_bad_filters_with_400_and_a_message(client):
    from auman.filters import MSG_BBOX

    response = client.get(XML_URL, {"bbox": "1,2,3"})
    assert response.status_code == 400
    assert response.json() == {"bbox": [str(MSG_BBOX)]}
    assert client.get(JSON_URL, {"active_on": "gestern"}).status_code == 400


def test_it_sends_content_types_cache_control_etag_and_cors(client, stadtwerke, settings):
    settings.AUMAN_FEED_MAX_AGE = 45
    make_roadwork(stadtwerke)
    xml = client.get(XML_URL)
    assert xml["Content-Type"] == "application/xml; charset=utf-8"
    assert "max-age=45" in xml["Cache-Control"]
    assert xml["Access-Control-Allow-Origin"] == "*"
    assert xml["ETag"]
    assert client.get(JSON_URL)["Content-Type"] == "application/json"


@pytest.mark.parametrize("url", [XML_URL, JSON_URL])
def test_it_answers_if_none_match_with_304_until_something_changes(client, stadtwerke, url):
    work = make_roadwork(stadtwerke)
    etag = client.get(url)["ETag"]
    unchanged = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    work.title = "Geändert"
    work.save()
    changed = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_a_new_incident_shows_at_once(client):
    etag = client.get(XML_URL)["ETag"]
    crash = make_accident(AccidentCategory.SLIGHTLY_INJURED)
    response = client.get(XML_URL, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 200
    assert str(crash.pk) in incidents_by_id(etree.fromstring(response.content))


def test_building_leaves_the_connection_in_utc_for_django(stadtwerke):
    # The selector switches the session time zone to write local times; Django's own reads afterwards, in the
    # same transaction, must still see the stored instants (a leak once shifted a re-saved period by two hours).
    from django.db import connection

    work = make_roadwork(stadtwerke)
    waze.build_now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('TimeZone')")
        assert cursor.fetchone()[0] == "UTC"
    reloaded = type(work).objects.get(pk=work.pk)
    assert reloaded.period.lower == work.period.lower
