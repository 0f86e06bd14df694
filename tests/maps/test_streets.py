"""The street network: import from OSM, nearest street, search by name, the API and the demo streets.

The OSM extract is real (../shared/data/geo/heidelberg.test.osm.pbf): Heidelberg plus some main roads of
Mannheim. Only the Mannheim part lies in the default service area.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import osmium
import pytest
from django.conf import settings
from django.contrib.gis.geos import LineString, Point
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from auman.geo import MSG_COORDINATES_RANGE, service_area, service_area_geometry
from maps.api import (
    MSG_COORDINATE_INVALID,
    MSG_COORDINATE_REQUIRED,
    MSG_LIMIT,
    MSG_MAX_DISTANCE,
    MSG_NO_STREET_NEAR,
    MSG_QUERY_TOO_LONG,
    MSG_QUERY_TOO_SHORT,
)
from maps.management.commands.load_demo_streets import DEMO_STREETS_FILE
from maps.models import StreetSegment, normalise_street_name
from maps.osm import (
    MSG_FILE_MISSING,
    MSG_FILE_UNREADABLE,
    MSG_NOTHING_TO_REPLACE,
    streets_import_osm,
    streets_load_geojson,
)
from maps.streets import NEAREST_DEFAULT_MAX_DISTANCE_M, street_nearest, streets_search
from tests.conftest import features_of, shared_path

pytestmark = pytest.mark.django_db

MANNHEIM_MAIN_STREETS = {
    "Augustaanlage",
    "Bismarckplatz",
    "Bismarckstraße",
    "Konrad-Adenauer-Brücke",
    "Möhlstraße",
    "Parkring",
    "Reichskanzler-Müller-Straße",
    "Seckenheimer Straße",
    "Viehhofstraße",
    "Wilhelm-Varnholt-Allee",
}
# Two side streets on the city boundary, inside the service area's 50 m tolerance.
BOUNDARY_STREETS = {"Fiscostraße", "Fred-Joachim-Schoeps-Straße"}
# Streets of Heidelberg that the extract holds, far outside Mannheim.
HEIDELBERG_STREETS = {
    "Bergheimer Straße",
    "Berliner Straße",
    "Hauptstraße",
    "Kurfürsten-Anlage",
    "Mittermaierstraße",
    "Römerstraße",
    "Sofienstraße",
}
EXTRACT_WAYS_IN_AREA = 145
# On Bismarckstraße (WGS84 lon, lat): a vertex of OSM way 56185651 near L 6.
ON_BISMARCKSTRASSE = (8.46569, 49.48327)
# In Mannheim-Sandhofen's fields, kilometres from any street of the extract.
FAR_FROM_STREETS = (8.46, 49.56)

NEAREST_URL = "/api/v1/streets/nearest/"
SEARCH_URL = "/api/v1/streets/"


@pytest.fixture(scope="module")
def pbf() -> Path:
    return shared_path("data", "geo", "heidelberg.test.osm.pbf")


@pytest.fixture(scope="module")
def names_in_extract(pbf) -> set[str]:
    """Every street name the extract holds, read with osmium itself, so the tests know what could be imported."""
    ways = (
        osmium.FileProcessor(str(pbf))
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
        .with_filter(osmium.filter.KeyFilter("name"))
    )
    return {way.tags["name"] for way in ways}


@pytest.fixture
def imported(pbf) -> StringIO:
    out = StringIO()
    call_command("import_osm", str(pbf), stdout=out)
    return out


def names() -> set[str]:
    return set(StreetSegment.objects.values_list("name", flat=True))


def write_opl(tmp_path: Path, text: str) -> Path:
    """A small OSM file in OPL, osmium's text format, for cases the real extract does not have."""
    path = tmp_path / "streets.opl"
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


