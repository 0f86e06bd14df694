"""OGC API - Features at /ogcapi/: the sequence of requests QGIS makes, content types, paging and visibility."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from gisio.ogcapi import CONFORMANCE, MSG_FEATURE_NOT_FOUND, MSG_LIMIT
from roadworks.models import RoadworkStatus
from tests.conftest import NECKARAU, line, local, make_incident, make_roadwork, period

pytestmark = pytest.mark.django_db

GEOJSON = "application/geo+json"


@pytest.fixture
def works(stadtwerke):
    """Five public works in the city centre, one in Neckarau, one draft."""
    centre = [make_roadwork(stadtwerke, reference=f"BS-C{n}") for n in range(5)]
    south = make_roadwork(
        stadtwerke, reference="BS-SOUTH", geometry=line(NECKARAU), period=period(local(2027, 8, 1), 3)
    )
    draft = make_roadwork(stadtwerke, reference="BS-DRAFT", status=RoadworkStatus.DRAFT)
    return {"centre": centre, "south": south, "draft": draft}


def get(client, url: str, **params):
    path = urlsplit(url).path if url.startswith("http") else url
    query = urlsplit(url).query if url.startswith("http") else ""
    if query:
        return client.get(f"{path}?{query}")
    return client.get(path, params)


def link(document: dict, rel: str) -> dict:
    matches = [item for item in document["links"] if item["rel"] == rel]
    assert matches, (rel, document["links"])
    return matches[0]


def test_it_answers_a_qgis_style_sequence_of_requests(client, works):
    landing = client.get("/ogcapi/")
    assert landing.status_code == 200
    assert landing["Content-Type"].startswith("application/json")
    body = landing.json()
    assert link(body, "conformance")["href"].endswith("/ogcapi/conformance")
    assert link(body, "service-desc")["type"].startswith("application/vnd.oai.openapi+json")

    conformance = get(client, link(body, "conformance")["href"])
    assert conformance.status_code == 200
    assert set(CONFORMANCE) <= set(conformance.json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance.json()["conformsTo"]

    api_doc = get(client, link(body, "service-desc")["href"])
    assert api_doc.status_code == 200
    assert api_doc["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert "/collections/{collectionId}/items" in api_doc.json()["paths"]

    collections = get(client, link(body, "data")["href"])
    assert collections.status_code == 200
    ids = [c["id"] for c in collections.json()["collections"]]
    assert "roadworks" in ids and "incidents" in ids
    roadworks = next(c for c in collections.json()["collections"] if c["id"] == "roadworks")
    assert roadworks["itemType"] == "feature"
    minx, miny, maxx, maxy = roadworks["extent"]["spatial"]["bbox"][0]
    assert 8.3 < minx < maxx < 8.7 and 49.3 < miny < maxy < 49.7  # the service area, lon/lat

    collection = get(client, link(roadworks, "self")["href"])
    assert collection.status_code == 200 and collection.json()["id"] == "roadworks"

    # QGIS first asks for one item to learn the schema, then pages through the view with bbox and limit.
    first = get(client, link(roadworks, "items")["href"], limit=1)
    assert first.status_code == 200
    assert first["Content-Type"] == GEOJSON
    assert first.json()["numberReturned"] == 1

    seen: list[str] = []
    page = get(client, "/ogcapi/collections/roadworks/items", bbox="8.46,49.47,8.48,49.49", limit=2)
    while True:
        assert page.status_code == 200 and page["Content-Type"] == GEOJSON
        data = page.json()
        assert data["type"] == "FeatureCollection"
        assert data["numberMatched"] == 5
        assert len(data["features"]) == data["numberReturned"] <= 2
        seen += [f["properties"]["reference"] for f in data["features"]]
        nexts = [item for item in data["links"] if item["rel"] == "next"]
        if not nexts:
            break
        assert nexts[0]["type"] == GEOJSON
        page = get(client, nexts[0]["href"])
    assert sorted(seen) == [f"BS-C{n}" for n in range(5)]


def test_items_are_geojson_in_lon_lat(client, works):
    data = client.get("/ogcapi/collections/roadworks/items", {"limit": 100}).json()
    south = next(f for f in data["features"] if f["properties"]["reference"] == "BS-SOUTH")
    assert south["id"] == str(works["south"].pk)
    assert south["geometry"]["type"] == "LineString"
    lon, lat = south["geometry"]["coordinates"][0]
    assert lon == pytest.approx(NECKARAU[0][0], abs=1e-6) and lat == pytest.approx(NECKARAU[0][1], abs=1e-6)
    assert south["properties"]["starts_at"].startswith("2027-07-31T22:00:00")


def test_datetime_filters_by_period(client, works):
    def references(value: str) -> set[str]:
        response = client.get("/ogcapi/collections/roadworks/items", {"datetime": value})
        assert response.status_code == 200, response.content
        return {f["properties"]["reference"] for f in response.json()["features"]}

    assert references("2027-08-02T12:00:00Z") == {"BS-SOUTH"}
    assert references("2027-07-01T00:00:00Z/..") == {"BS-SOUTH"}
    assert references("../2027-03-02T00:00:00Z") == {f"BS-C{n}" for n in range(5)}
    assert references("2027-08-02") == {"BS-SOUTH"}


def test_a_single_item_and_a_missing_one(client, works):
    south = works["south"]
    response = client.get(f"/ogcapi/collections/roadworks/items/{south.pk}")
    assert response.status_code == 200 and response["Content-Type"] == GEOJSON
    body = response.json()
    assert body["type"] == "Feature" and body["id"] == str(south.pk)
    assert any(item["rel"] == "collection" for item in body["links"])
    # The public does not see drafts: as good as missing.
    hidden = client.get(f"/ogcapi/collections/roadworks/items/{works['draft'].pk}")
    assert hidden.status_code == 404
    assert hidden.json()["description"] == str(MSG_FEATURE_NOT_FOUND)
    assert client.get("/ogcapi/collections/roadworks/items/not-a-uuid").status_code == 404


def test_staff_with_a_token_see_more(api, bob, works):
    response = api(bob).get("/ogcapi/collections/roadworks/items", {"limit": 100})
    assert "BS-DRAFT" in {f["properties"]["reference"] for f in response.json()["features"]}
    ids = [c["id"] for c in api(bob).get("/ogcapi/collections").json()["collections"]]
    assert "conflicts" in ids


def test_collections_the_user_may_not_see_are_not_listed(client, api, dave, settings):
    settings.AUMAN_BLACKSPOTS_PUBLIC = False
    ids = [c["id"] for c in client.get("/ogcapi/collections").json()["collections"]]
    assert "conflicts" not in ids and "black_spots" not in ids
    assert client.get("/ogcapi/collections/conflicts/items").status_code == 401
    assert api(dave).get("/ogcapi/collections/conflicts").status_code == 403
    assert client.get("/ogcapi/collections/nothing").status_code == 404


def test_incidents_are_a_point_collection(client, db):
    incident = make_incident()
    data = client.get("/ogcapi/collections/incidents/items").json()
    assert [f["id"] for f in data["features"]] == [str(incident.pk)]
    assert data["features"][0]["geometry"]["type"] == "Point"


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "0"}, str(MSG_LIMIT).split("{")[0]),
        ({"limit": "many"}, str(MSG_LIMIT).split("{")[0]),
        ({"offset": "-1"}, "offset"),
        ({"bbox": "8.5,49.5,8.4"}, "bbox"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"colour": "red"}, "colour"),
        ({"f": "html"}, "f=json"),
        ({"status": "sleeping"}, "sleeping"),
    ],
)
def test_bad_parameters_answer_400_with_an_ogc_exception(client, db, params, fragment):
    response = client.get("/ogcapi/collections/roadworks/items", params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert fragment in body["description"]


def test_a_large_limit_is_capped_not_refused(client, works):
    response = client.get("/ogcapi/collections/roadworks/items", {"limit": "100000"})
    assert response.status_code == 200
    assert response.json()["numberReturned"] == 6
