"""The map's GeoJSON endpoint, against real PostGIS: who sees what, where, and in which shape."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auman.filters import MSG_BBOX, parse_bbox
from maps.selectors import MAP_LAYERS, map_features, map_layers_for
from maps.views import MSG_LAYERS
from roadworks.models import IMPACT_BY_TRAFFIC_MANAGEMENT, RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, NECKARAU, features_of, line, make_incident, make_roadwork, period
from tests.maps.factories import NECKARAU_JUNCTION, make_black_spot
from traffic.blackspot_selectors import black_spots_geojson
from traffic.models import AccidentType, IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db

URL = "/map/features.geojson"
# Both test streets: Kaiserring in the centre and Neckarau about 4 km south.
CITY_BBOX = "8.40,49.40,8.60,49.55"
KAISERRING_BBOX = "8.470,49.482,8.480,49.488"


def running() -> object:
    """A period that started yesterday and ends in nine days."""
    return period(timezone.now() - timedelta(days=1), 10)


def upcoming() -> object:
    return period(timezone.now() + timedelta(days=5), 10)


def ids(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {f["properties"]["id"] for f in features_of(response)}


def by_id(response) -> dict[str, dict]:
    assert response.status_code == 200, response.content
    return {f["properties"]["id"]: f for f in features_of(response)}


@pytest.fixture
def scene(stadtwerke, telekom):
    """One roadwork per status, all running now, plus incidents in every status."""
    works = {
        status: make_roadwork(stadtwerke, status=status, period=running(), title=f"Work {status}")
        for status in RoadworkStatus
    }
    works["erin_submitted"] = make_roadwork(telekom, status=RoadworkStatus.SUBMITTED, period=running())
    incidents = {status: make_incident(status=status) for status in IncidentStatus}
    # Cleared and cancelled incidents carry a clearance time, as the police app records it.
    for status in (IncidentStatus.CLEARED, IncidentStatus.CANCELLED):
        incidents[status].cleared_at = timezone.now()
        incidents[status].save()
    return works, incidents


def keys(objects: dict, *names) -> set[str]:
    return {str(objects[name].pk) for name in names}


def test_anonymous_users_see_approved_and_running_works_and_active_incidents(client, scene):
    works, incidents = scene
    expected = keys(works, RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS) | keys(
        incidents, IncidentStatus.REPORTED, IncidentStatus.CONFIRMED
    )
    assert ids(client.get(URL, {"bbox": CITY_BBOX})) == expected


def test_a_user_without_role_sees_what_the_public_sees(client, dave, scene):
    works, incidents = scene
    client.force_login(dave)
    expected = keys(works, RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS) | keys(
        incidents, IncidentStatus.REPORTED, IncidentStatus.CONFIRMED
    )
    assert ids(client.get(URL, {"bbox": CITY_BBOX})) == expected


def test_the_authority_also_sees_works_under_review_but_not_drafts_or_finished_ones(client, bob, scene):
    works, incidents = scene
    client.force_login(bob)
    expected = keys(
        works,
        RoadworkStatus.APPROVED,
        RoadworkStatus.IN_PROGRESS,
        RoadworkStatus.SUBMITTED,
        RoadworkStatus.MODIFICATION_REQUESTED,
        "erin_submitted",
    ) | keys(incidents, IncidentStatus.REPORTED, IncidentStatus.CONFIRMED)
    assert ids(client.get(URL, {"bbox": CITY_BBOX})) == expected


def test_an_applicant_sees_its_own_works_under_review_but_not_another_organisations(client, alice, scene):
    works, _incidents = scene
    client.force_login(alice)
    seen = ids(client.get(URL, {"bbox": CITY_BBOX, "layers": "roadworks"}))
    assert seen == keys(
        works,
        RoadworkStatus.APPROVED,
        RoadworkStatus.IN_PROGRESS,
        RoadworkStatus.SUBMITTED,
        RoadworkStatus.MODIFICATION_REQUESTED,
    )
    assert str(works["erin_submitted"].pk) not in seen


def test_works_that_have_ended_are_not_on_the_map(client, stadtwerke):
    ended = make_roadwork(stadtwerke, period=period(timezone.now() - timedelta(days=20), 10))
    current = make_roadwork(stadtwerke, period=running())
    assert ids(client.get(URL, {"bbox": CITY_BBOX})) == {str(current.pk)}
    assert str(ended.pk) not in ids(client.get(URL))


def test_running_works_are_active_and_future_ones_planned(client, stadtwerke):
    now_running = make_roadwork(stadtwerke, period=running())
    coming = make_roadwork(stadtwerke, period=upcoming())
    found = by_id(client.get(URL, {"bbox": CITY_BBOX}))
    assert found[str(now_running.pk)]["properties"]["phase"] == "active"
    assert found[str(coming.pk)]["properties"]["phase"] == "planned"


@pytest.mark.parametrize("traffic_management", list(TrafficManagement))
def test_the_impact_follows_the_traffic_management(client, stadtwerke, traffic_management):
    work = make_roadwork(stadtwerke, period=running(), traffic_management=traffic_management)
    props = by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(work.pk)]["properties"]
    assert props["impact"] == IMPACT_BY_TRAFFIC_MANAGEMENT[traffic_management].value
    assert props["traffic_management"] == traffic_management.value
    assert props["traffic_management_label"] == str(traffic_management.label)


def test_a_roadwork_feature_carries_what_the_popup_shows_in_wgs84(client, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        reference="BS-2027-0042",
        title="Fernwärme Kaiserring",
        street_names=["Kaiserring", "Tattersallstraße"],
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
        status=RoadworkStatus.IN_PROGRESS,
    )
    feature = by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(work.pk)]
    props = feature["properties"]
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "LineString"
    for (lon, lat), (want_lon, want_lat) in zip(feature["geometry"]["coordinates"], KAISERRING, strict=True):
        assert lon == pytest.approx(want_lon, abs=1e-6)
        assert lat == pytest.approx(want_lat, abs=1e-6)
    assert props["layer"] == "roadworks"
    assert props["reference"] == "BS-2027-0042"
    assert props["title"] == "Fernwärme Kaiserring"
    assert props["street_names"] == ["Kaiserring", "Tattersallstraße"]
    assert props["status"] == "in_progress"
    assert props["status_label"] == str(RoadworkStatus.IN_PROGRESS.label)
    assert props["impact"] == "closure"
    lower = datetime.fromisoformat(props["period"]["lower"])
    upper = datetime.fromisoformat(props["period"]["upper"])
    # ISO 8601 with an offset, and the same instants as stored.
    assert lower.utcoffset() is not None and upper.utcoffset() is not None
    assert (lower, upper) == (work.period.lower, work.period.upper)


def test_an_area_roadwork_comes_as_a_polygon(client, stadtwerke):
    area = Polygon.from_bbox((8.4740, 49.4840, 8.4750, 49.4846))
    area.srid = 4326
    work = make_roadwork(stadtwerke, period=running(), geometry=area.transform(25832, clone=True))
    feature = by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(work.pk)]
    assert feature["geometry"]["type"] == "Polygon"


def test_an_incident_feature_carries_kind_street_and_time(client):
    incident = make_incident(kind=IncidentKind.BREAKDOWN, street_name="Luisenring", lanes_blocked=1)
    feature = by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(incident.pk)]
    props = feature["properties"]
    assert feature["geometry"]["type"] == "Point"
    assert feature["geometry"]["coordinates"] == pytest.approx([8.4750, 49.4846], abs=1e-6)
    assert props["layer"] == "incidents"
    assert props["kind"] == "breakdown"
    assert props["kind_label"] == str(IncidentKind.BREAKDOWN.label)
    assert props["street_name"] == "Luisenring"
    assert props["status"] == "reported"
    assert props["lanes_blocked"] == 1
    assert datetime.fromisoformat(props["occurred_at"]) == incident.occurred_at


def test_the_bbox_keeps_only_what_lies_inside_it(client, stadtwerke):
    centre = make_roadwork(stadtwerke, period=running(), geometry=line(KAISERRING))
    south = make_roadwork(stadtwerke, period=running(), geometry=line(NECKARAU))
    accident = make_incident()
    assert ids(client.get(URL, {"bbox": KAISERRING_BBOX})) == {str(centre.pk), str(accident.pk)}
    assert ids(client.get(URL, {"bbox": "8.480,49.448,8.492,49.456"})) == {str(south.pk)}


def test_without_a_bbox_the_whole_service_area_is_returned(client, stadtwerke):
    centre = make_roadwork(stadtwerke, period=running(), geometry=line(KAISERRING))
    south = make_roadwork(stadtwerke, period=running(), geometry=line(NECKARAU))
    assert ids(client.get(URL)) == {str(centre.pk), str(south.pk)}


@pytest.mark.parametrize("bbox", ["abc", "8.4,49.4,8.6", "8.6,49.4,8.4,49.6", "8.4,49.4,200,49.6", "8.4,nan,8.6,49.6"])
def test_a_bad_bbox_is_refused_with_a_message(client, bbox):
    response = client.get(URL, {"bbox": bbox})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"bbox": [str(MSG_BBOX)]}


def test_an_unknown_layer_is_refused_with_a_message(client):
    response = client.get(URL, {"bbox": CITY_BBOX, "layers": "roadworks,unicorns"})
    assert response.status_code == 400
    assert response.json() == {"layers": [str(MSG_LAYERS).format(layers=", ".join(MAP_LAYERS))]}


def test_layers_picks_one_layer(client, stadtwerke):
    work = make_roadwork(stadtwerke, period=running())
    accident = make_incident()
    assert ids(client.get(URL, {"bbox": CITY_BBOX, "layers": "roadworks"})) == {str(work.pk)}
    assert ids(client.get(URL, {"bbox": CITY_BBOX, "layers": "incidents"})) == {str(accident.pk)}


def test_markup_in_texts_comes_back_as_plain_json_text(client, stadtwerke):
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    work = make_roadwork(stadtwerke, period=running(), title=title, street_names=["<b>Kaiserring</b>"])
    accident = make_incident(street_name="</script><svg onload=alert(1)>")
    response = client.get(URL, {"bbox": CITY_BBOX})
    found = by_id(response)
    # Stored and returned verbatim: the JSON is data, and the map puts it into the page as text only.
    assert found[str(work.pk)]["properties"]["title"] == title
    assert found[str(work.pk)]["properties"]["street_names"] == ["<b>Kaiserring</b>"]
    assert found[str(accident.pk)]["properties"]["street_name"] == "</script><svg onload=alert(1)>"
    assert response["Content-Type"] == "application/geo+json"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_answer_is_geojson_with_an_etag_and_a_304_when_unchanged(client, stadtwerke):
    make_roadwork(stadtwerke, period=running())
    first = client.get(URL, {"bbox": CITY_BBOX})
    assert first.status_code == 200
    assert first["Content-Type"] == "application/geo+json"
    assert first.json()["type"] == "FeatureCollection"
    assert "private" in first["Cache-Control"]
    etag = first["ETag"]
    again = client.get(URL, {"bbox": CITY_BBOX}, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_a_change_gives_a_new_etag(client, stadtwerke):
    work = make_roadwork(stadtwerke, period=running())
    etag = client.get(URL, {"bbox": CITY_BBOX})["ETag"]
    work.title = "Neuer Titel"
    work.save()
    changed = client.get(URL, {"bbox": CITY_BBOX}, headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_an_empty_area_gives_an_empty_collection(client):
    response = client.get(URL, {"bbox": CITY_BBOX})
    assert response.status_code == 200
    assert response.json() == {"type": "FeatureCollection", "features": []}


def test_the_selector_needs_one_query_for_both_layers(stadtwerke):
    for _ in range(5):
        make_roadwork(stadtwerke, period=running())
        make_incident()
    with CaptureQueriesContext(connection) as queries:
        body = map_features(user=None, bbox=parse_bbox(CITY_BBOX), layers=MAP_LAYERS)
    assert len(queries) == 1
    assert body.startswith(b"{")


def test_features_come_in_a_stable_order_with_closures_drawn_last(stadtwerke):
    minor = make_roadwork(stadtwerke, period=running(), traffic_management=TrafficManagement.FOOTWAY_CLOSURE)
    closure = make_roadwork(stadtwerke, period=running(), traffic_management=TrafficManagement.FULL_CLOSURE)
    restriction = make_roadwork(stadtwerke, period=running(), traffic_management=TrafficManagement.ONE_WAY)
    accident = make_incident()
    first = map_features(user=None, bbox=None, layers=MAP_LAYERS)
    assert first == map_features(user=None, bbox=None, layers=MAP_LAYERS)
    order = [f["properties"]["id"] for f in json.loads(first)["features"]]
    assert order == [str(minor.pk), str(restriction.pk), str(closure.pk), str(accident.pk)]


# --- Incidents: the affected stretch ------------------------------------------------------------------------


def test_an_incident_carries_its_affected_stretch_as_a_second_geometry(client):
    incident = make_incident(affected_line=line(KAISERRING))
    feature = by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(incident.pk)]
    # The point stays the feature's geometry, so every reader of incidents keeps working.
    assert feature["geometry"]["type"] == "Point"
    stretch = feature["properties"]["affected_line"]
    assert stretch["type"] == "LineString"
    assert stretch["coordinates"] == [pytest.approx(list(point), abs=1e-6) for point in KAISERRING]


def test_an_incident_without_a_stretch_has_null_there(client):
    incident = make_incident()
    assert by_id(client.get(URL, {"bbox": CITY_BBOX}))[str(incident.pk)]["properties"]["affected_line"] is None


def test_an_incident_whose_stretch_reaches_into_the_view_is_in_it(client):
    # The point lies in Neckarau, 4 km south; the stretch runs up to Kaiserring.
    neckarau = Point(8.4870, 49.4525, srid=4326).transform(25832, clone=True)
    reaching = make_incident(location=neckarau, affected_line=line([(8.4870, 49.4525), (8.4750, 49.4846)]))
    elsewhere = make_incident(location=neckarau)
    assert ids(client.get(URL, {"bbox": KAISERRING_BBOX})) == {str(reaching.pk)}
    assert str(elsewhere.pk) in ids(client.get(URL, {"bbox": CITY_BBOX}))


# --- Black spots ----------------------------------------------------------------------------------------------


def black_spot_features(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return [f for f in features_of(response) if f["properties"]["layer"] == "black_spots"]


def test_the_authority_and_the_police_see_black_spots_with_what_the_popup_shows(client, bob, carol):
    spot = make_black_spot()
    for user in (bob, carol):
        client.force_login(user)
        [feature] = black_spot_features(client.get(URL, {"bbox": CITY_BBOX}))
        props = feature["properties"]
        assert feature["id"] == str(spot.pk)
        assert feature["geometry"]["type"] == "Polygon"
        lon, lat = feature["geometry"]["coordinates"][0][0]
        assert abs(lon - 8.4750) < 0.001 and abs(lat - 49.4846) < 0.001  # WGS84, around the junction
        assert props["id"] == str(spot.pk)
        assert props["rule"] == "UHS-1J"
        assert props["rule_label"]
        assert props["accident_count"] == 6
        assert props["score"] == 12
        assert props["accident_type"] == 2
        assert props["accident_type_label"] == str(AccidentType(2).label)
        assert datetime.fromisoformat(props["period"]["lower"]) == spot.period.lower
        assert datetime.fromisoformat(props["period"]["upper"]) == spot.period.upper
        assert props["list_url"] == f"/unfallkommission/#black-spot-{spot.pk}"


def test_the_link_leads_to_the_black_spots_entry_in_the_commissions_list(client, bob):
    spot = make_black_spot()
    client.force_login(bob)
    [feature] = black_spot_features(client.get(URL, {"bbox": CITY_BBOX}))
    path, anchor = feature["properties"]["list_url"].split("#")
    page = client.get(path)
    assert page.status_code == 200
    assert f'<tr id="{anchor}" data-key="{spot.key}">' in page.content.decode()


@pytest.mark.parametrize("who", ["anonymous", "alice", "dave"])
def test_the_public_applicants_and_users_without_a_role_get_no_black_spots(client, alice, dave, stadtwerke, who):
    make_black_spot()
    work = make_roadwork(stadtwerke, period=running())
    if who != "anonymous":
        client.force_login({"alice": alice, "dave": dave}[who])
    assert black_spot_features(client.get(URL, {"bbox": CITY_BBOX})) == []
    # Asked for by name, the layer is not refused (which would tell it exists here) but answered as empty,
    # and the other layers asked for come as usual.
    assert ids(client.get(URL, {"bbox": CITY_BBOX, "layers": "black_spots"})) == set()
    assert ids(client.get(URL, {"bbox": CITY_BBOX, "layers": "roadworks,black_spots"})) == {str(work.pk)}


def test_a_city_that_publishes_black_spots_shows_them_to_everyone_without_the_commission_link(client):
    spot = make_black_spot()
    with override_settings(AUMAN_BLACKSPOTS_PUBLIC=True):
        [feature] = black_spot_features(client.get(URL, {"bbox": CITY_BBOX}))
    assert feature["id"] == str(spot.pk)
    # The list is the commission's only: a link there would lead the public to a login page.
    assert feature["properties"]["list_url"] is None


def test_the_bbox_keeps_the_black_spots_whose_area_meets_it(client, bob):
    centre = make_black_spot(radius_m=30)
    south = make_black_spot(at=NECKARAU_JUNCTION)
    client.force_login(bob)

    def in_view(bbox: str) -> set[str]:
        return {f["id"] for f in black_spot_features(client.get(URL, {"bbox": bbox}))}

    assert in_view(KAISERRING_BBOX) == {str(centre.pk)}
    assert in_view("8.480,49.448,8.492,49.456") == {str(south.pk)}
    assert in_view(CITY_BBOX) == {str(centre.pk), str(south.pk)}
    # A view that holds only the edge of the area, 20 m east of the centre (0.0003° of longitude), still shows it.
    assert in_view("8.47527,49.4840,8.4760,49.4850") == {str(centre.pk)}
    assert in_view("8.47560,49.4840,8.4760,49.4850") == set()


def test_the_map_and_the_black_spot_geojson_share_one_shape(bob):
    make_black_spot()
    make_black_spot(at=NECKARAU_JUNCTION, accident_count=3, score=15, rule="UHS-3J-SP", accident_type=None)
    on_map = json.loads(map_features(user=bob, bbox=None, layers=["black_spots"]))["features"]
    alone = json.loads(black_spots_geojson(list_url="/unfallkommission/"))["features"]
    assert sorted(on_map, key=lambda f: f["id"]) == sorted(alone, key=lambda f: f["id"])


def test_black_spots_come_after_the_other_layers_in_a_stable_order(bob, stadtwerke):
    work = make_roadwork(stadtwerke, period=running())
    accident = make_incident()
    spots = sorted([make_black_spot(), make_black_spot(at=NECKARAU_JUNCTION)], key=lambda spot: spot.key)
    first = map_features(user=bob, bbox=None, layers=MAP_LAYERS)
    assert first == map_features(user=bob, bbox=None, layers=MAP_LAYERS)
    order = [f["properties"]["id"] for f in json.loads(first)["features"]]
    assert order == [str(work.pk), str(accident.pk), *(str(spot.pk) for spot in spots)]


def test_the_selector_needs_one_query_for_all_three_layers(bob, stadtwerke):
    for _ in range(3):
        make_roadwork(stadtwerke, period=running())
        make_incident(affected_line=line(KAISERRING))
    make_black_spot()
    with CaptureQueriesContext(connection) as queries:
        body = json.loads(map_features(user=bob, bbox=parse_bbox(CITY_BBOX), layers=MAP_LAYERS))
    assert len(queries) == 1
    assert [f["properties"]["layer"] for f in body["features"]].count("black_spots") == 1


def test_the_selector_leaves_out_black_spots_for_the_public_even_when_asked(stadtwerke):
    make_black_spot()
    assert map_layers_for(None) == ("roadworks", "incidents")
    assert json.loads(map_features(user=None, bbox=None, layers=["black_spots"]))["features"] == []
    with override_settings(AUMAN_BLACKSPOTS_PUBLIC=True):
        assert map_layers_for(None) == MAP_LAYERS
        assert len(json.loads(map_features(user=None, bbox=None, layers=["black_spots"]))["features"]) == 1


def map_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="auman-map-config" type="application/json">') + len(
        '<script id="auman-map-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_the_page_tells_the_map_which_layers_the_user_may_see(client, bob, alice):
    anonymous = client.get("/")
    assert map_config(anonymous)["layers"] == ["roadworks", "incidents"]
    assert 'data-layer-toggle="black_spots"' not in anonymous.content.decode()
    client.force_login(alice)
    assert map_config(client.get("/"))["layers"] == ["roadworks", "incidents"]
    client.force_login(bob)
    page = client.get("/")
    assert map_config(page)["layers"] == ["roadworks", "incidents", "black_spots"]
    assert 'data-layer-toggle="black_spots"' in page.content.decode()
