"""The WZDx 4.2 work zone feed: valid against the official schema, public works only, cached yet never stale.

alice's Stadtwerke and erin's Telekom Bau own the works; the feed itself is read anonymously, as
navigation apps and aggregators read it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.gis.geos import LineString, MultiLineString, Point, Polygon
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date, parse_http_date
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from accounts.models import Organisation
from auman.filters import MSG_BBOX
from roadworks.models import Direction, Roadwork, RoadworkStatus, TrafficManagement, WorkKind
from tests.conftest import KAISERRING, KAISERRING_NEARBY, NECKARAU, line, local, make_roadwork, period, shared_path
from traffic.feeds import wzdx
from traffic.feeds.http import CACHE_KEY_PREFIX

pytestmark = pytest.mark.django_db

FEED_URL = "/feeds/wzdx/v4.2/workzones.geojson"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FEED_STATUSES = {RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS}


# --- Fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_feed_left_in_the_cache():
    # The test Redis database outlives each test's rolled-back rows; old bytes must not leak in.
    cache.delete_pattern(f"{CACHE_KEY_PREFIX}:*")


@pytest.fixture(scope="module")
def schemas() -> dict[str, Draft7Validator]:
    """The official schema twice: the bundled single file, and the multi-file 4.2 set resolved by $id."""
    root = shared_path("data", "schemas", "wzdx")
    bundled = json.loads((root / "bundled" / "wzdx42.schema.json").read_text())
    resources = []
    for path in [*(root / "4.2").glob("*.json"), *(root / "geojson.org").glob("*.json")]:
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7)))
    multi_file = json.loads((root / "4.2" / "WorkZoneFeed.json").read_text())
    # FormatChecker checks "email" here but not "date-time" (that needs rfc3339-validator, not installed);
    # test_it_writes_every_time_in_utc_with_a_z checks the times instead.
    return {
        "bundled": Draft7Validator(bundled, format_checker=FormatChecker()),
        "4.2": Draft7Validator(
            multi_file, registry=Registry().with_resources(resources), format_checker=FormatChecker()
        ),
    }


def schema_errors(schemas: dict[str, Draft7Validator], document: dict) -> list[str]:
    return [
        f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for name, validator in schemas.items()
        for error in validator.iter_errors(document)
    ]


def area_along(coords: list[tuple[float, float]], half_width_m: float = 4):
    """A strip polygon along a street with flat ends, as an applicant draws a site on the carriageway."""
    return line(coords).buffer_with_style(half_width_m, end_cap_style=2)


def multi_line(*parts: list[tuple[float, float]]):
    return MultiLineString([LineString(part, srid=4326) for part in parts], srid=4326).transform(25832, clone=True)


def get_feed(client, **params: str):
    return client.get(FEED_URL, params)


def feed_of(client, **params: str) -> dict:
    response = get_feed(client, **params)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def by_id(document: dict) -> dict[str, dict]:
    return {feature["id"]: feature for feature in document["features"]}


def work_ids(document: dict) -> set[str]:
    """The works in a feed: their first road event keeps the work's UUID (version 4); further events of the work
    (the other direction, separate parts, detours) have UUIDv5s derived from it."""
    return {feature["id"] for feature in document["features"] if uuid.UUID(feature["id"]).version == 4}


def mannheim_bounds() -> tuple[float, float, float, float]:
    data = json.loads(Path(settings.AUMAN_SERVICE_AREA_FILE).read_text())
    xs: list[float] = []
    ys: list[float] = []

    def walk(coords: Any) -> None:
        if isinstance(coords[0], int | float):
            xs.append(coords[0])
            ys.append(coords[1])
        else:
            for inner in coords:
                walk(inner)

    for item in data["features"]:
        walk(item["geometry"]["coordinates"])
    return min(xs), min(ys), max(xs), max(ys)


def metres_between(a: list[float], b: tuple[float, float]) -> float:
    return Point(*a, srid=4326).transform(25832, clone=True).distance(Point(*b, srid=4326).transform(25832, clone=True))


@pytest.fixture
def mixed_works(stadtwerke, telekom) -> dict[str, Roadwork]:
    """One published work for every kind of traffic management, and the awkward geometries."""
    works = {
        tm.value: make_roadwork(stadtwerke, traffic_management=tm, title=f"Arbeiten {tm.label}")
        for tm in TrafficManagement
    }
    works["area"] = make_roadwork(
        telekom,
        title="Baustelleneinrichtung",
        geometry=area_along(KAISERRING),
        status=RoadworkStatus.IN_PROGRESS,
        work_kind=WorkKind.BUILDING_SITE,
    )
    works["two_streets"] = make_roadwork(telekom, geometry=multi_line(KAISERRING, NECKARAU), street_names=["A", "B"])
    works["backward"] = make_roadwork(stadtwerke, direction=Direction.BACKWARD, work_kind=WorkKind.WATER)
    works["limits"] = make_roadwork(
        stadtwerke,
        max_width_m=Decimal("2.55"),
        max_height_m=Decimal("3.80"),
        max_weight_t=Decimal("7.50"),
        speed_limit_kmh=30,
        description="Fahrbahnverengung, Tempo 30",
    )
    works["nameless"] = make_roadwork(stadtwerke, street_names=[], title="Hausanschluss Wasser")
    return works


# --- The document ---------------------------------------------------------------------------------


def test_it_publishes_a_feed_that_validates_against_the_official_wzdx_42_schema(client, schemas, mixed_works):
    document = feed_of(client)
    assert schema_errors(schemas, document) == []
    assert document["feed_info"]["version"] == "4.2"
    assert work_ids(document) == {str(work.pk) for work in mixed_works.values()}
    # one road event per direction of travel: "area" (a polygon) and "backward" have one, the rest two each,
    # and "two_streets" two more for its second, separate street
    assert len(document["features"]) == 2 * len(mixed_works) - 2 + 2


def test_it_publishes_a_valid_feed_when_nothing_is_on_the_road(client, schemas):
    document = feed_of(client)
    assert document["features"] == []
    assert schema_errors(schemas, document) == []


def test_the_schema_check_itself_accepts_the_official_examples_and_rejects_what_wzdx_forbids(schemas):
    for example in sorted(shared_path("data", "examples", "wzdx").glob("*.geojson")):
        assert schema_errors(schemas, json.loads(example.read_text())) == [], example.name
    example = shared_path("data", "examples", "wzdx", "scenario1_simple_linestring_example.geojson").read_text()
    multi_line_geometry, unknown_impact = json.loads(example), json.loads(example)
    # WZDx 4.2 road events are LineStrings (or MultiPoints): the reason the feed splits multi-part works
    multi_line_geometry["features"][0]["geometry"] = {
        "type": "MultiLineString",
        "coordinates": [[[8.4, 49.4], [8.5, 49.5]]],
    }
    unknown_impact["features"][0]["properties"]["vehicle_impact"] = "lane-closure"
    for validator in schemas.values():
        assert not validator.is_valid(multi_line_geometry)
        assert not validator.is_valid(unknown_impact)


def test_it_uses_the_roadwork_uuid_as_the_road_event_id(client, mixed_works):
    ids = set(by_id(feed_of(client)))
    assert {str(work.pk) for work in mixed_works.values()} <= ids


@pytest.mark.parametrize(
    ("traffic_management", "vehicle_impact"),
    [
        (TrafficManagement.FULL_CLOSURE, "all-lanes-closed"),
        (TrafficManagement.LANE_CLOSURE, "some-lanes-closed"),
        (TrafficManagement.ALTERNATING_ONE_WAY, "alternating-one-way"),
        (TrafficManagement.ONE_WAY, "some-lanes-closed"),
        (TrafficManagement.FOOTWAY_CLOSURE, "all-lanes-open"),
        (TrafficManagement.CYCLE_LANE_CLOSURE, "all-lanes-open"),
        (TrafficManagement.NO_CARRIAGEWAY_INCURSION, "all-lanes-open"),
    ],
)
def test_it_maps_traffic_management_to_the_wzdx_vehicle_impact(client, stadtwerke, traffic_management, vehicle_impact):
    work = make_roadwork(stadtwerke, traffic_management=traffic_management)
    assert by_id(feed_of(client))[str(work.pk)]["properties"]["vehicle_impact"] == vehicle_impact


def test_every_traffic_management_value_has_a_vehicle_impact():
    assert set(wzdx.VEHICLE_IMPACT) == set(TrafficManagement)


def test_it_publishes_only_approved_and_running_works(client, stadtwerke):
    works = {status: make_roadwork(stadtwerke, status=status) for status in RoadworkStatus}
    published = work_ids(feed_of(client))
    assert published == {str(works[status].pk) for status in FEED_STATUSES}
    for status in (RoadworkStatus.DRAFT, RoadworkStatus.SUBMITTED, RoadworkStatus.REFUSED):
        assert str(works[status].pk) not in published


def test_it_keeps_works_for_a_day_after_their_end_and_then_drops_them(client, stadtwerke):
    now = timezone.now()
    just_ended = make_roadwork(stadtwerke, period=period(now - timedelta(days=5, hours=2), 5))
    long_ended = make_roadwork(stadtwerke, period=period(now - timedelta(days=7), 5))
    running = make_roadwork(stadtwerke, period=period(now - timedelta(days=1), 5), status=RoadworkStatus.IN_PROGRESS)
    published = work_ids(feed_of(client))
    assert published == {str(just_ended.pk), str(running.pk)}
    assert str(long_ended.pk) not in published


def test_every_road_event_names_a_data_source_of_the_feed(client, mixed_works, stadtwerke, telekom):
    stadtwerke.email = "baustellen@stadtwerke.example"
    stadtwerke.save()
    document = feed_of(client)
    sources = {source["data_source_id"]: source for source in document["feed_info"]["data_sources"]}
    assert {feature["properties"]["core_details"]["data_source_id"] for feature in document["features"]} == set(sources)
    assert sources[str(stadtwerke.pk)]["organization_name"] == "Stadtwerke Mannheim"
    assert sources[str(stadtwerke.pk)]["contact_email"] == "baustellen@stadtwerke.example"
    assert sources[str(telekom.pk)]["organization_name"] == "Telekom Bau"
    assert "contact_email" not in sources[str(telekom.pk)]


def test_it_writes_every_time_in_utc_with_a_z(client, stadtwerke):
    work = make_roadwork(stadtwerke, period=period(local(2027, 3, 1, 7), 10))  # 07:00 in Mannheim, winter time
    document = feed_of(client)
    properties = by_id(document)[str(work.pk)]["properties"]
    assert properties["start_date"] == "2027-03-01T06:00:00Z"
    assert properties["end_date"] == "2027-03-11T06:00:00Z"
    times = [
        document["feed_info"]["update_date"],
        *(source["update_date"] for source in document["feed_info"]["data_sources"]),
        properties["core_details"]["creation_date"],
        properties["core_details"]["update_date"],
    ]
    assert all(RFC3339_UTC.match(moment) for moment in times), times


def test_it_writes_lon_lat_coordinates_that_lie_in_mannheim(client, mixed_works):
    xmin, ymin, xmax, ymax = mannheim_bounds()
    for feature in feed_of(client)["features"]:
        assert feature["geometry"]["type"] == "LineString"
        for lon, lat in feature["geometry"]["coordinates"]:
            assert xmin <= lon <= xmax and ymin <= lat <= ymax, feature["id"]


def test_it_keeps_a_line_in_the_digitising_direction_and_reverses_it_for_works_against_it(client, stadtwerke):
    forward = make_roadwork(stadtwerke, direction=Direction.FORWARD)
    backward = make_roadwork(stadtwerke, direction=Direction.BACKWARD)
    both = make_roadwork(stadtwerke, direction=Direction.BOTH)
    events = by_id(feed_of(client))
    assert events[str(forward.pk)]["geometry"]["coordinates"] == [list(c) for c in KAISERRING]
    assert events[str(backward.pk)]["geometry"]["coordinates"] == [list(c) for c in reversed(KAISERRING)]
    # the coordinates give the direction of travel; both sides: one road event each way
    assert events[str(forward.pk)]["properties"]["core_details"]["direction"] == "undefined"
    assert events[str(backward.pk)]["properties"]["core_details"]["direction"] == "undefined"
    other_way = events[str(uuid.uuid5(both.pk, "part-1-backward"))]
    assert events[str(both.pk)]["geometry"]["coordinates"] == [list(c) for c in KAISERRING]
    assert other_way["geometry"]["coordinates"] == [list(c) for c in reversed(KAISERRING)]
    assert other_way["properties"]["core_details"]["direction"] == "undefined"


def test_it_turns_a_polygon_into_the_centre_line_along_the_street(client, telekom):
    work = make_roadwork(telekom, geometry=area_along(KAISERRING), direction=Direction.FORWARD)
    event = by_id(feed_of(client))[str(work.pk)]
    start, end = event["geometry"]["coordinates"]
    ends = sorted([metres_between(start, KAISERRING[0]), metres_between(end, KAISERRING[0])])
    # the centre line runs from one end of the strip to the other, within a metre of the street's axis
    assert ends[0] < 1
    assert min(metres_between(start, KAISERRING[1]), metres_between(end, KAISERRING[1])) < 1
    assert event["properties"]["core_details"]["direction"] == "unknown"


def test_it_merges_touching_strokes_into_one_line(client, stadtwerke):
    halfway = (8.4751, 49.4846)
    work = make_roadwork(
        stadtwerke,
        geometry=multi_line([KAISERRING[0], halfway], [halfway, KAISERRING[1]]),
        direction=Direction.FORWARD,
    )
    events = by_id(feed_of(client))
    assert list(events) == [str(work.pk)]
    assert events[str(work.pk)]["geometry"]["coordinates"] == [list(KAISERRING[0]), list(halfway), list(KAISERRING[1])]


def test_it_splits_separate_parts_into_road_events_that_name_each_other(client, telekom):
    work = make_roadwork(telekom, geometry=multi_line(KAISERRING, NECKARAU), direction=Direction.FORWARD)
    events = feed_of(client)["features"]
    assert len(events) == 2
    first, second = events
    assert first["id"] == str(work.pk) and second["id"] != first["id"]
    assert first["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-work-zone", "id": second["id"]}
    ]
    assert second["properties"]["core_details"]["related_road_events"] == [
        {"type": "related-work-zone", "id": first["id"]}
    ]
    assert second["geometry"]["coordinates"] == [list(c) for c in NECKARAU]
    # the derived id is stable from one build to the next
    cache.delete_pattern(f"{CACHE_KEY_PREFIX}:*")
    assert feed_of(client)["features"][1]["id"] == second["id"]


def test_it_gives_limits_in_wzdx_units_and_the_reduced_speed(client, mixed_works):
    properties = by_id(feed_of(client))[str(mixed_works["limits"].pk)]["properties"]
    assert properties["restrictions"] == [
        {"type": "reduced-width", "value": 255, "unit": "centimeters"},
        {"type": "reduced-height", "value": 380, "unit": "centimeters"},
        {"type": "reduced-weight", "value": 7500, "unit": "kilograms"},
    ]
    assert properties["reduced_speed_limit_kph"] == 30
    assert properties["core_details"]["description"] == "Fahrbahnverengung, Tempo 30"
    assert "restrictions" not in by_id(feed_of(client))[str(mixed_works["nameless"].pk)]["properties"]


def test_it_names_the_road_and_falls_back_to_the_title_when_no_street_is_given(client, mixed_works):
    events = by_id(feed_of(client))
    assert events[str(mixed_works["backward"].pk)]["properties"]["core_details"]["road_names"] == ["Kaiserring"]
    assert events[str(mixed_works["nameless"].pk)]["properties"]["core_details"]["road_names"] == [
        "Hausanschluss Wasser"
    ]


def test_it_writes_umlauts_as_they_are(client, stadtwerke):
    make_roadwork(stadtwerke, street_names=["Straße am Güterbahnhof"])
    body = get_feed(client).content
    assert "Straße am Güterbahnhof".encode() in body


def test_it_gives_the_same_bytes_for_the_same_data_and_writes_the_build_time_as_update_date(stadtwerke):
    make_roadwork(stadtwerke)
    now = timezone.now()
    moment = datetime(2027, 1, 1, tzinfo=UTC)
    info = {"publisher": "Stadt Mannheim"}
    first = wzdx.workzone_document(now=now, built_at=moment, feed_info=info)
    assert wzdx.workzone_document(now=now, built_at=moment, feed_info=info) == first
    assert json.loads(first)["feed_info"]["update_date"] == "2027-01-01T00:00:00Z"


def test_it_leaves_out_a_work_without_a_line_and_stays_valid(client, schemas, stadtwerke):
    # A zero-area polygon, as a raw import could store it (the API refuses those): it has no centre line.
    e, n = line(KAISERRING).coords[0]
    flat = Polygon(((e, n), (e + 10, n + 10), (e + 20, n + 20), (e, n)), srid=25832)
    make_roadwork(stadtwerke, geometry=flat, work_kind=WorkKind.OTHER)
    document = feed_of(client)
    assert document["features"] == []
    assert schema_errors(schemas, document) == []


# --- HTTP: headers, conditional requests, caching ---------------------------------------------------


def test_it_is_served_at_its_named_url():
    assert reverse("feeds:wzdx-workzones") == FEED_URL


def test_it_sends_content_type_etag_last_modified_cache_control_and_cors(client, stadtwerke, settings):
    settings.AUMAN_FEED_MAX_AGE = 123
    make_roadwork(stadtwerke)
    response = get_feed(client)
    assert response["Content-Type"] == "application/geo+json"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response["ETag"])
    assert abs(parse_http_date(response["Last-Modified"]) - timezone.now().timestamp()) < 5
    assert "public" in response["Cache-Control"] and "max-age=123" in response["Cache-Control"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in response["Access-Control-Expose-Headers"]
    assert json.loads(response.content)["feed_info"]["update_frequency"] == 123


def test_it_answers_a_head_request_with_the_same_headers(client, stadtwerke):
    make_roadwork(stadtwerke)
    etag = get_feed(client)["ETag"]
    response = client.head(FEED_URL)
    assert response.status_code == 200
    assert response["ETag"] == etag


def test_it_answers_if_none_match_with_304_and_an_empty_body(client, stadtwerke):
    make_roadwork(stadtwerke)
    first = get_feed(client)
    response = client.get(FEED_URL, headers={"If-None-Match": first["ETag"]})
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == first["ETag"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "max-age" in response["Cache-Control"]
    assert client.get(FEED_URL, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_it_answers_if_modified_since_with_304_until_something_changes(client, stadtwerke):
    work = make_roadwork(stadtwerke)
    last_modified = get_feed(client)["Last-Modified"]
    assert client.get(FEED_URL, headers={"If-Modified-Since": last_modified}).status_code == 304
    work.delete()
    # HTTP dates have whole seconds: a client that saw the old feed in this same second would be
    # answered 304 by any server; ask as of a second earlier to test the logic, not the clock.
    earlier = http_date(parse_http_date(last_modified) - 1)
    assert client.get(FEED_URL, headers={"If-Modified-Since": earlier}).status_code == 200


def test_it_serves_an_unchanged_feed_from_the_cache_with_one_small_query(client, stadtwerke, django_assert_num_queries):
    make_roadwork(stadtwerke)
    first = get_feed(client)
    with django_assert_num_queries(1):  # the fingerprint; no rows are read and nothing is built
        second = get_feed(client)
    assert second.content == first.content and second["ETag"] == first["ETag"]


def test_a_change_to_a_work_shows_at_once_with_a_new_etag(client, stadtwerke):
    work = make_roadwork(stadtwerke, title="Leitungsbau")
    first = get_feed(client)
    work.title = "Leitungsbau, verlängert"
    work.save()
    second = get_feed(client)
    assert second["ETag"] != first["ETag"]
    assert by_id(json.loads(second.content))[str(work.pk)]["properties"]["core_details"]["name"] == (
        "Leitungsbau, verlängert"
    )


def test_a_deleted_work_leaves_the_feed_at_once(client, stadtwerke):
    keep, gone = make_roadwork(stadtwerke), make_roadwork(stadtwerke)
    assert work_ids(feed_of(client)) == {str(keep.pk), str(gone.pk)}
    gone.delete()
    assert work_ids(feed_of(client)) == {str(keep.pk)}


@pytest.mark.django_db(transaction=True)
def test_it_notices_writes_that_leave_updated_at_alone(client):
    # Bulk updates (a status job, a data fix in the shell) skip auto_now; committed for real here,
    # since the fingerprint tells transactions apart and one test transaction would hide that.
    org = Organisation.objects.create(name="Stadtwerke Mannheim", kind=Organisation.Kind.UTILITY)
    work, other = make_roadwork(org, title="Alt"), make_roadwork(org)
    get_feed(client)

    Roadwork.objects.filter(pk=work.pk).update(title="Neu")
    assert by_id(feed_of(client))[str(work.pk)]["properties"]["core_details"]["name"] == "Neu"

    Organisation.objects.filter(pk=org.pk).update(name="MVV Netze")
    assert feed_of(client)["feed_info"]["data_sources"][0]["organization_name"] == "MVV Netze"

    Roadwork.objects.filter(pk=work.pk).update(status=RoadworkStatus.CANCELLED)
    assert work_ids(feed_of(client)) == {str(other.pk)}


# --- Filters ----------------------------------------------------------------------------------------


def test_it_filters_by_bbox(client, stadtwerke):
    centre = make_roadwork(stadtwerke)
    south = make_roadwork(stadtwerke, geometry=line(NECKARAU))
    assert work_ids(feed_of(client, bbox="8.48,49.45,8.49,49.46")) == {str(south.pk)}
    assert work_ids(feed_of(client, bbox="8.47,49.48,8.48,49.49")) == {str(centre.pk)}
    assert work_ids(feed_of(client)) == {str(centre.pk), str(south.pk)}


def test_it_filters_by_updated_since(client, stadtwerke):
    old, new = make_roadwork(stadtwerke), make_roadwork(stadtwerke, geometry=line(KAISERRING_NEARBY))
    Roadwork.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert work_ids(feed_of(client, updated_since=since)) == {str(new.pk)}


@pytest.mark.parametrize("bbox", ["", "8.4,49.4,8.5", "a,b,c,d", "8.5,49.5,8.4,49.4", "8.4,49.4,8.5,95"])
def test_it_answers_a_bad_bbox_with_400_and_a_message(client, bbox):
    response = get_feed(client, bbox=bbox)
    assert response.status_code == 400
    assert response.json() == {"bbox": [str(MSG_BBOX)]}
    assert response["Access-Control-Allow-Origin"] == "*"


def test_it_answers_a_bad_updated_since_with_400_and_a_message(client):
    response = get_feed(client, updated_since="gestern")
    assert response.status_code == 400
    assert list(response.json()) == ["updated_since"] and response.json()["updated_since"][0]


def test_it_refuses_writes(client):
    assert client.post(FEED_URL).status_code == 405
