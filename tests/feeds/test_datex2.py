"""The DATEX II v3 SituationPublication: valid against the official v3.7 XSDs, the mapping rules (works records,
traffic management, detours, accidents from the German police codes, locations, recurring validity), filters and
HTTP behaviour, and a roadwork's round trip from the API into the feed.

alice applies for Stadtwerke, bob approves for the authority, carol is police; the feed is read anonymously.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import pytest
from django.contrib.gis.geos import GEOSGeometry, MultiLineString
from django.db import connection
from django.utils import timezone, translation
from lxml import etree

from roadworks.models import Detour, Direction, Roadwork, TrafficManagement, WorkKind
from tests.conftest import KAISERRING, NECKARAU, feature, geojson_line, line, make_incident, make_roadwork, period
from tests.feeds.situation_data import (
    CASUALTIES_BY_CATEGORY,
    make_accident,
    make_every_accident,
    make_windowed_works,
    official_errors,
    official_schema,
)
from tests.roadworks.helpers import transition
from traffic.feeds import datex2
from traffic.feeds.registry import FEEDS
from traffic.models import AccidentCategory, AccidentKind, AccidentType, IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db

URL = "/feeds/datex2/v3/situations.xml"
NS = dict(datex2.NAMESPACES)
XSI_TYPE = f"{{{NS['xsi']}}}type"


def datex_schema():
    return official_schema("datex2", "v3.7", "DATEXII_3_D2Payload.xsd")


def get_feed(client, **params: str) -> etree._Element:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content)


def situation(document: etree._Element, item_id) -> etree._Element:
    [found] = document.xpath("sit:situation[@id=$id]", namespaces=NS, id=str(item_id))
    return found


def records(element: etree._Element) -> dict[str, etree._Element]:
    """The situation's records by their xsi:type without prefix."""
    return {record.get(XSI_TYPE).split(":")[1]: record for record in element.iterfind("sit:situationRecord", NS)}


def texts(element: etree._Element, path: str) -> list[str]:
    return [found.text for found in element.iterfind(path, NS)]


def poslist(element: etree._Element) -> list[tuple[float, float]]:
    numbers = [float(value) for value in element.findtext(".//loc:posList", namespaces=NS).split()]
    return list(zip(numbers[0::2], numbers[1::2], strict=True))


def close_to(points: list[tuple[float, float]], lon_lat: list[tuple[float, float]]) -> bool:
    return len(points) == len(lon_lat) and all(
        abs(lat - want_lat) <= 2e-6 and abs(lon - want_lon) <= 2e-6
        for (lat, lon), (want_lon, want_lat) in zip(points, lon_lat, strict=True)
    )


# --- Validity ----------------------------------------------------------------------------------------------------


def test_it_publishes_a_situation_publication_valid_against_the_official_datex_ii_37_schemas(
    client, every_roadwork, every_incident, stadtwerke
):
    make_windowed_works(stadtwerke)
    make_every_accident()
    response = client.get(URL)
    assert response.status_code == 200
    assert official_errors(datex_schema(), response.content) == []
    assert FEEDS["datex2-situations"].validate(response.content) == []
    document = etree.fromstring(response.content)
    assert document.get(XSI_TYPE) == "sit:SituationPublication"
    kinds = {record.get(XSI_TYPE) for record in document.iterfind(".//sit:situationRecord", NS)}
    assert {
        "sit:MaintenanceWorks",
        "sit:ConstructionWorks",
        "sit:RoadOrCarriagewayOrLaneManagement",
        "sit:ReroutingManagement",
        "sit:Accident",
        "sit:VehicleObstruction",
        "sit:GeneralObstruction",
        "sit:AuthorityOperation",
    } <= kinds


def test_it_publishes_a_valid_empty_publication(client):
    body = client.get(URL).content
    assert official_errors(datex_schema(), body) == []


def test_the_self_check_reports_schema_errors():
    body = datex2.build_now()
    broken = body.replace(b"<com:country>DE</com:country>", b"")
    assert FEEDS["datex2-situations"].validate(broken)
    assert FEEDS["datex2-situations"].validate(b"<not-closed") != []


# --- Roadworks -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(WorkKind))
def test_it_maps_the_kind_of_works_to_maintenance_or_construction_works(client, stadtwerke, kind):
    work = make_roadwork(stadtwerke, work_kind=kind)
    found = records(situation(get_feed(client), work.pk))
    if kind in datex2.CONSTRUCTION_WORK_TYPES:
        record = found["ConstructionWorks"]
        assert record.findtext("sit:constructionWorkType", namespaces=NS) == datex2.CONSTRUCTION_WORK_TYPES[kind]
    else:
        record = found["MaintenanceWorks"]
        assert record.findtext("sit:roadMaintenanceType", namespaces=NS) == datex2.ROAD_MAINTENANCE_TYPES[kind]
    assert record.get("id") == str(work.pk)
    street_works = record.findtext("sit:_roadworksExtension/sit:streetWorks/ubx:streetWorksType", namespaces=NS)
    assert street_works == datex2.STREET_WORKS_TYPES.get(kind)
    assert record.findtext("sit:roadworksIdentifier", namespaces=NS) == work.reference