def explain(sql: str, *, priced_out: tuple[str, ...] = ("seqscan",)) -> str:
    """The plan of a captured query with full scans priced out, as if the table were large: the index that
    serves the query shows up (on a table this small PostgreSQL would rightly read everything)."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE maps_streetsegment")
        for method in priced_out:
            cursor.execute(f"SET LOCAL enable_{method} = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        for method in priced_out:
            cursor.execute(f"SET LOCAL enable_{method} = on")
    return plan


def segment(name: str, coords: list[tuple[float, float]], way_id: int, highway: str = "residential"):
    geometry = LineString(coords, srid=4326).transform(settings.AUMAN_SRID, clone=True)
    return StreetSegment.objects.create(osm_way_id=way_id, name=name, highway=highway, geometry=geometry)


# --- import_osm ------------------------------------------------------------------------------------------------


def test_it_imports_the_mannheim_streets_of_the_extract(imported, names_in_extract):
    assert names_in_extract >= MANNHEIM_MAIN_STREETS
    assert names() == MANNHEIM_MAIN_STREETS | BOUNDARY_STREETS
    assert StreetSegment.objects.count() == EXTRACT_WAYS_IN_AREA
    assert StreetSegment.objects.filter(name="Bismarckstraße").count() == 39
    assert f"{EXTRACT_WAYS_IN_AREA} streets in the service area ({EXTRACT_WAYS_IN_AREA} new" in imported.getvalue()


def test_it_leaves_out_the_heidelberg_streets_outside_the_service_area(imported, names_in_extract):
    assert names_in_extract >= HEIDELBERG_STREETS
    assert not names() & HEIDELBERG_STREETS
    # Heidelberg has a Bismarckstraße as well: only Mannheim's segments may be here.
    area = service_area()
    assert all(area.intersects(s.geometry) for s in StreetSegment.objects.all())


def test_it_keeps_a_way_that_crosses_the_boundary_whole(imported):
    # The Konrad-Adenauer-Brücke crosses the Rhine into Ludwigshafen: the part outside stays.
    bridges = StreetSegment.objects.filter(name="Konrad-Adenauer-Brücke")
    assert bridges.count() == 2
    assert any(not service_area().covers(bridge.geometry) for bridge in bridges)


def test_it_stores_the_osm_geometry_in_the_storage_srid(imported):
    augustaanlage = StreetSegment.objects.get(osm_way_id=151785689)
    assert augustaanlage.name == "Augustaanlage"
    assert augustaanlage.highway == "primary"
    assert augustaanlage.geometry.srid == settings.AUMAN_SRID
    assert augustaanlage.geometry.num_points == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT ST_SRID(geometry) FROM maps_streetsegment")
        assert cursor.fetchall() == [(settings.AUMAN_SRID,)]
    start = Point(augustaanlage.geometry.coords[0], srid=settings.AUMAN_SRID).transform(4326, clone=True)
    # The first node of the way in OSM, to well under a centimetre.
    assert start.x == pytest.approx(8.4919252, abs=1e-7)
    assert start.y == pytest.approx(49.4778796, abs=1e-7)


def test_a_second_import_changes_nothing(imported, pbf):
    before = dict(StreetSegment.objects.values_list("osm_way_id", "pk"))
    result = streets_import_osm(path=pbf)
    assert (result.created, result.updated, result.unchanged, result.deleted) == (0, 0, EXTRACT_WAYS_IN_AREA, 0)
    assert dict(StreetSegment.objects.values_list("osm_way_id", "pk")) == before


def test_a_second_import_updates_what_changed_by_way_id(imported, pbf):
    way = StreetSegment.objects.get(osm_way_id=151785689)
    original = way.geometry.clone()
    way.name = "Alter Name"
    way.geometry = LineString([(0, 0), (1, 1)], srid=settings.AUMAN_SRID)
    way.save()
    result = streets_import_osm(path=pbf)
    assert (result.created, result.updated) == (0, 1)
    way.refresh_from_db()
    assert way.name == "Augustaanlage"
    assert way.geometry.equals_exact(original, tolerance=1e-6)


def test_replace_removes_streets_no_longer_in_the_file_and_a_plain_import_keeps_them(imported, pbf):
    segment("Abgerissene Straße", [(8.4660, 49.4875), (8.4670, 49.4880)], way_id=1)
    streets_import_osm(path=pbf)
    assert StreetSegment.objects.filter(osm_way_id=1).exists()

    out = StringIO()
    call_command("import_osm", str(pbf), "--replace", stdout=out)
    assert not StreetSegment.objects.filter(osm_way_id=1).exists()
    assert StreetSegment.objects.count() == EXTRACT_WAYS_IN_AREA
    assert "1 removed" in out.getvalue()


def test_replace_refuses_a_file_without_streets_in_the_service_area(imported, tmp_path):
    heidelberg = write_opl(
        tmp_path,
        """
n1 v1 x8.6900 y49.4100
n2 v1 x8.6910 y49.4105
w1 v1 Thighway=residential,name=Plöck Nn1,n2
""",
    )
    expected = str(MSG_NOTHING_TO_REPLACE).format(city=settings.AUMAN_CITY_NAME)
    with pytest.raises(CommandError, match=expected.split("(")[0].strip()):
        call_command("import_osm", str(heidelberg), "--replace", stdout=StringIO())
    assert StreetSegment.objects.count() == EXTRACT_WAYS_IN_AREA


def test_it_chooses_road_classes_names_and_usable_lines(tmp_path):
    path = write_opl(
        tmp_path,
        """
