"""Each format parsed from files: the official examples in ../shared and feeds the tests write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from interop.parsers import (
    MSG_DUPLICATE_ID,
    MSG_NO_GEOMETRY,
    MSG_NO_ID,
    MSG_UNSUPPORTED_RECORD,
    FeedError,
    autobahn,
    datex2,
    waze_cifs,
    wzdx,
)
from tests.conftest import SHARED, shared_path
from tests.interop.conftest import wzdx_feature, wzdx_feed

BERLIN = ZoneInfo("Europe/Berlin")
WZDX_EXAMPLES = sorted((SHARED / "data/examples/wzdx").glob("*.geojson"))


def reasons(result) -> dict[str, str]:
    return {s.record: s.reason for s in result.skipped}


# --- WZDx ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", WZDX_EXAMPLES, ids=lambda p: p.name)
def test_it_reads_every_official_wzdx_example(path):
    feed = json.loads(path.read_bytes())
    result = wzdx.parse(path.read_bytes())
    assert [item.source_item_id for item in result.items] == [f["id"] for f in feed["features"]]
    assert result.skipped == []
    for item, feature in zip(result.items, feed["features"], strict=True):
        assert item.geometry["type"] == feature["geometry"]["type"]
        assert item.start is not None and item.end is not None and item.start < item.end
        assert item.kind in ("roadworks", "other")


def test_it_reads_a_work_zones_name_times_and_impact():
    result = wzdx.parse(
        shared_path("data/examples/wzdx/scenario6_multi_lane_closure_linestring_example.geojson").read_bytes()
    )
    (item,) = result.items
    assert item.kind == "roadworks" and item.restriction == "lane_closure"
    assert item.title == "I-80 westbound"
    assert item.start == datetime(2010, 1, 2, 8, tzinfo=UTC)
    assert item.properties["vehicle_impact"] == "some-lanes-closed"


def test_it_reads_the_real_wzdx_feeds_of_hawaii_and_washington():
    hidot = wzdx.parse(shared_path("data/examples/real/wzdx_hidot.json").read_bytes())
    assert [i.title for i in hidot.items] == ["Dillingham Blvd Work Zone 1", "Dillingham Blvd Work Zone 2"]
    # WSDOT sends 4.2 with leftovers of 3.x (road_event_feed_info, beginning_accuracy): read all the same.
    wsdot = wzdx.parse(shared_path("data/examples/real/wzdx_wsdot.json").read_bytes())
    assert len(wsdot.items) == 2 and wsdot.skipped == []
    assert all(i.geometry["type"] == "LineString" for i in wsdot.items)


def test_it_reads_a_wzdx_3_feed_with_flat_properties():
    feed = {
        "road_event_feed_info": {"publisher": "Alt", "version": "3.1", "update_date": "2027-01-01T00:00:00Z"},
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "road_event_id": "RE-7",
                    "event_type": "work-zone",
                    "road_name": "B 36",
                    "direction": "southbound",
                    "start_date": "2027-03-01T06:00:00Z",
                    "end_date": "2027-03-02T06:00:00Z",
                    "vehicle_impact": "all-lanes-closed",
                    "description": "Vollsperrung",
                },
                "geometry": {"type": "LineString", "coordinates": [[8.47, 49.48], [8.48, 49.49]]},
            }
        ],
    }
    (item,) = wzdx.parse(json.dumps(feed).encode()).items
    assert (item.source_item_id, item.title, item.restriction) == ("RE-7", "B 36 southbound", "closure")
    assert item.description == "Vollsperrung"


def test_it_skips_wzdx_features_without_id_or_geometry_and_says_why():
    no_geometry = wzdx_feature("B")
    no_geometry["geometry"] = {"type": "LineString", "coordinates": [[8.47, 95.0], [8.48, 49.49]]}
    no_id = wzdx_feature("")
    unknown = wzdx_feature("D")
    unknown["properties"]["core_details"]["event_type"] = "parade"
    result = wzdx.parse(wzdx_feed(wzdx_feature("A"), no_geometry, no_id, unknown))
    assert [i.source_item_id for i in result.items] == ["A"]
    assert reasons(result) == {
        "B": str(MSG_NO_GEOMETRY),
        "features[2]": str(MSG_NO_ID),
        "D": str(MSG_UNSUPPORTED_RECORD).format(kind="parade"),
    }


def test_it_reports_an_id_twice_and_keeps_the_first():
    result = wzdx.parse(wzdx_feed(wzdx_feature("A", name="first"), wzdx_feature("A", name="second")))
    deduplicated = result.deduplicated()
    assert [i.title for i in deduplicated.items] == ["first"]
    assert reasons(deduplicated) == {"A": str(MSG_DUPLICATE_ID)}


@pytest.mark.parametrize("body", [b"<xml/>", b'{"type": "FeatureCollection"}', b"[1, 2]", b"\xff\xfe"])
def test_it_refuses_a_body_that_is_no_wzdx_feed(body):
    with pytest.raises(FeedError):
        wzdx.parse(body)


# --- DATEX II -------------------------------------------------------------------------------------------------------


def test_it_reads_the_german_roadworks_profile_of_baden_wuerttemberg():
    result = datex2.parse(shared_path("data/examples/real/de_bw_mdm_roadworks_situation_1487640.xml").read_bytes())
    assert result.skipped == []
    by_id = {item.source_item_id: item for item in result.items}
    assert set(by_id) == {
        "1487640-1487641-1487644-3508083",
        "1487640-1487641-1487644-3508083-sperrung",
        "1487640-1487641-1487644-3508083-gegen",
        "1487640-1487641-1487644-3508083-gegen-sperrung",
    }  # the overallSituation of the extension names the measure; it is no record of its own
    works = by_id["1487640-1487641-1487644-3508083"]
    assert works.kind == "roadworks" and works.restriction == "closure"  # capacityRemaining 0
    assert works.title == "L154 Albtalsperrung"  # the overall roadworksName (commentType2)
    assert "Sankt Blasier Straße" in works.description  # routeRecommendation comments
    # posList is latitude longitude: stored as GeoJSON lon/lat
    assert works.geometry["type"] == "LineString"
    assert works.geometry["coordinates"][0] == [8.110689, 47.606283]
    assert works.start == datetime(2015, 6, 1, tzinfo=BERLIN)
    assert works.end == datetime(2030, 12, 31, 23, 59, tzinfo=BERLIN)
    closure = by_id["1487640-1487641-1487644-3508083-sperrung"]
    assert closure.kind == "closure" and closure.restriction == "closure"
    assert closure.properties["road_number"] == "L154"


DATEX3 = b"""<?xml version="1.0" encoding="UTF-8"?>
<mc:messageContainer xmlns:mc="http://datex2.eu/schema/3/messageContainer" xmlns:sit="http://datex2.eu/schema/3/situation"
    xmlns:com="http://datex2.eu/schema/3/common" xmlns:loc="http://datex2.eu/schema/3/locationReferencing"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" modelBaseVersion="3">
  <mc:payload xsi:type="sit:SituationPublication" lang="de" modelBaseVersion="3">
    <com:publicationTime>2027-02-01T08:00:00+01:00</com:publicationTime>
    <sit:situation id="S1">
      <sit:situationRecord xsi:type="sit:ConstructionWorks" id="S1-R1" version="3">
        <sit:validity>
          <com:validityStatus>definedByValidityTimeSpec</com:validityStatus>
          <com:validityTimeSpecification>
            <com:overallStartTime>2027-03-01T07:00:00+01:00</com:overallStartTime>
            <com:overallEndTime>2027-03-10T17:00:00+01:00</com:overallEndTime>
          </com:validityTimeSpecification>
        </sit:validity>
        <sit:generalPublicComment>
          <sit:comment><com:values><com:value lang="de">Kanalbau Kaiserring</com:value></com:values></sit:comment>
        </sit:generalPublicComment>
        <sit:locationReference xsi:type="loc:SingleRoadLinearLocation">
          <loc:tpegLinearLocation>
            <loc:to><loc:pointCoordinates><loc:latitude>49.4847</loc:latitude><loc:longitude>8.4752</loc:longitude></loc:pointCoordinates></loc:to>
            <loc:from><loc:pointCoordinates><loc:latitude>49.48405</loc:latitude><loc:longitude>8.47405</loc:longitude></loc:pointCoordinates></loc:from>
          </loc:tpegLinearLocation>
        </sit:locationReference>
      </sit:situationRecord>
      <sit:situationRecord xsi:type="sit:RoadOrCarriagewayOrLaneManagement" id="S1-R2" version="1">
        <!-- out of the XSD's order and with an unprefixed element: read all the same -->
        <roadOrCarriagewayOrLaneManagementType>roadClosed</roadOrCarriagewayOrLaneManagementType>
        <sit:locationReference xsi:type="loc:PointLocation">
          <loc:pointByCoordinates><loc:pointCoordinates><loc:latitude>49.4846</loc:latitude><loc:longitude>8.4750</loc:longitude></loc:pointCoordinates></loc:pointByCoordinates>
        </sit:locationReference>
      </sit:situationRecord>
      <sit:situationRecord xsi:type="sit:ConstructionWorks" version="1">
        <sit:locationReference xsi:type="loc:PointLocation"/>
      </sit:situationRecord>
      <sit:situationRecord xsi:type="sit:ConstructionWorks" id="S1-R4" version="1">
        <sit:locationReference xsi:type="loc:PointLocation"/>
      </sit:situationRecord>
      <sit:situationRecord xsi:type="sit:CarParks" id="S1-R5" version="1"/>
    </sit:situation>
  </mc:payload>