def test_every_kind_of_works_has_a_record_type():
    assert set(datex2.CONSTRUCTION_WORK_TYPES) | set(datex2.ROAD_MAINTENANCE_TYPES) == set(WorkKind)
    assert not set(datex2.CONSTRUCTION_WORK_TYPES) & set(datex2.ROAD_MAINTENANCE_TYPES)


@pytest.mark.parametrize("traffic_management", list(TrafficManagement))
def test_it_adds_a_management_record_for_traffic_management_on_the_carriageway(client, stadtwerke, traffic_management):
    work = make_roadwork(stadtwerke, traffic_management=traffic_management, direction=Direction.FORWARD)
    found = records(situation(get_feed(client), work.pk))
    expected = datex2.MANAGEMENT_TYPES.get(traffic_management)
    if expected is None:  # footway, cycle lane, no incursion: nothing changes for traffic on the carriageway
        assert "RoadOrCarriagewayOrLaneManagement" not in found
        return
    record = found["RoadOrCarriagewayOrLaneManagement"]
    assert record.get("id") == f"{work.pk}_management"
    assert record.findtext("sit:roadOrCarriagewayOrLaneManagementType", namespaces=NS) == expected
    assert record.findtext("sit:complianceOption", namespaces=NS) == "mandatory"
    assert record.findtext("sit:applicableForTrafficDirection", namespaces=NS) == "aligned"
    assert record.find("sit:cause/sit:managedCause/sit:objectReference", NS).get("id") == str(work.pk)


def test_a_full_closure_is_road_closed_in_both_directions(client, stadtwerke):
    work = make_roadwork(stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE, direction=Direction.BOTH)
    record = records(situation(get_feed(client), work.pk))["RoadOrCarriagewayOrLaneManagement"]
    assert record.findtext("sit:roadOrCarriagewayOrLaneManagementType", namespaces=NS) == "roadClosed"
    assert record.findtext("sit:applicableForTrafficDirection", namespaces=NS) == "bothWays"


def test_detours_are_rerouting_management_records_with_their_route(client, stadtwerke):
    work = make_roadwork(stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE)
    luisenring = [(8.4700, 49.4870), (8.4730, 49.4890), (8.4765, 49.4875)]
    whole = Detour.objects.create(roadwork=work, name="Umleitung U1", geometry=line(luisenring))
    later = Detour.objects.create(
        roadwork=work,
        name="Umleitung U2",
        description="Für Lkw über 7,5 t",
        geometry=MultiLineString([line(luisenring[:2]), line(NECKARAU)]),
        period=period(work.period.lower + timedelta(days=1), 3),
    )
    element = situation(get_feed(client), work.pk)
    reroutings = {
        record.get("id"): record
        for record in element.iterfind("sit:situationRecord", NS)
        if record.get(XSI_TYPE) == "sit:ReroutingManagement"
    }
    assert set(reroutings) == {f"{work.pk}_detour{whole.pk}", f"{work.pk}_detour{later.pk}"}
    first = reroutings[f"{work.pk}_detour{whole.pk}"]
    assert first.findtext("sit:reroutingManagementType", namespaces=NS) == "followDiversionSigns"
    assert first.findtext("sit:reroutingItineraryDescription/com:values/com:value", namespaces=NS) == "Umleitung U1"
    route = first.find("sit:alternativeRoute", NS)
    assert route.get(XSI_TYPE) == "loc:ItineraryByIndexedLocations"
    assert close_to(poslist(route), luisenring)
    # The record's own location is the closed stretch; the detour is the alternative route.
    assert close_to(poslist(first.find("sit:locationReference", NS)), KAISERRING)
    second = reroutings[f"{work.pk}_detour{later.pk}"]
    assert len(second.findall("sit:alternativeRoute/loc:locationContainedInItinerary", NS)) == 2
    start = second.findtext(".//com:overallStartTime", namespaces=NS)
    assert start == "2027-03-02T07:00:00+01:00"  # the detour's own period, not the work's
    assert "Für Lkw über 7,5 t" in second.findtext("sit:reroutingItineraryDescription//com:value", namespaces=NS)


