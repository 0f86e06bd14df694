"""Bad input to the roadworks API answers 400 with a message per field and stores nothing."""

from __future__ import annotations

import pytest

from auman.api import MSG_PERIOD_ORDER, MSG_UNKNOWN_FIELD
from auman.geo import MSG_GEOMETRY_EMPTY, MSG_GEOMETRY_OUTSIDE
from roadworks.models import Roadwork
from tests.conftest import KAISERRING, feature, geojson_line

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}


def post(client, body, **kwargs):
    return client.post("/api/v1/roadworks/", body, format="json", **kwargs)


def valid(**overrides):
    properties = {"title": "Fernwärme Luisenring", "period": PERIOD, "status": "submitted", **overrides}
    return feature(geojson_line(KAISERRING), **properties)


def assert_rejected(response, field: str, message: str | None = None) -> None:
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    if message is not None:
        assert any(message in str(text) for text in errors[field]), errors
    assert Roadwork.objects.count() == 0


def test_a_valid_roadwork_is_stored(api, alice):
    response = post(api(alice), valid())
    assert response.status_code == 201, response.json()
    assert Roadwork.objects.get().organisation == alice.organisation


def test_it_rejects_malformed_geojson(api, alice):
    body = valid()
    body["geometry"] = {"type": "LineString", "coordinates": "8.47,49.48"}
    assert_rejected(post(api(alice), body), "geometry")


def test_it_rejects_an_unknown_geometry_type(api, alice):
    body = valid()
    body["geometry"] = {"type": "Hexagon", "coordinates": [[8.47, 49.48]]}
    assert_rejected(post(api(alice), body), "geometry")


def test_it_rejects_a_point_for_a_roadwork(api, alice):
    body = valid()
    body["geometry"] = {"type": "Point", "coordinates": [8.47, 49.48]}
    assert_rejected(post(api(alice), body), "geometry", "Point")


def test_it_rejects_an_empty_geometry(api, alice):
    body = valid()
    body["geometry"] = {"type": "LineString", "coordinates": []}
    assert_rejected(post(api(alice), body), "geometry", str(MSG_GEOMETRY_EMPTY))


def test_it_rejects_a_self_intersecting_polygon(api, alice):
    body = valid()
    bowtie = [[8.470, 49.480], [8.472, 49.482], [8.472, 49.480], [8.470, 49.482], [8.470, 49.480]]
    body["geometry"] = {"type": "Polygon", "coordinates": [bowtie]}
    assert_rejected(post(api(alice), body), "geometry", "Self-intersection")


def test_it_rejects_coordinates_outside_the_service_area(api, alice):
    body = valid()
    body["geometry"] = geojson_line([(8.6724, 49.3988), (8.6750, 49.4000)])  # Heidelberg
    assert_rejected(post(api(alice), body), "geometry", str(MSG_GEOMETRY_OUTSIDE).split("(")[0].strip())


def test_it_rejects_swapped_lat_lon(api, alice):
    body = valid()
    body["geometry"] = geojson_line([(49.484, 8.474), (49.4852, 8.4762)])
    assert_rejected(post(api(alice), body), "geometry")


def test_it_rejects_a_foreign_crs(api, alice):
    body = valid()
    body["geometry"] = {**geojson_line(KAISERRING), "crs": {"type": "name", "properties": {"name": "EPSG:25832"}}}
    assert_rejected(post(api(alice), body), "geometry", "4326")


def test_it_rejects_too_many_vertices(api, alice, settings):
    settings.AUMAN_MAX_VERTICES = 10
    coords = [(8.470 + i * 0.0001, 49.484) for i in range(11)]
    body = valid()
    body["geometry"] = geojson_line(coords)
    assert_rejected(post(api(alice), body), "geometry", "10")


def test_it_rejects_end_before_start(api, alice):
    body = valid(period={"lower": "2027-03-12T07:00:00+01:00", "upper": "2027-03-01T17:00:00+01:00"})
    assert_rejected(post(api(alice), body), "period", str(MSG_PERIOD_ORDER))


def test_it_rejects_a_period_without_end(api, alice):
    assert_rejected(post(api(alice), valid(period={"lower": "2027-03-12T07:00:00+01:00"})), "period")


def test_it_rejects_an_absurd_year(api, alice):
    body = valid(period={"lower": "2027-03-12T07:00:00+01:00", "upper": "9999-03-01T17:00:00+01:00"})
    assert_rejected(post(api(alice), body), "period")


def test_it_rejects_unknown_fields(api, alice):
    response = post(api(alice), valid(colour="pink"))
    assert_rejected(response, "colour", str(MSG_UNKNOWN_FIELD))


def test_it_rejects_wrong_types(api, alice):
    response = post(api(alice), valid(lanes_affected="two", excavation="maybe", street_names="Kaiserring"))
    assert response.status_code == 400
    assert {"lanes_affected", "excavation", "street_names"} <= set(response.json())
    assert Roadwork.objects.count() == 0


def test_it_rejects_an_unknown_choice(api, alice):
    assert_rejected(post(api(alice), valid(traffic_management="teleport")), "traffic_management")


def test_it_rejects_a_body_that_is_not_a_feature(api, alice):
    response = post(api(alice), [1, 2, 3])
    assert response.status_code == 400
    assert Roadwork.objects.count() == 0


def test_it_rejects_broken_json(api, alice):
    response = api(alice).post("/api/v1/roadworks/", '{"type": "Feature", ', content_type="application/json")
    assert response.status_code == 400
    assert Roadwork.objects.count() == 0


def test_it_rejects_an_oversized_payload(api, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = valid(description="x" * 20_000)
    response = post(api(alice), body)
    assert response.status_code == 413
    assert "10000" in response.json()["detail"]
    assert Roadwork.objects.count() == 0


def test_it_rejects_a_wrong_content_type(api, alice):
    response = api(alice).post("/api/v1/roadworks/", "title=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert Roadwork.objects.count() == 0


def test_it_rejects_a_duplicate_reference(api, alice):
    assert post(api(alice), valid(reference="BS-1")).status_code == 201
    response = post(api(alice), valid(reference="BS-1"))
    assert response.status_code == 400
    assert "reference" in response.json()
    assert Roadwork.objects.count() == 1


def test_text_with_html_is_stored_as_text(api, alice):
    title = '<script>alert("x")</script>'
    response = post(api(alice), valid(title=title))
    assert response.status_code == 201
    assert Roadwork.objects.get().title == title