</mc:messageContainer>
"""


def test_it_reads_datex_3_and_reports_what_it_skipped():
    result = datex2.parse(DATEX3)
    by_id = {item.source_item_id: item for item in result.items}
    assert set(by_id) == {"S1-R1", "S1-R2"}
    works = by_id["S1-R1"]
    assert works.kind == "roadworks" and works.title == "ConstructionWorks"
    assert works.description == "Kanalbau Kaiserring"
    # the points of the linear location, in document order
    assert works.geometry == {"type": "LineString", "coordinates": [[8.4752, 49.4847], [8.47405, 49.48405]]}
    assert works.start == datetime(2027, 3, 1, 6, tzinfo=UTC)
    closure = by_id["S1-R2"]
    assert (closure.kind, closure.restriction) == ("closure", "closure")
    assert closure.geometry == {"type": "Point", "coordinates": [8.475, 49.4846]}
    assert reasons(result) == {
        "S1/situationRecord[2]": str(MSG_NO_ID),
        "S1-R4": str(MSG_NO_GEOMETRY),
        "S1-R5": str(MSG_UNSUPPORTED_RECORD).format(kind="CarParks"),
    }


def test_it_falls_back_to_the_display_point_where_a_pos_list_is_broken():
    body = shared_path("data/examples/real/de_bw_mdm_roadworks_situation_1487640.xml").read_bytes()
    # an odd count of numbers: no pairs of latitude and longitude
    broken = body.replace(b"<posList>47.606283 8.110689", b"<posList>47.606283 8.110689 47.1", 1)
    works = next(i for i in datex2.parse(broken).items if i.source_item_id == "1487640-1487641-1487644-3508083")
    assert works.geometry == {"type": "Point", "coordinates": [8.110688, 47.60628]}


@pytest.mark.parametrize(
    "body", [b"not xml", b"<html><body/></html>", b'<d2LogicalModel xmlns="http://datex2.eu/schema/2/2_0"/>']
)
def test_it_refuses_a_body_that_is_no_situation_publication(body):
    with pytest.raises(FeedError):
        datex2.parse(body)


def test_it_does_not_resolve_external_entities():
    body = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<d2LogicalModel><payloadPublication><situation id="1"><situationRecord id="r" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="MaintenanceWorks">'
        b"<generalPublicComment><comment><values><value>&x;</value></values></comment></generalPublicComment>"
        b"<groupOfLocations><locationForDisplay><latitude>49.48</latitude><longitude>8.47</longitude>"
        b"</locationForDisplay></groupOfLocations></situationRecord></situation></payloadPublication></d2LogicalModel>"
    )
    (item,) = datex2.parse(body).items
    assert "root:" not in item.description


# --- Waze CIFS ------------------------------------------------------------------------------------------------------

CIFS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<incidents xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <incident id="MA-1">
    <creationtime>2027-02-01T08:00:00+01:00</creationtime>
    <type>ROAD_CLOSED</type>
    <subtype>ROAD_CLOSED_CONSTRUCTION</subtype>
    <description>Vollsperrung wegen Kanalbau</description>
    <location>
      <street>Kaiserring</street>
      <polyline>49.48405 8.47405 49.4847 8.4752</polyline>
      <direction>BOTH_DIRECTIONS</direction>
    </location>
    <starttime>2027-03-01T07:00:00+01:00</starttime>
    <endtime>2027-03-10T17:00:00+01:00</endtime>
  </incident>
  <incident id="MA-2"><type>CONSTRUCTION</type><polyline>49.48405 8.47405</polyline><street>Ring</street></incident>
  <incident id="MA-3"><type>PARADE</type><polyline>49.48405 8.47405 49.4847 8.4752</polyline></incident>
  <incident id="MA-4"><type>HAZARD</type><polyline>49.48405</polyline></incident>
</incidents>
"""