def test_it_writes_a_gml_line_string_latitude_first_with_the_road_names(client, stadtwerke):
    work = make_roadwork(stadtwerke, direction=Direction.BACKWARD, street_names=["Kaiserring", "Tattersallstraße"])
    record = records(situation(get_feed(client), work.pk))["MaintenanceWorks"]
    location = record.find("sit:locationReference", NS)
    assert location.get(XSI_TYPE) == "loc:SingleRoadLinearLocation"
    assert location.find("loc:gmlLineString", NS).get("srsName") == datex2.SRS_NAME
    assert close_to(poslist(location), KAISERRING[::-1])  # in the affected direction of travel
    assert texts(location, "loc:supplementaryPositionalDescription/loc:roadInformation/loc:roadName") == [
        "Kaiserring",
        "Tattersallstraße",
    ]


def test_separate_parts_are_a_location_group(client, stadtwerke):
    geometry = MultiLineString([line(KAISERRING), line(NECKARAU)])
    work = make_roadwork(stadtwerke, geometry=geometry)
    location = records(situation(get_feed(client), work.pk))["MaintenanceWorks"].find("sit:locationReference", NS)
    assert location.get(XSI_TYPE) == "loc:LocationGroupByList"
    assert len(location.findall("loc:locationContainedInGroup", NS)) == 2


def test_it_writes_the_period_with_offsets_and_daily_windows_as_recurring_periods(client, stadtwerke):
    works = make_windowed_works(stadtwerke)
    document = get_feed(client)

    def valid_period(name: str) -> etree._Element | None:
        record = records(situation(document, works[name].pk))
        record = record.get("MaintenanceWorks")
        return record.find("sit:validity/com:validityTimeSpecification", NS)

    spec = valid_period("weekdays")
    assert spec.findtext("com:overallStartTime", namespaces=NS) == "2027-03-01T07:00:00+01:00"
    assert spec.findtext("com:overallEndTime", namespaces=NS) == "2027-03-11T07:00:00+01:00"
    assert spec.findtext("com:validPeriod/com:recurringTimePeriodOfDay/com:startTimeOfPeriod", namespaces=NS) == (
        "07:00:00"
    )
    assert spec.findtext("com:validPeriod/com:recurringTimePeriodOfDay/com:endTimeOfPeriod", namespaces=NS) == (
        "17:00:00"
    )
    assert texts(spec, "com:validPeriod/com:recurringDayWeekMonthPeriod/com:applicableDay") == [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
    ]
    assert texts(valid_period("everyday"), "com:validPeriod/com:recurringDayWeekMonthPeriod/com:applicableDay") == []
    night = valid_period("saturdays")
    assert texts(night, "com:validPeriod/com:recurringDayWeekMonthPeriod/com:applicableDay") == ["saturday"]
    assert night.find("com:validPeriod/com:recurringTimePeriodOfDay", NS) is None
    # Across midnight: start after end, which DATEX II reads as running into the next day.
    management = records(situation(document, works["night"].pk))["RoadOrCarriagewayOrLaneManagement"]
    day = management.find("sit:validity//com:recurringTimePeriodOfDay", NS)
    assert [child.text for child in day] == ["20:00:00", "05:00:00"]


def test_it_gives_the_scale_and_status_of_the_works(client, stadtwerke):
    closure = make_roadwork(stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE)
    emergency = make_roadwork(stadtwerke, is_emergency=True, status="in_progress")
    document = get_feed(client)
    record = records(situation(document, closure.pk))["MaintenanceWorks"]
    assert record.findtext("sit:roadworksScale", namespaces=NS) == "major"  # a full closure is a major work
    assert record.find("sit:urgentRoadworks", NS) is None
    assert record.findtext("sit:operatorActionStatus", namespaces=NS) == "approved"
    assert record.get("version") == str(Roadwork.objects.get(pk=closure.pk).version)
    urgent = records(situation(document, emergency.pk))["MaintenanceWorks"]
    assert urgent.findtext("sit:urgentRoadworks", namespaces=NS) == "true"
    assert urgent.findtext("sit:operatorActionStatus", namespaces=NS) == "beingImplemented"


# --- Incidents -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("category", list(AccidentCategory))
def test_it_maps_each_accident_category_to_accident_types_and_casualties(client, category):
    crash = make_accident(category, kind=AccidentKind.ONCOMING, type_=AccidentType.TURNING)
    record = records(situation(get_feed(client), crash.pk))["Accident"]
    types = texts(record, "sit:accidentType")
    assert types[0] == "collision"
    serious = category in (AccidentCategory.KILLED, AccidentCategory.SERIOUSLY_INJURED)
    assert ("seriousInjuryOrFatalAccident" in types) is serious
    assert record.find("sit:accidentType[@_extendedValue='turningAccident']", NS).text == "_extended"
    assert record.findtext("sit:collisionType", namespaces=NS) == "headOnCollision"
    people = {
        group.findtext("sit:injuryStatusType", namespaces=NS): int(group.findtext("sit:numberOfPeople", namespaces=NS))
        for group in record.iterfind("sit:groupOfPeopleInvolved", NS)
    }
    expected = {
        status: CASUALTIES_BY_CATEGORY[category][field]
        for field, status in datex2.CASUALTIES
        if CASUALTIES_BY_CATEGORY[category].get(field)
    }
    assert people == expected
    assert record.findtext("sit:trafficConstrictionType", namespaces=NS) == "lanesBlocked"


