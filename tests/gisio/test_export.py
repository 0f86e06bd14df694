"""GIS export: each format read back with GDAL equals what was exported; filters and visibility as in the API."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.gis.gdal import DataSource
from django.contrib.gis.geos import GEOSGeometry, Polygon

from gisio.api import MSG_UNKNOWN_PARAMETER
from gisio.layers import MSG_CHOICE, MSG_LAYER_NOT_ALLOWED
from roadworks.models import Conflict, RoadworkStatus, TrafficManagement, WorkKind
from tests.conftest import NECKARAU, line, local, make_incident, make_roadwork, period
from traffic.models import BlackSpot, IncidentStatus

pytestmark = pytest.mark.django_db

URL = "/api/v1/export/{layer}.{fmt}"
# 7 decimals of a degree: about 1 cm; GeoJSON is written with 7 decimals, the other formats in full.
PRECISION_DEG = 1e-6
AREA_WGS84 = [(8.4700, 49.4800), (8.4720, 49.4800), (8.4720, 49.4812), (8.4700, 49.4812), (8.4700, 49.4800)]


def area(coords):
    return Polygon(coords, srid=4326).transform(25832, clone=True)


@pytest.fixture
def works(stadtwerke, telekom):
    """Two public works (a line with two streets, an area), a draft of Telekom and a refused one."""
    return {
        "line": make_roadwork(
            stadtwerke,
            reference="BS-LINE",
            title="Fernwärme Kaiserring – Abschnitt Süd",
            street_names=["Kaiserring", "Tattersallstraße"],
            traffic_management=TrafficManagement.FULL_CLOSURE,
            work_kind=WorkKind.DISTRICT_HEATING,
            lanes_affected=2,
            is_emergency=True,
        ),
        "area": make_roadwork(
            stadtwerke,
            reference="BS-AREA",
            geometry=area(AREA_WGS84),
            status=RoadworkStatus.IN_PROGRESS,
            traffic_management=TrafficManagement.FOOTWAY_CLOSURE,
            period=period(local(2027, 5, 1, 7), 5),
        ),
        "draft": make_roadwork(telekom, reference="BS-DRAFT", geometry=line(NECKARAU), status=RoadworkStatus.DRAFT),
        "refused": make_roadwork(stadtwerke, reference="BS-REFUSED", status=RoadworkStatus.REFUSED),
    }


def download(client, layer: str, fmt: str, tmp_path: Path, **params) -> Path:
    response = client.get(URL.format(layer=layer, fmt=fmt), params)
    assert response.status_code == 200, response.content[:500]
    assert "attachment" in response["Content-Disposition"]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{layer}.{fmt}"
    path.write_bytes(response.content)
    if fmt == "shp.zip":
        target = tmp_path / "shp"
        zipfile.ZipFile(path).extractall(target)
        return target
    return path


def read_back(path: Path) -> dict[str, dict]:
    """Every feature of every layer (a zipped Shapefile may hold several) by id, with attributes and geometry."""
    files = sorted(path.glob("*.shp")) if path.is_dir() else [path]
    rows = {}
    for file in files:
        source = DataSource(str(file))
        for layer in source:
            for feat in layer:
                values = {name: feat.get(name) for name in layer.fields}
                geom = feat.geom.geos
                geom.srid = feat.geom.srid or 4326
                rows[str(values["id"])] = {
                    "values": values,
                    "geom": geom,
                    "srid": layer.srs.srid if layer.srs else None,
                }
    return rows


def assert_same_geometry(exported: GEOSGeometry, stored: GEOSGeometry) -> None:
    expected = stored.transform(4326, clone=True)
    if expected.geom_type != exported.geom_type and exported.geom_type.startswith("Multi"):
        assert len(exported) == 1
        exported = exported[0]
    assert exported.geom_type == expected.geom_type
    # Shapefile stores outer rings clockwise (GeoJSON and GeoPackage counter-clockwise): same shape, other order.
    exported, expected = exported.normalize(clone=True), expected.normalize(clone=True)
    assert exported.equals_exact(expected, PRECISION_DEG), (exported.wkt, expected.wkt)


def as_utc(value) -> datetime:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@pytest.mark.parametrize("fmt", ["gpkg", "shp.zip", "geojson"])
def test_it_exports_roadworks_that_gdal_reads_back_unchanged(api, bob, works, tmp_path, fmt):
    rows = read_back(download(api(bob), "roadworks", fmt, tmp_path))
    assert set(rows) == {str(w.pk) for w in works.values()}
    for work in works.values():
        row = rows[str(work.pk)]
        values = row["values"]
        assert values["reference"] == work.reference
        assert values["title"] == work.title
        assert values["streets"] == "; ".join(work.street_names)
        assert values["status"] == work.status
        assert values["traffic"] == work.traffic_management
        assert values["org"] == work.organisation.name
        assert as_utc(values["starts_at"]) == work.period.lower.astimezone(UTC)
        assert as_utc(values["ends_at"]) == work.period.upper.astimezone(UTC)
        assert row["srid"] == 4326
        assert_same_geometry(row["geom"], work.geometry)
    line_row = rows[str(works["line"].pk)]["values"]
    assert line_row["impact"] == "closure"
    assert line_row["lanes"] == 2
    assert bool(line_row["emergency"]) is True
    assert rows[str(works["area"].pk)]["values"]["lanes"] in (None, 0) or fmt == "shp.zip"


def test_it_writes_proper_field_types_into_the_geopackage(api, bob, works, tmp_path):
    layer = DataSource(str(download(api(bob), "roadworks", "gpkg", tmp_path)))[0]
    types = dict(zip(layer.fields, [t.__name__ for t in layer.field_types], strict=True))
    assert types["starts_at"] == "OFTDateTime"
    assert types["lanes"] in ("OFTInteger", "OFTInteger64")
    assert types["reference"] == "OFTString"
    assert layer.srs.srid == 4326
    assert all(len(name) <= 10 for name in layer.fields)


def test_it_splits_a_shapefile_by_geometry_family(api, bob, works, tmp_path):
    folder = download(api(bob), "roadworks", "shp.zip", tmp_path)
    names = sorted(path.name for path in folder.glob("*.shp"))
    assert names == ["roadworks_areas.shp", "roadworks_lines.shp"]
    assert (folder / "roadworks_lines.prj").exists()
    assert (folder / "roadworks_lines.cpg").read_text().strip().upper().replace("-", "") == "UTF8"


def test_it_exports_csv_with_wkt_geometry(api, bob, works, tmp_path):
    response = api(bob).get(URL.format(layer="roadworks", fmt="csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(response.content.decode("utf-8")))}
    work = works["line"]
    row = rows[str(work.pk)]
    assert row["reference"] == "BS-LINE"
    assert row["title"] == work.title
    assert as_utc(row["starts_at"]) == work.period.lower.astimezone(UTC)
    assert_same_geometry(GEOSGeometry(row["WKT"], srid=4326), work.geometry)


def test_the_public_gets_only_public_roadworks(api, works, tmp_path):
    rows = read_back(download(api(None), "roadworks", "gpkg", tmp_path))
    assert {row["values"]["reference"] for row in rows.values()} == {"BS-LINE", "BS-AREA"}


def test_an_applicant_also_gets_its_own_drafts_but_not_others(api, alice, erin, works, tmp_path):
    erin_rows = read_back(download(api(erin), "roadworks", "geojson", tmp_path))
    assert {row["values"]["reference"] for row in erin_rows.values()} == {"BS-LINE", "BS-AREA", "BS-DRAFT"}
    alice_rows = read_back(download(api(alice), "roadworks", "geojson", tmp_path))
    assert "BS-DRAFT" not in {row["values"]["reference"] for row in alice_rows.values()}


def test_it_applies_the_maps_filters(api, bob, works):
    def references(**params) -> set[str]:
        response = api(bob).get(URL.format(layer="roadworks", fmt="geojson"), params)
        assert response.status_code == 200, response.content
        return {f["properties"]["reference"] for f in json.loads(response.content)["features"]}

    assert references(status="in_progress") == {"BS-AREA"}
    assert references(impact="closure") == {"BS-LINE"}
    assert references(kind="district_heating") == {"BS-LINE"}
    assert references(active_on="2027-05-02") == {"BS-AREA"}
    assert references(on="2027-03-02T10:00:00+01:00") == {"BS-LINE", "BS-REFUSED", "BS-DRAFT"}
    # Neckarau lies 4 km south of the city centre box.
    assert references(bbox="8.46,49.47,8.48,49.49") == {"BS-LINE", "BS-AREA", "BS-REFUSED"}


def test_it_rejects_bad_filters_with_400(api, bob, works):
    client = api(bob)
    response = client.get(URL.format(layer="roadworks", fmt="gpkg"), {"status": "sleeping"})
    assert response.status_code == 400
    assert response.json()["status"] == [
        str(MSG_CHOICE).format(value="sleeping", choices=", ".join(RoadworkStatus.values))
    ]
    response = client.get(URL.format(layer="roadworks", fmt="gpkg"), {"bbox": "1,2,3"})
    assert response.status_code == 400 and "bbox" in response.json()
    response = client.get(URL.format(layer="roadworks", fmt="gpkg"), {"page": "2"})
    assert response.status_code == 400
    assert str(MSG_UNKNOWN_PARAMETER).split(".")[0] in response.json()["page"][0]
    assert client.get(URL.format(layer="nothing", fmt="gpkg")).status_code == 404
    assert client.get("/api/v1/export/roadworks.kml").status_code == 404


def test_it_exports_incidents_and_hides_cleared_ones_from_the_public(api, carol, tmp_path):
    active = make_incident(street_name="Kaiserring", lanes_blocked=1)
    cleared = make_incident(status=IncidentStatus.CLEARED, cleared_at=datetime.now(tz=UTC))
    staff_rows = read_back(download(api(carol), "incidents", "gpkg", tmp_path))
    assert set(staff_rows) == {str(active.pk), str(cleared.pk)}
    row = staff_rows[str(active.pk)]
    assert row["values"]["street"] == "Kaiserring"
    assert row["values"]["kind"] == "accident"
    assert_same_geometry(row["geom"], active.location)
    public_rows = read_back(download(api(None), "incidents", "shp.zip", tmp_path))
    assert set(public_rows) == {str(active.pk)}


def test_conflicts_are_for_staff_and_the_applicants_involved(api, bob, alice, erin, dave, works, tmp_path):
    # A pair is stored with the smaller id as roadwork_a (a DB constraint).
    side_a, side_b = sorted([works["line"], works["refused"]], key=lambda work: work.pk)
    conflict = Conflict.objects.create(
        rule="C1",
        roadwork_a=side_a,
        roadwork_b=side_b,
        overlap_period=works["line"].period,
        place=works["line"].geometry.buffer(2),
    )
    rows = read_back(download(api(bob), "conflicts", "gpkg", tmp_path))
    assert set(rows) == {str(conflict.pk)}
    assert rows[str(conflict.pk)]["values"]["rule"] == "C1"
    assert rows[str(conflict.pk)]["values"]["roadwork_a"] == side_a.reference
    assert rows[str(conflict.pk)]["values"]["roadwork_b"] == side_b.reference
    assert_same_geometry(rows[str(conflict.pk)]["geom"], conflict.place)
    assert set(read_back(download(api(alice), "conflicts", "geojson", tmp_path))) == {str(conflict.pk)}
    assert read_back(download(api(erin), "conflicts", "geojson", tmp_path)) == {}
    response = api(None).get(URL.format(layer="conflicts", fmt="gpkg"))
    assert response.status_code == 401
    assert response.json()["detail"] == str(MSG_LAYER_NOT_ALLOWED)
    assert api(dave).get(URL.format(layer="conflicts", fmt="gpkg")).status_code == 403


def test_black_spots_are_for_the_commission(api, carol, alice, tmp_path, settings):
    settings.AUMAN_BLACKSPOTS_PUBLIC = False
    centre = GEOSGeometry("POINT(8.4750 49.4846)", srid=4326).transform(25832, clone=True)
    spot = BlackSpot.objects.create(
        key="k-1",
        rule="1j_vu",
        location=centre,
        area=centre.buffer(25),
        accident_count=5,
        score=12,
        period=period(local(2025, 1, 1), 365),
    )
    rows = read_back(download(api(carol), "black_spots", "gpkg", tmp_path))
    assert rows[str(spot.pk)]["values"]["accidents"] == 5
    assert rows[str(spot.pk)]["values"]["key"] == "k-1"
    assert_same_geometry(rows[str(spot.pk)]["geom"], spot.area)
    assert api(alice).get(URL.format(layer="black_spots", fmt="gpkg")).status_code == 403


def test_an_empty_export_is_still_a_valid_file(api, bob, tmp_path):
    for fmt in ("gpkg", "shp.zip", "geojson"):
        assert read_back(download(api(bob), "roadworks", fmt, (tmp_path / fmt.replace(".", "_")))) == {}
    response = api(bob).get(URL.format(layer="roadworks", fmt="csv"))
    assert response.content.decode().splitlines()[0].startswith("WKT,id,reference")


def test_staff_pages_link_to_the_exports(client, bob, works):
    client.force_login(bob)
    page = client.get("/koordination/", {"status": "approved"})
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="gis-export"' in text
    assert "/api/v1/export/roadworks.gpkg?status=approved" in text
    assert "/api/v1/export/conflicts.shp.zip" in text
    assert "/ogcapi/" in text
    assert 'href="/gis/import/"' in text


def test_the_police_list_links_to_the_incident_export(client, carol):
    client.force_login(carol)
    text = client.get("/polizei/").content.decode()
    assert "/api/v1/export/incidents.gpkg" in text
    assert "/api/v1/export/roadworks." not in text
