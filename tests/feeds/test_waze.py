"""The Waze CIFS feeds (XML and JSON): valid against the official CIFS 2.0 XSD, the mapping rules, the closure
self-check, the filters and HTTP behaviour, and a roadwork's round trip from the API into the feed.

alice applies for Stadtwerke, bob approves for the authority; the feeds are read anonymously, as Waze reads them.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.gis.geos import LineString
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.http import QueryDict
from django.utils import timezone, translation
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


# --- What PostgreSQL writes, exactly -------------------------------------------------------------------------------
# The document is written in SQL; these pin the texts it writes to what Python's xml.sax.saxutils.escape,
# " ".join(text.split()) and json (ensure_ascii=False) make of them, on texts the demo and benchmark data lack.

NOW = datetime(2026, 11, 21, 10, 30, 15, tzinfo=UTC)
MARKUP = "Rohr & <Ecke> \"Markt\" 'x'"
# Every character JSON escapes, characters XML cannot carry (and so drops), and some that pass through as they are.
AWKWARD = "".join(chr(c) for c in range(1, 32)) + ' "quoted" \\back\\slash\x7f \u2028 \ufffe\uffff 🚧👷🏽‍♀️ Straße & <b>'
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def both_documents() -> tuple[etree._Element, bytes, dict]:
    xml = waze.build_now(now=NOW)
    body = waze.build_now(now=NOW, as_json=True)
    return etree.fromstring(xml), xml, {item["id"]: item for item in json.loads(body)["incidents"]} | {"_raw": body}


def as_xml_text(text: str) -> bytes:
    """The character data Python's escape() wrote, after dropping what XML cannot carry."""
    return NOT_XML.sub("", text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode()


def test_the_whitespace_the_sql_collapses_is_what_python_splits_on():
    expanded = re.sub(
        r"(.)-(.)", lambda m: "".join(map(chr, range(ord(m[1]), ord(m[2]) + 1))), waze.WHITESPACE_CHARACTERS
    )
    assert set(expanded) == {chr(c) for c in range(0x110000) if chr(c).isspace()}


def test_it_escapes_markup_and_drops_what_xml_cannot_carry_in_every_text(stadtwerke, settings):
    settings.AUMAN_FEED_PUBLISHER = f"Stadt {MARKUP}"
    stadtwerke.name = f"Bau {MARKUP}"
    stadtwerke.save()
    work = make_roadwork(
        stadtwerke,
        title=MARKUP,
        description="Zeile 1\nZeile\t2 \x01 \ufffe Ende 🚧 \\ back",
        street_names=['K<1> & "2"', "  ", "\xa0", "B'3"],
        reference="R&<\"'>",
    )
    incident = make_incident(kind=IncidentKind.HAZARD, description="", street_name=AWKWARD)
    tree, xml, items = both_documents()
    assert official_errors(cifs_schema(), xml) == []
    element = incidents_by_id(tree)[str(work.pk)]
    description = f"{MARKUP}: Zeile 1 Zeile 2 \x01 \ufffe Ende 🚧 \\ back"
    expected = {
        "source/reference": f"Stadt {MARKUP}",
        "source/name": f"Bau {MARKUP}",
        "description": NOT_XML.sub("", description),
        "location/street": 'K<1> & "2", B\'3',
        "location/location_description": "R&<\"'>",
    }
    assert {path: element.findtext(path) for path in expected} == expected
    # Quotes stay as they are in character data; & < > are escaped.
    assert (
        b"<description>Rohr &amp; &lt;Ecke&gt; \"Markt\" 'x': Zeile 1 Zeile 2   Ende \xf0\x9f\x9a\xa7 \\ back<" in xml
    )
    item = items[str(work.pk)]
    assert item["description"] == description  # JSON keeps every character
    assert (item["source"], item["location"]["street"], item["location"]["location_description"]) == (
        {"reference": f"Stadt {MARKUP}", "name": f"Bau {MARKUP}"},
        'K<1> & "2", B\'3',
        "R&<\"'>",
    )
    # The incident's street holds every control character: XML drops those it cannot carry (byte for byte what
    # escape() wrote, \r included), JSON escapes them exactly as Python's json does.
    assert b"<street>" + as_xml_text(AWKWARD) + b"</street>" in xml
    assert b'"street":' + json.dumps(AWKWARD, ensure_ascii=False).encode() + b"," in items["_raw"]
    assert items[str(incident.pk)]["location"]["street"] == AWKWARD


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("  Vorne \n\n und\thinten \u3000 ", "Titel: Vorne und hinten"),
        ("x" * 993, "Titel: " + "x" * 993),  # 1000 characters: as it is
        ("x" * 994, "Titel: " + "x" * 992 + "…"),  # 1001: cut to 999 and the ellipsis
        ("ä" * 1500, "Titel: " + "ä" * 992 + "…"),  # characters, not bytes
        ("a" + " \t " * 500 + "b" * 1000, "Titel: a " + "b" * 990 + "…"),  # collapsed first, then cut
        ("\x01" * 993 + "\x1f", "Titel: " + "\x01" * 993),  # \x1f is whitespace to Python: collapsed away at the end
    ],
)
def test_it_collapses_whitespace_and_clips_the_description_to_1000_characters(stadtwerke, description, expected):
    work = make_roadwork(stadtwerke, title="Titel", description=description)
    tree, _, items = both_documents()
    assert items[str(work.pk)]["description"] == expected
    assert len(expected) <= waze.DESCRIPTION_MAX
    assert incidents_by_id(tree)[str(work.pk)].findtext("description") == NOT_XML.sub("", expected)


