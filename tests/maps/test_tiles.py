"""Vector tiles (/tiles/<layer>/<z>/<x>/<y>.mvt) against real PostGIS: contents, visibility, filters, caching."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from maps.accident_grid import accident_grid_rebuild
from maps.services import districts_load
from maps.tiles import (
    MAX_ZOOM,
    MSG_CHOICES,
    MSG_DAY,
    MSG_DISTRICT,
    MSG_NOT_FOR_LAYER,
    MSG_TILE_XY,
    MSG_ZOOM,
    parse_tile_request,
    tile_layers_for,
    tile_sql,
    tile_url_template,
)
from roadworks.models import Roadwork, RoadworkStatus, TrafficManagement, WorkKind
from tests.conftest import BERLIN, NECKARAU, line, make_incident, make_roadwork, period
from tests.maps.mvt import decode
from traffic.models import Accident, IncidentKind, IncidentStatus

pytestmark = pytest.mark.django_db

ROADWORK_PROPERTIES = {
    "id", "title", "impact", "status", "phase", "kind_of_works", "traffic_management", "starts", "ends",
}  # fmt: skip
ACCIDENT_PROPERTIES = {"id", "category", "kind", "type", "occurred", "count"}
KAISERRING_POINT = (8.4750, 49.4846)
DAY_MESSAGE = str(MSG_DAY).format(first="2000-01-01", last="2100-12-31")


def client(user) -> Client:
    """The map's browser client: tiles, like the map page, go by the session."""
    browser = Client()
    if user is not None:
        browser.force_login(user)
    return browser


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def url(layer: str, z: int, x: int, y: int) -> str:
    return reverse("maps:tile", kwargs={"layer": layer, "z": z, "x": x, "y": y})


KAISERRING_TILE = tile_of(*KAISERRING_POINT, 15)
CITY_TILE = tile_of(*KAISERRING_POINT, 11)