def test_it_reads_waze_cifs_xml():
    result = waze_cifs.parse(CIFS_XML)
    closed, works = result.items
    assert (closed.source_item_id, closed.kind, closed.restriction) == ("MA-1", "closure", "closure")
    assert closed.title == "Kaiserring" and closed.description == "Vollsperrung wegen Kanalbau"
    assert closed.geometry == {"type": "LineString", "coordinates": [[8.47405, 49.48405], [8.4752, 49.4847]]}
    assert closed.start == datetime(2027, 3, 1, 6, tzinfo=UTC)
    assert closed.properties["direction"] == "BOTH_DIRECTIONS"
    assert works.geometry == {"type": "Point", "coordinates": [8.47405, 49.48405]}
    assert reasons(result) == {
        "MA-3": str(MSG_UNSUPPORTED_RECORD).format(kind="PARADE"),
        "MA-4": str(MSG_NO_GEOMETRY),
    }


def test_it_reads_waze_cifs_json():
    body = {
        "incidents": [
            {
                "id": "J-1",
                "type": "CONSTRUCTION",
                "subtype": "ROAD_CLOSED_CONSTRUCTION",
                "polyline": "49.48405 8.47405 49.4847 8.4752",
                "street": "Kaiserring",
                "starttime": "2027-03-01T07:00:00+01:00",
                "endtime": "2027-03-10T17:00:00+01:00",
                "description": "Fahrbahnerneuerung",
            },
            {"type": "ACCIDENT", "polyline": "49.48 8.47"},
        ]
    }
    result = waze_cifs.parse(json.dumps(body).encode())
    (item,) = result.items
    assert (item.kind, item.restriction, item.title) == ("roadworks", "closure", "Kaiserring")
    assert reasons(result) == {"incidents[1]": str(MSG_NO_ID)}