def test_it_fills_empty_texts_with_their_fallbacks_and_leaves_out_what_is_unknown(stadtwerke, settings):
    settings.AUMAN_CITY_NAME = "Mannheim & <Umgebung>"
    nameless = make_roadwork(stadtwerke, title="Hausanschluss", description="", street_names=[" ", ""])
    short = make_roadwork(stadtwerke, title="Kurz", street_names=["A"])  # one character is no street name
    blank = make_incident(kind=IncidentKind.SPILL, description="", street_name=" \t", direction="unknown")
    tree, _, items = both_documents()
    elements = incidents_by_id(tree)
    assert elements[str(nameless.pk)].findtext("description") == "Hausanschluss"
    assert elements[str(nameless.pk)].findtext("location/street") == "Hausanschluss"
    assert elements[str(short.pk)].findtext("location/street") == "Kurz"
    incident = elements[str(blank.pk)]
    with translation.override(settings.LANGUAGE_CODE):
        label = str(IncidentKind.SPILL.label)
    assert (incident.findtext("description"), incident.findtext("location/street")) == (label, settings.AUMAN_CITY_NAME)
    # No end, no direction: the elements are left out, in both formats.
    assert incident.find("endtime") is None and incident.find("location/direction") is None
    assert incident.find("location/location_description") is None and incident.find("schedule") is None
    item = items[str(blank.pk)]
    keys = ["id", "creationtime", "updatetime", "source", "type", "subtype", "description", "location", "starttime"]
    assert list(item) == keys
    assert item["location"] == {"street": settings.AUMAN_CITY_NAME, "polyline": "49.4846 8.475 49.4846 8.475"}
    assert item["source"] == {"reference": settings.AUMAN_FEED_PUBLISHER, "name": settings.AUMAN_FEED_PUBLISHER}


def test_an_incident_ends_when_cleared_or_else_when_expected_to(client):
    start = NOW - timedelta(hours=2)
    expected = make_incident(
        kind=IncidentKind.BREAKDOWN,
        occurred_at=start,
        reported_at=start,
        expected_clearance_at=NOW + timedelta(hours=1),
    )
    cleared = make_incident(
        kind=IncidentKind.BREAKDOWN,
        occurred_at=start,
        reported_at=start,
        status=IncidentStatus.CLEARED,
        cleared_at=NOW - timedelta(minutes=5),
        expected_clearance_at=NOW + timedelta(hours=1),
    )
    tree = etree.fromstring(waze.build_now(waze.parse_feed_filters(QueryDict("active_on=2026-11-21"))[0], now=NOW))
    elements = incidents_by_id(tree)
    assert elements[str(expected.pk)].findtext("endtime") == "2026-11-21T12:30:15+01:00"
    assert elements[str(cleared.pk)].findtext("endtime") == "2026-11-21T11:25:15+01:00"
    assert elements[str(cleared.pk)].findtext("starttime") == "2026-11-21T09:30:15+01:00"


def test_separate_parts_get_derived_ids_and_their_own_polylines_in_both_formats(stadtwerke):
    from django.contrib.gis.geos import MultiLineString

    third = [(8.4900, 49.4600), (8.4910, 49.4610)]
    geometry = MultiLineString(
        [LineString(coords, srid=4326) for coords in (KAISERRING, NECKARAU, third)], srid=4326
    ).transform(25832, clone=True)
    work = make_roadwork(stadtwerke, geometry=geometry, direction=Direction.BACKWARD)
    tree, _, items = both_documents()
    ids = [str(work.pk), str(uuid.uuid5(work.pk, "part-2")), str(uuid.uuid5(work.pk, "part-3"))]
    assert [element.get("id") for element in tree.iterfind("incident")] == ids
    for element, coords in zip(tree.iterfind("incident"), (KAISERRING, NECKARAU, third), strict=True):
        assert close_to(polyline_of(element), coords[::-1])  # against the digitising direction
        assert element.findtext("location/direction") == "ONE_DIRECTION"
        assert element.findtext("description") == work.title
    assert [items[i]["location"]["polyline"] for i in ids] == [
        element.findtext("location/polyline") for element in tree.iterfind("incident")
    ]