def get_tile(api, user, layer: str, tile=KAISERRING_TILE, **params):
    response = client(user).get(url(layer, *tile), params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    return response


def features(api, user, layer: str, tile=KAISERRING_TILE, **params) -> list:
    layers = decode(get_tile(api, user, layer, tile, **params).content)
    assert set(layers) <= {layer}, layers.keys()
    return layers[layer].features if layers else []


def ids(api, user, layer: str, tile=KAISERRING_TILE, **params) -> set[str]:
    return {f.properties["id"] for f in features(api, user, layer, tile, **params)}


def running() -> object:
    return period(timezone.now() - timedelta(days=1), 10)


def make_accident(lon: float, lat: float, **overrides) -> Accident:
    values = {
        "location": Point(lon, lat, srid=4326).transform(25832, clone=True),
        "occurred_at": timezone.now() - timedelta(days=30),
        "category": 3,
        "kind": 5,
        "type": 2,
    }
    values.update(overrides)
    accident = Accident.objects.create(**values)
    # Written past the services, so the grid rebuild they queue is done here (low-zoom tiles read the grid).
    accident_grid_rebuild()
    return accident


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete_pattern("*")  # only this run's prefix: a benchmark may share the Redis database


# --- Contents ---------------------------------------------------------------------------------------------------


def test_it_serves_a_roadwork_with_the_contracted_properties_in_a_layer_named_like_the_url(api, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        period=running(),
        work_kind=WorkKind.WATER,
        traffic_management=TrafficManagement.FULL_CLOSURE,
        title="Wasserleitung <Kaiserring>",
    )
    layers = decode(get_tile(api, None, "roadworks").content)
    assert list(layers) == ["roadworks"]
    layer = layers["roadworks"]
    assert layer.extent == 4096 and layer.version == 2
    (feature,) = layer.features
    assert feature.type == "LineString"
    assert set(feature.properties) == ROADWORK_PROPERTIES
    assert feature.properties["id"] == str(work.id)
    assert feature.properties["title"] == "Wasserleitung <Kaiserring>"
    assert feature.properties["impact"] == "closure"
    assert feature.properties["status"] == RoadworkStatus.APPROVED
    assert feature.properties["phase"] == "active"
    assert feature.properties["kind_of_works"] == "water"
    assert feature.properties["traffic_management"] == "full_closure"
    # To the second, which is plenty for a map.
    assert datetime.fromisoformat(feature.properties["starts"]) == work.period.lower.replace(microsecond=0)
    assert datetime.fromisoformat(feature.properties["ends"]) == work.period.upper.replace(microsecond=0)
    # Kaiserring lies inside this tile, so its line has real tile coordinates.
    points = feature.geometry[0]
    assert len(points) >= 2 and all(0 <= x <= 4096 and 0 <= y <= 4096 for x, y in points)


def test_it_leaves_out_works_elsewhere_in_the_city(api, stadtwerke):
    make_roadwork(stadtwerke, period=running(), geometry=line(NECKARAU))
    assert features(api, None, "roadworks") == []
    # ...but a tile over the whole city has it.
    assert len(features(api, None, "roadworks", CITY_TILE)) == 1


def test_it_answers_tiles_far_from_the_city_empty_without_asking_the_database(api, stadtwerke):
    make_roadwork(stadtwerke, period=running())
    with CaptureQueriesContext(connection) as queries:
        response = get_tile(api, None, "roadworks", tile_of(13.4, 52.5, 12))  # Berlin
    assert response.content == b""
    assert not [q for q in queries.captured_queries if "ST_AsMVT" in q["sql"] or "maps_" in q["sql"]]


def test_it_serves_the_whole_world_at_zoom_0(api):
    # The envelope of a low-zoom tile is clipped to where data can be before it is projected to the storage SRID.
    make_incident()
    assert len(features(api, None, "incidents", (0, 0, 0))) == 1


# --- Visibility -------------------------------------------------------------------------------------------------


def test_it_shows_works_under_review_to_staff_and_their_applicant_but_not_to_the_public(
    api, stadtwerke, alice, erin, bob, carol, dave
):
    approved = make_roadwork(stadtwerke, period=running())
    submitted = make_roadwork(stadtwerke, period=running(), status=RoadworkStatus.SUBMITTED)
    draft = make_roadwork(stadtwerke, period=running(), status=RoadworkStatus.DRAFT)
    assert ids(api, None, "roadworks") == {str(approved.id)}
    assert ids(api, dave, "roadworks") == {str(approved.id)}
    assert ids(api, erin, "roadworks") == {str(approved.id)}
    assert ids(api, alice, "roadworks") == {str(approved.id), str(submitted.id)}
    assert ids(api, bob, "roadworks") == {str(approved.id), str(submitted.id)}
    assert ids(api, carol, "roadworks") == {str(approved.id), str(submitted.id)}
    assert str(draft.id) not in ids(api, bob, "roadworks")


def test_it_shows_active_incidents_to_everyone_and_cleared_ones_to_nobody(api, bob):
    active = make_incident(kind=IncidentKind.BREAKDOWN, street_name="Kaiserring")
    make_incident(status=IncidentStatus.CLEARED, cleared_at=timezone.now())
    (feature,) = features(api, None, "incidents")
    assert feature.type == "Point"
    assert feature.properties["id"] == str(active.id)
    assert feature.properties["kind"] == "breakdown"
    assert feature.properties["status"] == "reported"
    assert feature.properties["street_name"] == "Kaiserring"
    assert datetime.fromisoformat(feature.properties["occurred"]) == active.occurred_at.replace(microsecond=0)
    assert ids(api, bob, "incidents") == {str(active.id)}


def test_it_gives_accidents_to_staff_and_an_empty_tile_to_everyone_else(api, bob, carol, alice, dave):
    accident = make_accident(*KAISERRING_POINT, category=2, kind=6, type=4)
    (feature,) = features(api, bob, "accidents")
    assert set(feature.properties) == ACCIDENT_PROPERTIES
    assert feature.properties["id"] == str(accident.id)
    assert (feature.properties["category"], feature.properties["kind"], feature.properties["type"]) == (2, 6, 4)
    assert feature.properties["occurred"] == timezone.localtime(accident.occurred_at).date().isoformat()
    assert feature.properties["count"] == 1
    assert ids(api, carol, "accidents") == {str(accident.id)}
    for user in (None, dave, alice):
        assert get_tile(api, user, "accidents").content == b""


def test_it_merges_accidents_at_one_spot_into_the_most_severe_with_a_count(api, bob):
    make_accident(*KAISERRING_POINT, category=5)
    worst = make_accident(*KAISERRING_POINT, category=1)
    make_accident(*KAISERRING_POINT, category=3)
    elsewhere = make_accident(8.4790, 49.4870, category=4)
    by_id = {f.properties["id"]: f.properties for f in features(api, bob, "accidents", CITY_TILE)}
    assert set(by_id) == {str(worst.id), str(elsewhere.id)}
    assert by_id[str(worst.id)]["count"] == 3 and by_id[str(worst.id)]["category"] == 1
    assert by_id[str(elsewhere.id)]["count"] == 1


# --- Filters ----------------------------------------------------------------------------------------------------


def test_it_shows_the_works_of_the_chosen_day(api, stadtwerke, bob):
    later = timezone.localtime() + timedelta(days=20)
    approved = make_roadwork(stadtwerke, period=period(later, 3))
    submitted = make_roadwork(stadtwerke, period=period(later, 3), status=RoadworkStatus.SUBMITTED)
    day = (later + timedelta(days=1)).date().isoformat()
    assert ids(api, None, "roadworks") == set()  # today: not yet
    assert ids(api, None, "roadworks", on=day) == {str(approved.id)}
    # Planned works are included for staff, approved ones only for the public.
    assert ids(api, bob, "roadworks", on=day) == {str(approved.id), str(submitted.id)}
    phases = {f.properties["phase"] for f in features(api, bob, "roadworks", on=day)}
    assert phases == {"planned"}
    assert ids(api, None, "roadworks", on=(later + timedelta(days=10)).date().isoformat()) == set()


def test_it_counts_the_day_in_local_time(api, stadtwerke):
    # 23:30 to 23:45 Berlin time on 1 June is 21:30 to 21:45 UTC: the work belongs to 1 June, not 2 June.
    start = datetime(2027, 6, 1, 23, 30, tzinfo=BERLIN)
    work = make_roadwork(stadtwerke, period=DateTimeTZRange(start, start + timedelta(minutes=15), "[)"))
    assert ids(api, None, "roadworks", on="2027-06-01") == {str(work.id)}
    assert ids(api, None, "roadworks", on="2027-06-02") == set()


def test_it_filters_roadworks_by_kind_and_impact(api, stadtwerke):
    water = make_roadwork(stadtwerke, period=running(), work_kind=WorkKind.WATER)
    gas_closure = make_roadwork(
        stadtwerke, period=running(), work_kind=WorkKind.GAS, traffic_management=TrafficManagement.FULL_CLOSURE
    )
    minor = make_roadwork(
        stadtwerke, period=running(), work_kind=WorkKind.GAS, traffic_management=TrafficManagement.FOOTWAY_CLOSURE
    )
    assert ids(api, None, "roadworks", kind="water") == {str(water.id)}
    assert ids(api, None, "roadworks", kind="gas") == {str(gas_closure.id), str(minor.id)}
    assert ids(api, None, "roadworks", impact="closure") == {str(gas_closure.id)}
    assert ids(api, None, "roadworks", impact="restriction,minor") == {str(water.id), str(minor.id)}
    assert ids(api, None, "roadworks", kind="gas", impact="minor") == {str(minor.id)}


def test_it_filters_incidents_and_accidents_by_kind_and_accidents_by_category(api, bob):
    breakdown = make_incident(kind=IncidentKind.BREAKDOWN)
    make_incident(kind=IncidentKind.HAZARD)
    assert ids(api, None, "incidents", kind="breakdown") == {str(breakdown.id)}
    pedestrian = make_accident(*KAISERRING_POINT, kind=6, category=2)
    make_accident(8.4742, 49.4841, kind=1, category=5)
    assert ids(api, bob, "accidents", kind="6") == {str(pedestrian.id)}
    assert ids(api, bob, "accidents", category="1,2") == {str(pedestrian.id)}


def test_it_shows_accidents_of_the_years_up_to_the_chosen_day(api, bob, settings):
    settings.AUMAN_TILE_ACCIDENT_YEARS = 2
    recent = make_accident(*KAISERRING_POINT, occurred_at=datetime(2026, 5, 10, 12, tzinfo=BERLIN))
    old = make_accident(8.4742, 49.4841, occurred_at=datetime(2023, 5, 10, 12, tzinfo=BERLIN))
    assert ids(api, bob, "accidents", on="2026-06-01") == {str(recent.id)}
    assert ids(api, bob, "accidents", on="2024-06-01") == {str(old.id)}
    assert ids(api, bob, "accidents", on="2026-05-09") == set()


def test_it_filters_every_layer_by_district(api, stadtwerke, bob):
    districts_load()
    kaiserring_work = make_roadwork(stadtwerke, period=running())
    neckarau_work = make_roadwork(stadtwerke, period=running(), geometry=line(NECKARAU))
    incident = make_incident()
    accident = make_accident(*KAISERRING_POINT)
    from maps.models import District

    here = District.objects.get(geometry__contains=Point(*KAISERRING_POINT, srid=4326).transform(25832, clone=True))
    neckarau = District.objects.get(name="Neckarau")
    assert ids(api, None, "roadworks", CITY_TILE, district=here.id) == {str(kaiserring_work.id)}
    assert ids(api, None, "roadworks", CITY_TILE, district=neckarau.id) == {str(neckarau_work.id)}
    assert ids(api, None, "incidents", CITY_TILE, district=here.id) == {str(incident.id)}
    assert ids(api, None, "incidents", CITY_TILE, district=neckarau.id) == set()
    assert ids(api, bob, "accidents", CITY_TILE, district=here.id) == {str(accident.id)}
    assert ids(api, bob, "accidents", CITY_TILE, district=neckarau.id) == set()


# --- Bad requests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "tile", "params", "field", "message"),
    [
        ("roadworks", (21, 0, 0), {}, "z", str(MSG_ZOOM).format(max=MAX_ZOOM)),
        ("roadworks", (2, 4, 0), {}, "xy", str(MSG_TILE_XY).format(z=2, max=3)),
        ("roadworks", (2, 0, 4), {}, "xy", str(MSG_TILE_XY).format(z=2, max=3)),
        (
            "roadworks",
            (12, 2144, 1398),
            {"on": "1.6.2027"},
            "on",
            str(MSG_DAY).format(first="2000-01-01", last="2100-12-31"),
        ),
        (
            "roadworks",
            (12, 2144, 1398),
            {"on": "1900-01-01"},
            "on",
            str(MSG_DAY).format(first="2000-01-01", last="2100-12-31"),
        ),
        ("roadworks", (12, 2144, 1398), {"kind": "dragons"}, "kind", None),
        ("roadworks", (12, 2144, 1398), {"impact": "closure,huge"}, "impact", None),
        ("accidents", (12, 2144, 1398), {"category": "9"}, "category", None),
        ("incidents", (12, 2144, 1398), {"impact": "closure"}, "impact", None),
        ("roadworks", (12, 2144, 1398), {"district": "999999"}, "district", str(MSG_DISTRICT)),
        ("roadworks", (12, 2144, 1398), {"district": "Neckarau"}, "district", str(MSG_DISTRICT)),
    ],
)
def test_it_refuses_bad_parameters_with_a_message(api, layer, tile, params, field, message):
    response = client(None).get(url(layer, *tile), params)
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    if message is not None:
        assert messages == [message]
    elif field == "impact" and layer == "incidents":
        assert messages == [str(MSG_NOT_FOR_LAYER).format(name="impact", layer="incidents", names="on, kind, district")]
    else:
        assert messages[0].startswith(str(MSG_CHOICES).split("{choices}")[0].format(name=field))