@pytest.mark.parametrize("kind", list(AccidentKind))
def test_it_maps_the_unfallart_to_a_collision_type(client, kind):
    crash = make_accident(AccidentCategory.OTHER_PROPERTY_DAMAGE, kind=kind)
    record = records(situation(get_feed(client), crash.pk))["Accident"]
    assert record.findtext("sit:collisionType", namespaces=NS) == datex2.COLLISION_TYPES.get(kind)
    assert texts(record, "sit:accidentType")[0] == ("collision" if kind in datex2.COLLISION_TYPES else "accident")


def test_it_carries_the_unfalltyp_as_an_extended_accident_type(client):
    crashes = {
        type_: make_accident(AccidentCategory.OTHER_PROPERTY_DAMAGE, kind=0, type_=type_) for type_ in AccidentType
    }
    document = get_feed(client)
    for type_, crash in crashes.items():
        accident_types = [
            (element.text, element.get("_extendedValue"))
            for element in records(situation(document, crash.pk))["Accident"].iterfind("sit:accidentType", NS)
        ]
        assert accident_types == [("accident", None), ("_extended", datex2.ACCIDENT_TYPE_EXTENSIONS[type_])]


def test_it_names_the_road_users_involved(client):
    crash = make_accident(
        AccidentCategory.SLIGHTLY_INJURED, involves_car=True, involves_bicycle=True, involves_pedestrian=True
    )
    record = records(situation(get_feed(client), crash.pk))["Accident"]
    assert texts(record, "sit:groupOfVehiclesInvolved/com:vehicleCharacteristics/com:vehicleType") == [
        "car",
        "bicycle",
    ]
    assert texts(record, "sit:groupOfPeopleInvolved/sit:involvementRole") == ["pedestrian"]


def test_an_accident_not_yet_classified_is_a_plain_accident(client):
    crash = make_incident(kind=IncidentKind.ACCIDENT)
    record = records(situation(get_feed(client), crash.pk))["Accident"]
    assert texts(record, "sit:accidentType") == ["accident"]
    assert record.findtext("sit:probabilityOfOccurrence", namespaces=NS) == "probable"  # reported, not confirmed


@pytest.mark.parametrize(("kind", "expected"), list(datex2.INCIDENT_RECORDS.items()))
def test_it_maps_other_incident_kinds_to_their_records(client, kind, expected):
    item = make_incident(kind=kind, status=IncidentStatus.CONFIRMED)
    record_type, element, value = expected
    record = records(situation(get_feed(client), item.pk))[record_type]
    assert record.findtext(f"sit:{element}", namespaces=NS) == value
    assert record.findtext("sit:probabilityOfOccurrence", namespaces=NS) == "certain"
    assert record.findtext("sit:validity/com:validityStatus", namespaces=NS) == "active"


def test_an_incident_is_a_point_or_its_affected_stretch(client):
    point = make_incident(kind=IncidentKind.SPILL)
    stretch = make_incident(kind=IncidentKind.BREAKDOWN, affected_line=line(KAISERRING), lanes_blocked=1)
    document = get_feed(client)
    at_point = records(situation(document, point.pk))["GeneralObstruction"].find("sit:locationReference", NS)
    assert at_point.get(XSI_TYPE) == "loc:PointLocation"
    coordinates = at_point.find("loc:pointByCoordinates/loc:pointCoordinates", NS)
    assert (
        coordinates.findtext("loc:latitude", namespaces=NS),
        coordinates.findtext("loc:longitude", namespaces=NS),
    ) == (
        "49.4846",
        "8.475",
    )
    along = records(situation(document, stretch.pk))["VehicleObstruction"].find("sit:locationReference", NS)
    assert along.get(XSI_TYPE) == "loc:SingleRoadLinearLocation"
    assert close_to(poslist(along), KAISERRING)
    assert along.findtext("loc:coordinatesForDisplay/loc:latitude", namespaces=NS) == "49.4846"


# --- Round trip, filters and HTTP ------------------------------------------------------------------------------------