def test_a_polygon_is_its_centre_line_in_both_directions_and_detours_are_no_cifs_incidents(stadtwerke):
    from django.contrib.gis.geos import Polygon

    from roadworks.models import Detour

    # 150 m by 30 m along the parallel: the centre line runs east-west through the middle.
    area = Polygon(
        [(8.4740, 49.4840), (8.4760, 49.4840), (8.4760, 49.48427), (8.4740, 49.48427), (8.4740, 49.4840)], srid=4326
    ).transform(25832, clone=True)
    work = make_roadwork(stadtwerke, geometry=area, direction=Direction.FORWARD)
    Detour.objects.create(roadwork=work, name="Umleitung", geometry=line(NECKARAU))
    tree, _, items = both_documents()
    [element] = tree.iterfind("incident")
    assert element.get("id") == str(work.pk)
    assert element.findtext("location/direction") == "BOTH_DIRECTIONS"
    points = polyline_of(element)
    assert len(points) == 2 and all(abs(lat - 49.484135) < 2e-5 for lat, _ in points)
    assert sorted(round(lon, 4) for _, lon in points) == [8.474, 8.476]
    assert list(items) == [str(work.pk), "_raw"]


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        (IncidentDirection.BOTH, "BOTH_DIRECTIONS"),
        (IncidentDirection.FORWARD, "ONE_DIRECTION"),
        (IncidentDirection.BACKWARD, "ONE_DIRECTION"),
        (IncidentDirection.UNKNOWN, None),
    ],
)
def test_an_incident_s_direction(direction, expected):
    item = make_incident(kind=IncidentKind.OBSTRUCTION, direction=direction, affected_line=line(KAISERRING))
    tree, _, items = both_documents()
    assert incidents_by_id(tree)[str(item.pk)].findtext("location/direction") == expected
    assert items[str(item.pk)]["location"].get("direction") == expected
    forward = direction != IncidentDirection.BACKWARD
    assert close_to(polyline_of(incidents_by_id(tree)[str(item.pk)]), KAISERRING if forward else KAISERRING[::-1])


def test_every_accident_category_and_every_kind_gets_its_type_in_both_formats():
    accidents = make_every_accident()
    others = {kind: make_incident(kind=kind) for kind in waze.INCIDENT_TYPES}
    closure = make_incident(kind=IncidentKind.POLICE_OPERATION, affected_line=line(KAISERRING))
    tree, _, items = both_documents()
    expected = {
        str(incident.pk): ("ACCIDENT", "ACCIDENT_MAJOR" if category in (1, 2) else "ACCIDENT_MINOR")
        for category, incident in accidents.items()
    }
    expected |= {str(incident.pk): waze.INCIDENT_TYPES[kind] for kind, incident in others.items()}
    expected[str(closure.pk)] = ("ROAD_CLOSED", "ROAD_CLOSED_HAZARD")
    elements = incidents_by_id(tree)
    assert {i: (elements[i].findtext("type"), elements[i].findtext("subtype")) for i in expected} == expected
    assert {i: (items[i]["type"], items[i]["subtype"]) for i in expected} == expected


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kolkata"])
def test_times_carry_the_offset_of_the_configured_zone_as_python_writes_it(stadtwerke, settings, zone):
    settings.TIME_ZONE = zone  # half-hour offsets, one of them negative
    work = make_roadwork(stadtwerke)
    tree, _, items = both_documents()
    assert tree.get("timestamp") == timezone.localtime(NOW).isoformat(timespec="seconds")
    assert json.loads(items["_raw"])["timestamp"] == tree.get("timestamp")
    start = timezone.localtime(work.period.lower).isoformat(timespec="seconds")
    assert incidents_by_id(tree)[str(work.pk)].findtext("starttime") == start == items[str(work.pk)]["starttime"]


def test_a_work_or_incident_with_an_empty_geometry_is_left_out(client, stadtwerke):
    # The former builder wrote the polyline "None" (and "None None") for these; CIFS wants a position.
    from django.contrib.gis.geos import Point

    empty = make_roadwork(stadtwerke, geometry=LineString([], srid=25832))
    nowhere = make_incident(kind=IncidentKind.HAZARD, location=Point([], srid=25832))
    fine = make_roadwork(stadtwerke)
    xml = waze.build_now(now=NOW)
    assert official_errors(cifs_schema(), xml) == []
    assert list(incidents_by_id(etree.fromstring(xml))) == [str(fine.pk)]
    items = json.loads(waze.build_now(now=NOW, as_json=True))["incidents"]
    assert [item["id"] for item in items] == [str(fine.pk)]
    assert str(empty.pk) not in xml.decode() and str(nowhere.pk) not in xml.decode()