def test_it_answers_an_unknown_layer_with_404(api):
    response = client(None).get(url("dragons", 12, 2144, 1398))
    assert response.status_code == 404
    assert "roadworks, incidents, accidents" in response.json()["layer"][0]


# --- Caching ----------------------------------------------------------------------------------------------------


# Transactional: in the usual test transaction every write has the same xmin, as one request's writes do.
@pytest.mark.django_db(transaction=True)
def test_it_answers_304_when_the_tile_is_unchanged_and_a_new_etag_when_a_row_changes(api, stadtwerke):
    work = make_roadwork(stadtwerke, period=running(), title="Alt")
    first = get_tile(api, None, "roadworks")
    etag = first["ETag"]
    again = client(None).get(url("roadworks", *KAISERRING_TILE), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again["ETag"] == etag
    # A bulk update leaves updated_at alone; the rows' xmin still moves the fingerprint.
    Roadwork.objects.filter(pk=work.pk).update(title="Neu")
    changed = client(None).get(url("roadworks", *KAISERRING_TILE), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert decode(changed.content)["roadworks"].features[0].properties["title"] == "Neu"


def test_it_builds_a_tile_once_and_serves_it_from_the_cache(api, stadtwerke):
    make_roadwork(stadtwerke, period=running())
    first = get_tile(api, None, "roadworks").content
    with CaptureQueriesContext(connection) as queries:
        second = get_tile(api, None, "roadworks").content
    assert second == first
    sqls = [q["sql"] for q in queries.captured_queries]
    assert not any("ST_AsMVT" in sql for sql in sqls), sqls
    assert len(sqls) == 1  # the fingerprint


def test_it_keeps_the_caches_of_users_who_see_different_rows_apart(api, stadtwerke, bob):
    make_roadwork(stadtwerke, period=running())
    make_roadwork(stadtwerke, period=running(), status=RoadworkStatus.SUBMITTED)
    assert len(features(api, bob, "roadworks")) == 2
    assert len(features(api, None, "roadworks")) == 1
    assert get_tile(api, bob, "roadworks")["ETag"] != get_tile(api, None, "roadworks")["ETag"]


def test_it_lets_browsers_keep_public_tiles_briefly_and_staff_tiles_never_unchecked(api, stadtwerke, bob, settings):
    settings.AUMAN_TILE_MAX_AGE = 45
    make_roadwork(stadtwerke, period=running())
    public = get_tile(api, None, "roadworks")
    assert set(public["Cache-Control"].split(", ")) == {"public", "max-age=45"}
    staff = get_tile(api, bob, "roadworks")
    assert set(staff["Cache-Control"].split(", ")) == {"private", "no-cache"}
    for response in (public, staff):
        assert {"Cookie", "Authorization"} <= {v.strip() for v in response["Vary"].split(",")}


def test_it_notices_when_a_work_starts_without_any_row_changing(api, stadtwerke, monkeypatch):
    start = timezone.now() + timedelta(hours=2)
    make_roadwork(stadtwerke, period=period(start, 3))
    before = get_tile(api, None, "roadworks")
    assert decode(before.content)["roadworks"].features[0].properties["phase"] == "planned"
    later = timezone.now() + timedelta(hours=3)
    monkeypatch.setattr("maps.tile_views.timezone.now", lambda: later)
    after = get_tile(api, None, "roadworks")
    assert after["ETag"] != before["ETag"]
    assert decode(after.content)["roadworks"].features[0].properties["phase"] == "active"


# --- Indexes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "index"),
    [
        ("roadworks", "roadwork_geom_period_gist"),
        ("incidents", "incident_geom_period_gist"),
        ("accidents", "traffic_accident_location_"),
    ],
)
def test_it_finds_the_rows_of_a_tile_through_the_gist_index(bob, layer, index):
    request = parse_tile_request(layer, *KAISERRING_TILE, {})
    sql, params = tile_sql(request, bob, now=timezone.now())
    with connection.cursor() as cursor:
        # The test tables are nearly empty, where a sequential scan is cheaper; the point is that the index serves.
        # Fresh statistics: left from earlier tests (rows since deleted), they let the planner walk another index
        # (the accidents' incident_id) over the whole table instead.
        cursor.execute("ANALYZE roadworks_roadwork, traffic_incident, traffic_accident")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


# --- For the map page -------------------------------------------------------------------------------------------


def test_it_gives_the_map_a_leaflet_url_template_per_layer():
    assert tile_url_template("roadworks") == "/tiles/roadworks/{z}/{x}/{y}.mvt"
    assert tile_url_template("accidents") == "/tiles/accidents/{z}/{x}/{y}.mvt"


def test_it_offers_the_accident_layer_only_to_those_who_may_see_it(bob, carol, alice, dave):
    assert tile_layers_for(None) == ("roadworks", "incidents")
    assert tile_layers_for(dave) == tile_layers_for(alice) == ("roadworks", "incidents")
    assert tile_layers_for(bob) == tile_layers_for(carol) == ("roadworks", "incidents", "accidents")