def test_a_roadwork_created_through_the_api_appears_with_its_id_times_and_geometry(api, client, alice, bob):
    body = feature(
        geojson_line(KAISERRING),
        title="Fernwärme Kaiserring",
        street_names=["Kaiserring"],
        period={"lower": "2027-05-03T07:00:00+02:00", "upper": "2027-05-14T17:00:00+02:00"},
        work_kind="district_heating",
        status="submitted",
    )
    created = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert created.status_code == 201, created.content
    work_id = created.json()["id"]
    assert not get_feed(client).xpath("sit:situation[@id=$id]", namespaces=NS, id=work_id)
    assert transition(api(bob), Roadwork.objects.get(pk=work_id), "approved").status_code == 200

    record = records(situation(get_feed(client), work_id))["MaintenanceWorks"]
    assert record.get("id") == work_id
    spec = record.find("sit:validity/com:validityTimeSpecification", NS)
    assert spec.findtext("com:overallStartTime", namespaces=NS) == "2027-05-03T07:00:00+02:00"
    assert spec.findtext("com:overallEndTime", namespaces=NS) == "2027-05-14T17:00:00+02:00"
    assert close_to(poslist(record.find("sit:locationReference", NS)), KAISERRING)


def test_it_filters_by_bbox(client, stadtwerke):
    near = make_roadwork(stadtwerke)
    far = make_roadwork(stadtwerke, geometry=line(NECKARAU))
    ids = {
        element.get("id") for element in get_feed(client, bbox="8.47,49.48,8.48,49.49").iterfind("sit:situation", NS)
    }
    assert str(near.pk) in ids and str(far.pk) not in ids


def test_it_looks_back_with_active_on(client):
    cleared = make_incident(status=IncidentStatus.CLEARED)
    cleared.cleared_at = cleared.occurred_at + timedelta(minutes=5)
    cleared.save()
    assert not get_feed(client).xpath("sit:situation[@id=$id]", namespaces=NS, id=str(cleared.pk))
    back = get_feed(client, active_on=(cleared.occurred_at + timedelta(minutes=1)).isoformat())
    record = records(situation(back, cleared.pk))["Accident"]
    assert record.findtext("sit:validity/com:validityStatus", namespaces=NS) == "definedByValidityTimeSpec"
    assert record.findtext("sit:validity//com:overallEndTime", namespaces=NS)


def test_it_answers_a_bad_filter_with_400(client):
    response = client.get(URL, {"updated_since": "bald"})
    assert response.status_code == 400
    assert "updated_since" in response.json()


def test_it_sends_xml_with_cache_control_and_cors_and_answers_304(client, stadtwerke, settings):
    settings.AUMAN_FEED_MAX_AGE = 30
    work = make_roadwork(stadtwerke)
    response = client.get(URL)
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert "max-age=30" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    etag = response["ETag"]
    assert client.get(URL, HTTP_IF_NONE_MATCH=etag).status_code == 304
    Detour.objects.create(roadwork=work, name="Umleitung", geometry=line(NECKARAU))
    assert client.get(URL, HTTP_IF_NONE_MATCH=etag).status_code == 200  # a new detour is a change


# --- Texts, as PostgreSQL writes them --------------------------------------------------------------------------------

# Everything a text may hold that XML or a MultilingualString treats specially: markup characters, both quotes, a
# newline, a tab, a run of spaces, a control character and U+FFFE (XML cannot carry them), an emoji.
AWKWARD = "Rohr & <Leitung> \"A\" 'B'\nZeile\tTab\x01Steuer\ufffeX 😀  doppelt "
# The same as a comment: whitespace folded to single spaces, the characters XML cannot carry removed.
AWKWARD_COMMENT = "Rohr & <Leitung> \"A\" 'B' Zeile TabSteuerX 😀 doppelt"
# ... and as it stands in the document's bytes.
AWKWARD_COMMENT_XML = "Rohr &amp; &lt;Leitung&gt; \"A\" 'B' Zeile TabSteuerX 😀 doppelt"


def comment_of(record: etree._Element) -> str:
    return record.findtext("sit:generalPublicComment/sit:comment/com:values/com:value", namespaces=NS)


def children(record: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in record]