@pytest.mark.parametrize("body", [b"<feed/>", b"{broken", b'{"incidents": 3}'])
def test_it_refuses_a_body_that_is_no_cifs_feed(body):
    with pytest.raises(FeedError):
        waze_cifs.parse(body)


# --- Autobahn GmbH API ----------------------------------------------------------------------------------------------


def test_it_reads_the_autobahn_apis_roadworks():
    body = shared_path("data/examples/real/autobahn_a1_roadworks.json").read_bytes()
    answer = json.loads(body)
    result = autobahn.parse(body)
    assert result.skipped == []
    assert [i.source_item_id for i in result.items] == [r["identifier"] for r in answer["roadworks"]]
    first = result.items[0]
    assert first.kind == "roadworks" and first.title == "A1 | Quierschied - Saarbrücken"
    assert first.start == datetime(2026, 5, 4, tzinfo=BERLIN)
    assert first.end == datetime(2026, 8, 31, tzinfo=BERLIN)  # "Ende: 31.08.26 um 00:00 Uhr"
    assert first.geometry["type"] == "LineString" and first.geometry["coordinates"][0] == [7.014527129, 49.346849708]
    assert first.restriction == "lane_closure"  # a lane symbol CLOSED


def test_it_reads_warnings_and_closures_and_keeps_an_item_on_two_roads_once():
    closure = {
        "identifier": "CL-1",
        "display_type": "CLOSURE",
        "title": "A6 | AS Mannheim-Sandhofen",
        "coordinate": {"lat": "49.5400", "long": "8.4700"},
        "description": ["Beginn: 01.03.2027 07:00", "Ende: 02.03.2027 17:00", "Vollsperrung"],
        "isBlocked": "true",
        "startTimestamp": "2027-03-01T07:00:00.000+0100",
    }
    warning = {"identifier": "W-1", "display_type": "WARNING", "title": "Stau", "point": "8.47,49.54"}
    body = json.dumps({"roadworks": [], "warning": [warning], "closure": [closure, closure]}).encode()
    result = autobahn.parse(body)
    assert [(i.source_item_id, i.kind) for i in result.items] == [("CL-1", "closure")]
    cl = result.items[0]
    assert cl.restriction == "closure" and cl.geometry == {"type": "Point", "coordinates": [8.47, 49.54]}
    assert cl.start == datetime(2027, 3, 1, 6, tzinfo=UTC)
    assert cl.end == datetime(2027, 3, 2, 17, tzinfo=BERLIN)
    assert reasons(result) == {"W-1": str(MSG_NO_GEOMETRY)}  # no geometry and no coordinate object


def test_it_refuses_what_is_no_autobahn_answer():
    with pytest.raises(FeedError):
        autobahn.parse(b'{"roads": ["A1"]}')