n1 v1 x8.4660 y49.4875
n2 v1 x8.4670 y49.4880
n3 v1 x8.4680 y49.4885
w10 v1 Thighway=residential,name=Testweg Nn1,n2
w11 v1 Thighway=motorway,ref=A%20%6;A%20%656 Nn2,n3
w12 v1 Thighway=footway,name=Parkweg Nn1,n2
w13 v1 Thighway=cycleway,name=Radschnellweg Nn2,n3
w14 v1 Thighway=service Nn1,n2
w15 v1 Thighway=primary,name=Abgeschnittene%20%Straße Nn3,n99
w16 v1 Thighway=living_street,name=Nur%20%ein%20%Punkt Nn1,n1
w17 v1 Thighway=construction,name=Baustellenstraße Nn1,n2
""",
    )
    result = streets_import_osm(path=path)
    assert dict(StreetSegment.objects.values_list("osm_way_id", "name")) == {
        10: "Testweg",
        11: "A 6 / A 656",  # motorways are known by their ref
        13: "Radschnellweg",
    }
    # footway and construction are no road classes; the service road has no name; way 15 lost a node at the
    # extract's edge and way 16 has only one distinct node.
    assert (result.read, result.unnamed, result.invalid, result.outside, result.created) == (6, 1, 2, 0, 3)


def test_it_says_when_the_file_is_missing_or_unreadable(tmp_path):
    missing = tmp_path / "missing.osm.pbf"
    with pytest.raises(CommandError, match=str(MSG_FILE_MISSING).format(path=missing)):
        call_command("import_osm", str(missing))
    garbage = tmp_path / "garbage.osm.pbf"
    garbage.write_bytes(b"\x00\x00\x00\x0fnot a pbf at all" * 10)
    prefix = str(MSG_FILE_UNREADABLE).format(path=garbage, detail="").strip()
    with pytest.raises(CommandError, match=prefix):
        call_command("import_osm", str(garbage))
    assert StreetSegment.objects.count() == 0


# --- name folding --------------------------------------------------------------------------------------------


def test_the_database_folds_names_as_the_search_folds_queries():
    examples = [
        "Straße des 17. Juni",
        "ÄUSSERE Straße",
        "Reichskanzler-Müller-Straße",
        "O'Brien-Weg",
        "Große Merzelstraße",
        "Lange Rötterstr.",
        "Ölmühle",
    ]
    for number, name in enumerate(examples, start=1):
        segment(name, [(8.466, 49.487), (8.467, 49.488)], way_id=number)
    stored = dict(StreetSegment.objects.values_list("name", "name_normalised"))
    assert stored == {name: normalise_street_name(name) for name in examples}
    assert stored["Große Merzelstraße"] == "grossemerzelstrasse"
    assert stored["Lange Rötterstr."] == "langeroetterstrasse"


# --- street_nearest ------------------------------------------------------------------------------------------


def test_it_names_the_street_at_a_point(imported):
    nearest = street_nearest(point_wgs84=ON_BISMARCKSTRASSE)
    assert nearest is not None
    assert nearest.name == "Bismarckstraße"
    assert nearest.distance_m < 1


def test_it_measures_the_distance_to_the_nearest_street_in_metres(imported):
    # About 30 m north of the Augustaanlage's first node (1e-5 degrees of latitude are 1.11 m).
    nearest = street_nearest(point_wgs84=Point(8.4919252, 49.4781496, srid=4326))
    assert nearest is not None
    assert nearest.name == "Augustaanlage"
    assert 20 < nearest.distance_m <= 30.1


def test_it_finds_no_street_far_from_any(imported):
    assert street_nearest(point_wgs84=FAR_FROM_STREETS) is None


def test_the_search_radius_decides(imported):
    # 150 m north of the Augustaanlage's first node: beyond the default, within a wider radius.
    point = (8.4919252, 49.4792296)
    assert street_nearest(point_wgs84=point) is None
    assert NEAREST_DEFAULT_MAX_DISTANCE_M < 150
    nearest = street_nearest(point_wgs84=point, max_distance_m=300)
    assert nearest is not None and nearest.distance_m > NEAREST_DEFAULT_MAX_DISTANCE_M


def test_the_nearest_street_is_one_query_that_uses_the_gist_index(imported):
    with CaptureQueriesContext(connection) as queries:
        street_nearest(point_wgs84=ON_BISMARCKSTRASSE)
    assert len(queries) == 1
    sql = queries[0]["sql"]
    assert "<->" in sql
    assert "street_geometry_gist" in explain(sql)


# --- streets_search ------------------------------------------------------------------------------------------


def found(query: str, **kwargs) -> list[str]:
    return [match.name for match in streets_search(query=query, **kwargs)]


def test_search_ignores_case_and_lists_each_name_once(imported):
    assert found("BISMARCK") == found("bismarck") == ["Bismarckplatz", "Bismarckstraße"]


def test_search_understands_umlauts_and_sharp_s(imported):
    assert found("möhl") == found("MÖHL") == found("moehl") == ["Möhlstraße"]
    assert found("brücke") == found("bruecke") == ["Konrad-Adenauer-Brücke"]
    assert (
        set(found("strasse"))
        == set(found("Straße"))
        == {
            "Bismarckstraße",
            "Fiscostraße",
            "Fred-Joachim-Schoeps-Straße",
            "Möhlstraße",
            "Reichskanzler-Müller-Straße",
            "Seckenheimer Straße",
            "Viehhofstraße",
        }
    )


def test_search_ignores_separators_and_expands_str_dot(imported):
    assert found("Reichskanzler Müller") == ["Reichskanzler-Müller-Straße"]
    assert found("seckenheimerstr") == ["Seckenheimer Straße"]
    assert found("Bismarckstr.") == ["Bismarckstraße"]


def test_search_puts_names_that_start_with_the_query_first():
    segment("Parkring", [(8.466, 49.487), (8.467, 49.488)], way_id=1)
    segment("Ringstraße", [(8.470, 49.487), (8.471, 49.488)], way_id=2)
    segment("Am Ring", [(8.472, 49.487), (8.473, 49.488)], way_id=3)
    # "Am Ring" sorts before "Parkring" by its folded name, "amring".
    assert found("ring") == ["Ringstraße", "Am Ring", "Parkring"]
    assert found("ring", limit=1) == ["Ringstraße"]


def test_search_treats_like_wildcards_as_text(imported):
    assert found("%%") == []
    assert found("_a") == []


def test_search_gives_where_the_street_is_for_zooming(imported):
    (match,) = streets_search(query="Augustaanlage")
    min_lon, min_lat, max_lon, max_lat = match.bbox
    assert (min_lon, max_lat) == pytest.approx((8.4917179, 49.4779475), abs=1e-6)
    assert match.geometry["type"] == "LineString"
    assert match.geometry["coordinates"][0] == pytest.approx([8.491925, 49.47788], abs=1e-6)
    lon, lat = match.point
    assert min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def test_search_uses_the_trigram_index(imported):
    with CaptureQueriesContext(connection) as queries:
        streets_search(query="bismarck")
    assert len(queries) == 1
    # Plain index scans are priced out too: a whole-index walk over the name btree is no search.
    assert "street_name_trgm" in explain(queries[0]["sql"], priced_out=("seqscan", "indexscan"))


# --- the API -------------------------------------------------------------------------------------------------


def test_anyone_may_ask_for_the_nearest_street(imported, api, carol):
    for client in (api(None), api(carol)):
        response = client.get(NEAREST_URL, {"lon": ON_BISMARCKSTRASSE[0], "lat": ON_BISMARCKSTRASSE[1]})
        assert response.status_code == 200, response.content
        assert response.json() == {"name": "Bismarckstraße", "distance_m": pytest.approx(0.1, abs=0.5)}


def test_the_api_answers_404_when_no_street_is_near(imported, api):
    response = api(None).get(NEAREST_URL, {"lon": FAR_FROM_STREETS[0], "lat": FAR_FROM_STREETS[1]})
    assert response.status_code == 404
    assert response.json() == {"detail": str(MSG_NO_STREET_NEAR).format(distance="100")}
    response = api(None).get(NEAREST_URL, {"lon": 8.4919252, "lat": 49.4792296, "max_distance_m": 300})
    assert response.status_code == 200
    assert response.json()["name"] == "Augustaanlage"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"lat": "49.48"}, "lon", MSG_COORDINATE_REQUIRED),
        ({"lon": "8.46"}, "lat", MSG_COORDINATE_REQUIRED),
        ({"lon": "8,46", "lat": "49.48"}, "lon", MSG_COORDINATE_INVALID),
        ({"lon": "8.46", "lat": "nan"}, "lat", MSG_COORDINATE_INVALID),
        ({"lon": "181", "lat": "49.48"}, "lon", MSG_COORDINATES_RANGE),
        ({"lon": "8.46", "lat": "-90.5"}, "lat", MSG_COORDINATES_RANGE),
        ({"lon": "8.46", "lat": "49.48", "max_distance_m": "0"}, "max_distance_m", MSG_MAX_DISTANCE),
        ({"lon": "8.46", "lat": "49.48", "max_distance_m": "50000"}, "max_distance_m", MSG_MAX_DISTANCE),
    ],
)
def test_the_nearest_street_api_refuses_bad_coordinates(api, params, field, message):
    response = api(None).get(NEAREST_URL, params)
    assert response.status_code == 400
    assert response.json() == {field: [str(message).format(limit=1000)]}


def test_the_search_api_answers_geojson_features_in_wgs84(imported, api):
    response = api(None).get(SEARCH_URL, {"q": "bismarck"})
    assert response.status_code == 200, response.content
    features = features_of(response)
    assert [f["properties"]["name"] for f in features] == ["Bismarckplatz", "Bismarckstraße"]
    for feature in features:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] in ("LineString", "MultiLineString")
        min_lon, min_lat, max_lon, max_lat = feature["bbox"]
        assert 8.4 < min_lon <= max_lon < 8.6 and 49.4 < min_lat <= max_lat < 49.6
        lon, lat = feature["properties"]["point"]
        assert min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def test_the_search_api_limits_the_names(imported, api):
    response = api(None).get(SEARCH_URL, {"q": "strasse", "limit": 2})
    assert len(features_of(response)) == 2
    assert response["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "q", str(MSG_QUERY_TOO_SHORT).format(min=2)),
        ({"q": ""}, "q", str(MSG_QUERY_TOO_SHORT).format(min=2)),
        ({"q": " b "}, "q", str(MSG_QUERY_TOO_SHORT).format(min=2)),
        ({"q": "x" * 101}, "q", str(MSG_QUERY_TOO_LONG).format(max=100)),
        ({"q": "bismarck", "limit": "0"}, "limit", str(MSG_LIMIT).format(max=50)),
        ({"q": "bismarck", "limit": "many"}, "limit", str(MSG_LIMIT).format(max=50)),
    ],
)
def test_the_search_api_refuses_short_queries_and_bad_limits(api, params, field, message):
    response = api(None).get(SEARCH_URL, params)
    assert response.status_code == 400
    assert response.json() == {field: [message]}


def test_the_search_api_refuses_a_nul_character_instead_of_failing(api):
    assert api(None).get(SEARCH_URL, {"q": "bis\x00marck"}).status_code == 400


def test_the_openapi_schema_documents_the_street_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    nearest = {p["name"] for p in paths[NEAREST_URL]["get"]["parameters"]}
    search = {p["name"] for p in paths[SEARCH_URL]["get"]["parameters"]}
    assert {"lon", "lat"} <= nearest
    assert "q" in search
    assert {"200", "400", "404"} <= set(paths[NEAREST_URL]["get"]["responses"])


# --- load_demo_streets ---------------------------------------------------------------------------------------


def test_the_demo_streets_load_idempotently():
    out = StringIO()
    call_command("load_demo_streets", stdout=out)
    assert names() == MANNHEIM_MAIN_STREETS
    assert StreetSegment.objects.count() == 143
    assert "143 new" in out.getvalue()
    again = StringIO()
    call_command("load_demo_streets", stdout=again)
    assert "0 new, 0 changed, 143 unchanged" in again.getvalue()
    assert street_nearest(point_wgs84=ON_BISMARCKSTRASSE).name == "Bismarckstraße"


def test_the_demo_streets_are_what_the_import_keeps_from_the_extract(pbf):
    call_command("load_demo_streets", stdout=StringIO())
    result = streets_import_osm(path=pbf)
    # Same way ids, names, classes and geometry: only the two boundary side streets are new.
    assert (result.created, result.updated, result.unchanged) == (2, 0, 143)
    with open(DEMO_STREETS_FILE, encoding="utf-8") as fh:
        assert "OpenStreetMap" in json.load(fh)["attribution"]


def test_another_city_gets_none_of_the_demo_streets(tmp_path, settings):
    area = tmp_path / "heidelberg.geojson"
    ring = [[8.65, 49.38], [8.72, 49.38], [8.72, 49.42], [8.65, 49.42], [8.65, 49.38]]
    area.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}), encoding="utf-8")
    settings.AUMAN_SERVICE_AREA_FILE = area
    service_area_geometry.cache_clear()
    try:
        result = streets_load_geojson(path=DEMO_STREETS_FILE)
    finally:
        service_area_geometry.cache_clear()
    assert (result.read, result.outside, result.kept) == (143, 143, 0)
    assert StreetSegment.objects.count() == 0