def test_it_escapes_folds_and_cleans_the_texts_of_a_roadwork_and_its_detours(client, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        title="Rohr & <Leitung>",
        description=AWKWARD,
        reference="BS & <1> \"2\" 'x'",
        street_names=['Straße & <Weg> "x"', " \t ", "Tab\tName\x01😀", ""],
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    plain = Detour.objects.create(roadwork=work, name="U1 & <Nord>", geometry=line(KAISERRING))
    awkward = Detour.objects.create(roadwork=work, name="U2", description=AWKWARD, geometry=line(NECKARAU))
    body = client.get(URL).content
    assert official_errors(datex_schema(), body) == []
    found = records(situation(etree.fromstring(body), work.pk))

    works = found["MaintenanceWorks"]
    assert comment_of(works) == f"Rohr & <Leitung>: {AWKWARD_COMMENT}"
    assert f'<com:value lang="de">Rohr &amp; &lt;Leitung&gt;: {AWKWARD_COMMENT_XML}</com:value>'.encode() in body
    assert works.findtext("sit:roadworksIdentifier", namespaces=NS) == "BS & <1> \"2\" 'x'"
    assert b"<sit:roadworksIdentifier>BS &amp; &lt;1&gt; \"2\" 'x'</sit:roadworksIdentifier>" in body
    # Blank street names are left out; a name keeps its tab (only comments are folded) but not \x01.
    for record in found.values():
        location = record.find("sit:locationReference", NS)
        assert texts(location, ".//loc:roadName") == ['Straße & <Weg> "x"', "Tab\tName😀"]

    reroutings = {
        record.get("id"): record.findtext("sit:reroutingItineraryDescription/com:values/com:value", namespaces=NS)
        for record in situation(etree.fromstring(body), work.pk).iterfind("sit:situationRecord", NS)
        if record.get(XSI_TYPE) == "sit:ReroutingManagement"
    }
    assert reroutings == {
        f"{work.pk}_detour{plain.pk}": "U1 & <Nord>",
        f"{work.pk}_detour{awkward.pk}": f"U2: {AWKWARD_COMMENT}",
    }


def test_it_clips_a_long_comment_after_folding_it_and_counts_characters_not_bytes(client, stadtwerke):
    words = make_roadwork(stadtwerke, title="Titel", description="Wort  \n" * 300)
    exactly = make_roadwork(stadtwerke, title="T", description="ü" * 1021)  # 1,024 characters, 2,045 bytes
    one_more = make_roadwork(stadtwerke, title="T", description="ü" * 1022)
    document = get_feed(client)
    folded = "Titel: " + " ".join(["Wort"] * 300)
    assert comment_of(records(situation(document, words.pk))["MaintenanceWorks"]) == folded[:1023] + "…"
    assert comment_of(records(situation(document, exactly.pk))["MaintenanceWorks"]) == "T: " + "ü" * 1021
    assert comment_of(records(situation(document, one_more.pk))["MaintenanceWorks"]) == "T: " + "ü" * 1020 + "…"


def test_it_leaves_out_what_a_roadwork_does_not_have(client, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        street_names=[],
        description="",
        lanes_affected=0,
        work_kind=WorkKind.OTHER,
        traffic_management=TrafficManagement.FOOTWAY_CLOSURE,
    )
    Roadwork.objects.filter(pk=work.pk).update(category="")  # no category: no roadworksScale
    found = records(situation(get_feed(client), work.pk))
    assert list(found) == ["MaintenanceWorks"]
    record = found["MaintenanceWorks"]
    assert children(record) == [
        "situationRecordCreationTime",
        "situationRecordVersionTime",
        "probabilityOfOccurrence",
        "validity",
        "generalPublicComment",
        "locationReference",
        "operatorActionStatus",
        "roadworksIdentifier",
        "roadMaintenanceType",
    ]
    assert comment_of(record) == work.title
    assert children(record.find("sit:locationReference", NS)) == ["gmlLineString"]
    assert children(record.find("sit:validity/com:validityTimeSpecification", NS)) == [
        "overallStartTime",
        "overallEndTime",
    ]


def test_it_leaves_out_what_an_incident_does_not_have_and_names_it_by_its_kind(client):
    incident = make_incident(kind=IncidentKind.BREAKDOWN, description="", street_name="", lanes_blocked=0)
    record = records(situation(get_feed(client), incident.pk))["VehicleObstruction"]
    assert children(record) == [
        "situationRecordCreationTime",
        "situationRecordVersionTime",
        "probabilityOfOccurrence",
        "validity",
        "generalPublicComment",
        "locationReference",
        "vehicleObstructionType",
    ]
    with translation.override("de"):
        assert comment_of(record) == str(IncidentKind.BREAKDOWN.label)
    assert record.find("sit:generalPublicComment//com:value", NS).get("lang") == "de"
    location = record.find("sit:locationReference", NS)
    assert children(location) == ["pointByCoordinates"]
    assert children(record.find("sit:validity/com:validityTimeSpecification", NS)) == ["overallStartTime"]


def test_an_incident_text_and_street_are_escaped(client):
    incident = make_incident(kind=IncidentKind.HAZARD, description=AWKWARD, street_name="A & <B>\x01")
    body = client.get(URL).content
    assert official_errors(datex_schema(), body) == []
    record = records(situation(etree.fromstring(body), incident.pk))["GeneralObstruction"]
    assert comment_of(record) == AWKWARD_COMMENT
    assert texts(record, "sit:locationReference//loc:roadName") == ["A & <B>"]
    assert b"<loc:roadName>A &amp; &lt;B&gt;</loc:roadName>" in body


@pytest.mark.parametrize(
    ("street_names", "expected"),
    [
        (["Kaiserring"], ["Kaiserring"]),
        ([], []),
        (["", "  "], []),
        (["A", "B\nC", "D"], ["A", "B\nC", "D"]),
        (["A", "\n", "B"], ["A", "B"]),
        ([" A ", "B "], [" A ", "B "]),
        (["A & B", "\x1c"], ["A & B"]),
    ],
)
def test_a_roadwork_names_its_streets_but_the_blank_ones(client, stadtwerke, street_names, expected):
    work = make_roadwork(stadtwerke, street_names=street_names)
    location = records(situation(get_feed(client), work.pk))["MaintenanceWorks"].find("sit:locationReference", NS)
    assert texts(location, ".//loc:roadName") == expected
    assert (location.find("loc:supplementaryPositionalDescription", NS) is None) == (not expected)


@pytest.mark.parametrize(
    ("street_name", "expected"),
    [
        ("Kaiserring", ["Kaiserring"]),
        ("", []),
        ("   ", []),
        (" \t\u00a0", []),
        ("\tQ 7 ", ["\tQ 7 "]),
        ("A & <B>\x01", ["A & <B>"]),
    ],
)
def test_an_incident_names_its_street_unless_it_is_blank(client, street_name, expected):
    incident = make_incident(kind=IncidentKind.OBSTRUCTION, street_name=street_name, affected_line=line(KAISERRING))
    record = records(situation(get_feed(client), incident.pk))["GeneralObstruction"]
    assert texts(record, "sit:locationReference//loc:roadName") == expected


def test_situations_come_in_order_works_by_start_then_incidents_by_occurrence(client, stadtwerke):
    start = timezone.now() + timedelta(days=3)
    late = make_roadwork(stadtwerke, period=period(start + timedelta(days=2), 5))
    early = make_roadwork(stadtwerke, period=period(start, 5))
    same_start = sorted(
        [make_roadwork(stadtwerke, period=period(start + timedelta(days=1), 5)) for _ in range(3)],
        key=lambda work: work.pk,  # a tie is broken by the id, as a UUID
    )
    older = make_incident(occurred_at=timezone.now() - timedelta(hours=2))
    newer = make_incident(occurred_at=timezone.now() - timedelta(hours=1))
    ids = [element.get("id") for element in get_feed(client).iterfind("sit:situation", NS)]
    assert ids == [str(item.pk) for item in (early, *same_start, late, older, newer)]


def test_each_weekday_is_named_once_in_week_order(client, stadtwerke):
    work = make_roadwork(stadtwerke, weekdays=[6, 0, 4, 0])
    record = records(situation(get_feed(client), work.pk))["MaintenanceWorks"]
    assert texts(record, ".//com:applicableDay") == ["monday", "friday", "sunday"]


def test_separate_parts_each_carry_their_line_and_the_street_names(client, stadtwerke):
    geometry = MultiLineString([line(KAISERRING), line(NECKARAU)])
    work = make_roadwork(stadtwerke, geometry=geometry, street_names=["Kaiserring", "Neckarauer Straße"])
    location = records(situation(get_feed(client), work.pk))["MaintenanceWorks"].find("sit:locationReference", NS)
    parts = location.findall("loc:locationContainedInGroup", NS)
    assert [part.get(XSI_TYPE) for part in parts] == ["loc:SingleRoadLinearLocation"] * 2
    assert close_to(poslist(parts[0]), KAISERRING) and close_to(poslist(parts[1]), NECKARAU)
    assert [texts(part, ".//loc:roadName") for part in parts] == [["Kaiserring", "Neckarauer Straße"]] * 2


def test_a_polygon_is_its_centre_line_for_both_directions(client, stadtwerke):
    from tests.feeds.conftest import area_along

    work = make_roadwork(
        stadtwerke,
        geometry=area_along(KAISERRING),
        direction=Direction.FORWARD,
        traffic_management=TrafficManagement.LANE_CLOSURE,
    )
    found = records(situation(get_feed(client), work.pk))
    location = found["MaintenanceWorks"].find("sit:locationReference", NS)
    assert location.get(XSI_TYPE) == "loc:SingleRoadLinearLocation"
    (start, end) = poslist(location)
    ends = sorted([start, end])  # a polygon has no digitising direction
    assert all(
        abs(lat - want_lat) < 2e-5 and abs(lon - want_lon) < 2e-5
        for (lat, lon), (want_lon, want_lat) in zip(ends, sorted(KAISERRING, key=lambda p: (p[1], p[0])), strict=True)
    )
    management = found["RoadOrCarriagewayOrLaneManagement"]
    assert management.findtext("sit:applicableForTrafficDirection", namespaces=NS) == "bothWays"


def test_it_writes_every_detail_of_an_accident_in_schema_order(client):
    crash = make_accident(
        AccidentCategory.KILLED,
        kind=AccidentKind.ONCOMING,
        type_=AccidentType.TURNING,
        involves_car=True,
        involves_bicycle=True,
        involves_pedestrian=True,
        involves_motorcycle=True,
        involves_goods_vehicle=True,
        involves_other=True,
    )
    record = records(situation(get_feed(client), crash.pk))["Accident"]
    details = [
        (etree.QName(child).localname, child.get("_extendedValue"), "".join(child.itertext())) for child in record
    ][7:]
    assert details == [
        ("trafficConstrictionType", None, "lanesBlocked"),
        ("accidentType", None, "collision"),
        ("accidentType", None, "seriousInjuryOrFatalAccident"),
        ("accidentType", "turningAccident", "_extended"),
        ("collisionType", None, "headOnCollision"),
        ("groupOfVehiclesInvolved", None, "car"),
        ("groupOfVehiclesInvolved", None, "bicycle"),
        ("groupOfVehiclesInvolved", None, "motorcycle"),
        ("groupOfVehiclesInvolved", None, "lorry"),
        ("groupOfVehiclesInvolved", None, "other"),
        ("groupOfPeopleInvolved", None, "1dead"),
        ("groupOfPeopleInvolved", None, "2seriouslyInjured"),
        ("groupOfPeopleInvolved", None, "pedestrian"),
    ]


def test_it_writes_the_header_from_the_settings(settings):
    settings.AUMAN_FEED_PUBLISHER = "Stadt A & B <Verkehr>"
    body = datex2.build_now(now=datetime(2027, 3, 1, 6, 0, 0, 999999, tzinfo=UTC))
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in datex2.NAMESPACES.items())
    assert (
        body
        == (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<d2:payload {declarations} xsi:type="sit:SituationPublication" lang="de" modelBaseVersion="3">'
            "<com:publicationTime>2027-03-01T07:00:00+01:00</com:publicationTime><com:publicationCreator>"
            "<com:country>DE</com:country>"
            "<com:nationalIdentifier>Stadt A &amp; B &lt;Verkehr&gt;</com:nationalIdentifier>"
            "</com:publicationCreator></d2:payload>\n"
        ).encode()
    )


