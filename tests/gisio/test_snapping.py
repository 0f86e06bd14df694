"""Roadworks snap to the street they lie on: streets_along and its use when a roadwork is stored without streets.

The real OSM extract (heidelberg.test.osm.pbf) holds only a few main roads of Mannheim, so the snapping rules are
tested with synthetic segments inside Mannheim, where the service area allows works; one test uses the extract.
"""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString, Polygon

from maps.models import StreetSegment
from maps.osm import streets_import_osm
from maps.streets import streets_along
from roadworks.models import Roadwork
from tests.conftest import feature, geojson_line, shared_path

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-04-01T07:00:00+02:00", "upper": "2027-04-20T17:00:00+02:00"}
# A synthetic crossing in Mannheim's city centre: "Längsstraße" runs east, "Querstraße" crosses it in the middle.
LAENGS = [(8.4700, 49.4880), (8.4760, 49.4880)]
QUER = [(8.4730, 49.4860), (8.4730, 49.4900)]
# Works along Längsstraße, 3 m north of its centre line, across the crossing.
ALONG_LAENGS = [(8.4715, 49.48803), (8.4745, 49.48803)]


def utm(coords) -> LineString:
    return LineString(coords, srid=4326).transform(25832, clone=True)


@pytest.fixture
def crossing(db):
    StreetSegment.objects.create(osm_way_id=1, name="Längsstraße", highway="secondary", geometry=utm(LAENGS))
    StreetSegment.objects.create(osm_way_id=2, name="Querstraße", highway="residential", geometry=utm(QUER))


def test_it_names_the_street_works_run_along_not_the_one_they_cross(crossing):
    assert streets_along(geometry=utm(ALONG_LAENGS)) == ["Längsstraße"]


def test_an_area_over_the_junction_lies_on_both_streets_the_longer_first(crossing):
    box = Polygon.from_bbox((8.4720, 49.48760, 8.4740, 49.48840))
    box.srid = 4326
    # Inside the box: 146 m of Längsstraße (east-west) and 89 m of Querstraße.
    assert streets_along(geometry=box.transform(25832, clone=True)) == ["Längsstraße", "Querstraße"]


def test_nothing_is_named_far_from_any_street(crossing):
    assert streets_along(geometry=utm([(8.4600, 49.5600), (8.4610, 49.5600)])) == []


def test_a_roadwork_stored_without_streets_gets_the_street_it_lies_on(api, alice, crossing):
    body = feature(geojson_line(ALONG_LAENGS), title="Leitungsbau", period=PERIOD)
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["properties"]["street_names"] == ["Längsstraße"]


def test_street_names_given_by_a_person_are_kept(api, alice, crossing):
    body = feature(geojson_line(ALONG_LAENGS), title="Leitungsbau", period=PERIOD, street_names=["Eigener Name"])
    response = api(alice).post("/api/v1/roadworks/", body, format="json")
    assert response.status_code == 201, response.json()
    assert Roadwork.objects.get().street_names == ["Eigener Name"]


def test_an_edit_that_clears_the_streets_snaps_again(api, alice, crossing):
    body = feature(geojson_line(ALONG_LAENGS), title="Leitungsbau", period=PERIOD, street_names=["Alt"])
    created = api(alice).post("/api/v1/roadworks/", body, format="json").json()
    response = api(alice).patch(
        f"/api/v1/roadworks/{created['id']}/",
        {"type": "Feature", "properties": {"street_names": [], "version": created["properties"]["version"]}},
        format="json",
        HTTP_IF_MATCH=f'"{created["properties"]["version"]}"',
    )
    assert response.status_code == 200, response.json()
    assert Roadwork.objects.get().street_names == ["Längsstraße"]


def test_it_snaps_to_a_street_of_the_real_osm_extract(db):
    streets_import_osm(path=shared_path("data", "geo", "heidelberg.test.osm.pbf"))
    # A stretch of Bismarckstraße in Mannheim (the extract's main roads), drawn a few metres off its centre line.
    segment = StreetSegment.objects.filter(name="Bismarckstraße").order_by("osm_way_id").first()
    assert segment is not None
    works = segment.geometry.clone()
    assert streets_along(geometry=works)[0] == "Bismarckstraße"