def test_an_empty_line_has_no_place_in_the_feed(client, stadtwerke):
    # Old builds wrote "None" as its position list, which no schema takes; an empty line has nothing to show.
    empty = make_roadwork(stadtwerke, geometry=GEOSGeometry("SRID=25832;LINESTRING EMPTY"))
    shown = make_roadwork(stadtwerke)
    body = client.get(URL).content
    assert official_errors(datex_schema(), body) == []
    ids = {element.get("id") for element in etree.fromstring(body).iterfind("sit:situation", NS)}
    assert str(shown.pk) in ids and str(empty.pk) not in ids


# The SQL text helpers against the Python functions whose output the feed kept: xml.sax.saxutils.escape and
# quoteattr, and str.split() for folding whitespace.
TRICKY = [
    "",
    "plain",
    "a & b",
    "<tag>",
    'say "hi"',
    "it's",
    "both \" and '",
    "tab\there",
    "new\nline\r\n",
    "\x01\x08\x0b\x0c\x0e\x1f\x7f",
    "\ufffe\uffff\ufffd",
    "😀 emoji",
    "  lead and trail  ",
    "\u00a0nbsp\u2003em\u3000ideographic\x1cfile\x85",
]
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def sql_value(expression: str, value: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression.replace('%(v)s', '%(v)s::text')}", {"v": value})
        return cursor.fetchone()[0]


@pytest.mark.parametrize("value", TRICKY)
def test_the_sql_escapes_text_and_attributes_as_python_did(value):
    assert sql_value(datex2._escaped("%(v)s"), value) == escape(NOT_XML.sub("", value))
    assert sql_value(datex2._attribute("%(v)s"), value) == quoteattr(NOT_XML.sub("", value))


@pytest.mark.parametrize("value", [*TRICKY, "".join(TRICKY), "x" * 1025, "y " * 600, " ü" * 1100])
def test_the_sql_folds_and_clips_a_comment_as_python_did(value):
    folded = " ".join(value.split())
    if len(folded) > datex2.MULTILINGUAL_MAX:
        folded = folded[: datex2.MULTILINGUAL_MAX - 1] + "…"
    assert sql_value(datex2._folded("%(v)s"), value) == escape(NOT_XML.sub("", folded))


def test_the_whitespace_the_sql_folds_is_what_python_splits_on():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(code ORDER BY code) FROM generate_series(1, 1114111) AS code"
            f" WHERE code NOT BETWEEN 55296 AND 57343 AND chr(code) ~ '[{datex2._WHITESPACE}]'"
        )
        assert cursor.fetchone()[0] == [code for code in range(1, 0x110000) if chr(code).isspace()]
