"""Bulk import of roadworks from GeoJSON and GeoPackage: the same checks as the API, a report per rejected feature,
all or nothing, dry run; through the API, the staff page and the management command."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.contrib.gis.geos import LineString
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import translation
from pyogrio.raw import write as ogr_write

from auman.api import MSG_PERIOD_ORDER, MSG_UNKNOWN_FIELD
from auman.geo import MSG_GEOMETRY_OUTSIDE, MSG_GEOMETRY_TYPE
from gisio.services import (
    MSG_DRY_RUN_OK,
    MSG_FILE_CRS,
    MSG_FILE_NO_FEATURES,
    MSG_FILE_UNREADABLE,
    MSG_IMPORTED,
    MSG_ORGANISATION_MISMATCH,
    MSG_ORGANISATION_OTHER,
    MSG_PERIOD_HALF,
    MSG_REJECTED,
)
from roadworks.models import Roadwork, RoadworkStatus, RoadworkTransition
from tests.conftest import KAISERRING, NECKARAU, feature, geojson_line, make_roadwork

pytestmark = pytest.mark.django_db

URL = "/api/v1/roadworks/import/"
PERIOD = {"lower": "2027-04-01T07:00:00+02:00", "upper": "2027-04-20T17:00:00+02:00"}
# Far outside Mannheim: Berlin.
BERLIN_LINE = [(13.40, 52.52), (13.41, 52.52)]


def plan_feature(reference: str, coords=KAISERRING, **overrides) -> dict:
    properties = {"reference": reference, "title": f"Leitungsbau {reference}", "period": PERIOD, **overrides}
    return feature(geojson_line(coords), **properties)


def collection(*features: dict) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def upload(client, data: bytes, name: str = "plan.geojson", **fields):
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def messages(report: dict, index: int) -> str:
    (rejection,) = [r for r in report["rejected"] if r["index"] == index]
    return " | ".join(rejection["errors"])


def test_it_imports_a_utilitys_plan(api, alice):
    data = collection(plan_feature("SW-2027-001"), plan_feature("SW-2027-002", status="submitted"))
    response = upload(api(alice), data)
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["imported"] is True and report["total"] == 2
    assert report["summary"] == str(MSG_IMPORTED).format(total=2)
    assert [item["reference"] for item in report["created"]] == ["SW-2027-001", "SW-2027-002"]
    works = {w.reference: w for w in Roadwork.objects.all()}
    assert works["SW-2027-001"].organisation == alice.organisation
    assert works["SW-2027-001"].status == RoadworkStatus.DRAFT
    assert works["SW-2027-002"].status == RoadworkStatus.SUBMITTED
    assert works["SW-2027-002"].submitted_at is not None
    # Each has its history, as if created through the API.
    assert RoadworkTransition.objects.filter(roadwork__in=works.values()).count() >= 2


def test_it_accepts_the_flat_spellings_of_a_gis_file(api, alice):
    flat = feature(
        geojson_line(KAISERRING),
        reference="SW-FLAT",
        title="Hausanschluss",
        starts_at="2027-04-01T07:00:00+02:00",
        ends_at="2027-04-03T17:00:00+02:00",
        streets="Kaiserring; Tattersallstraße",
        weekdays="0,1,2",
    )
    response = upload(api(alice), collection(flat))
    assert response.status_code == 201, response.json()
    work = Roadwork.objects.get()
    assert work.street_names == ["Kaiserring", "Tattersallstraße"]
    assert work.weekdays == [0, 1, 2]
    assert work.period.upper.isoformat().startswith("2027-04-03T15:00:00")


def test_it_reports_every_rejected_feature_and_imports_nothing(api, alice, stadtwerke):
    make_roadwork(stadtwerke, reference="SW-TAKEN")
    before = Roadwork.objects.count()
    bad_period = {"lower": "2027-04-20T07:00:00+02:00", "upper": "2027-04-01T07:00:00+02:00"}
    point = feature({"type": "Point", "coordinates": [8.474, 49.484]}, reference="SW-P", title="x", period=PERIOD)
    data = collection(
        plan_feature("SW-OK"),  # 1: fine, but must not stay
        plan_feature("SW-ORDER", period=bad_period),  # 2
        plan_feature("SW-FAR", coords=BERLIN_LINE),  # 3
        plan_feature("SW-COLOUR", colour="red"),  # 4
        plan_feature("SW-TAKEN"),  # 5
        point,  # 6
        plan_feature("SW-HALF", period=None, starts_at="2027-04-01T07:00:00+02:00"),  # 7
        plan_feature("SW-ORG", organisation=999999),  # 8
        plan_feature("SW-OK"),  # 9: the same reference as feature 1
        "not a feature",  # 10
    )
    response = upload(api(alice), data)
    assert response.status_code == 400
    report = response.json()
    assert report["imported"] is False
    assert report["summary"] == str(MSG_REJECTED).format(count=9, total=10)
    assert [r["index"] for r in report["rejected"]] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert str(MSG_PERIOD_ORDER) in messages(report, 2)
    assert "period" in messages(report, 2)
    assert str(MSG_GEOMETRY_OUTSIDE).split("(")[0] in messages(report, 3)
    assert f"colour: {MSG_UNKNOWN_FIELD}" in messages(report, 4)
    assert "reference" in messages(report, 5)
    assert str(MSG_GEOMETRY_TYPE).split("{")[0] in messages(report, 6)
    assert str(MSG_PERIOD_HALF) in messages(report, 7)
    assert str(MSG_ORGANISATION_MISMATCH) in messages(report, 8)
    assert "reference" in messages(report, 9)
    assert report["rejected"][0]["feature_id"] == "SW-ORDER"
    # All or nothing: not even the valid first feature was kept.
    assert Roadwork.objects.count() == before


def test_the_report_is_in_german_by_default(api, alice):
    bad_period = {"lower": "2027-04-20T07:00:00+02:00", "upper": "2027-04-01T07:00:00+02:00"}
    response = upload(api(alice), collection(plan_feature("SW-X", period=bad_period)))
    with translation.override("de"):
        expected = str(MSG_PERIOD_ORDER)
    assert expected in messages(response.json(), 1)


def test_a_dry_run_checks_everything_and_imports_nothing(api, alice):
    response = upload(api(alice), collection(plan_feature("SW-1"), plan_feature("SW-2")), dry_run="true")
    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["dry_run"] is True and report["imported"] is False
    assert report["valid"] == 2
    assert report["summary"] == str(MSG_DRY_RUN_OK).format(total=2)
    assert Roadwork.objects.count() == 0


def test_it_imports_a_geopackage_in_the_utilitys_own_crs(api, alice, tmp_path):
    # The plan comes in ETRS89/UTM 32N, as German utilities keep their data; the import transforms it.
    geom = LineString(KAISERRING, srid=4326).transform(25832, clone=True)
    path = str(tmp_path / "plan.gpkg")
    ogr_write(
        path,
        np.array([bytes(geom.wkb)], dtype=object),
        [
            np.array(["SW-GPKG"], dtype=object),
            np.array(["Gasleitung"], dtype=object),
            np.array(["2027-04-01T07:00:00+02:00"], dtype=object),
            np.array(["2027-04-10T17:00:00+02:00"], dtype=object),
            np.array(["gas"], dtype=object),
        ],
        ["reference", "title", "starts_at", "ends_at", "work_kind"],
        layer="plan",
        driver="GPKG",
        geometry_type="LineString",
        crs="EPSG:25832",
    )
    response = upload(api(alice), Path(path).read_bytes(), name="plan.gpkg")
    assert response.status_code == 201, response.json()
    work = Roadwork.objects.get()
    assert work.reference == "SW-GPKG" and work.work_kind == "gas"
    assert work.geometry.equals_exact(geom, 0.01)


def test_the_authority_imports_for_another_organisation_applicants_do_not(api, bob, alice, erin, stadtwerke, telekom):
    response = upload(api(bob), collection(plan_feature("TK-1")), organisation=str(telekom.pk))
    assert response.status_code == 201, response.json()
    assert Roadwork.objects.get().organisation == telekom
    response = upload(api(alice), collection(plan_feature("TK-2")), organisation=str(telekom.pk))
    assert response.status_code == 403
    assert response.json()["detail"] == str(MSG_ORGANISATION_OTHER)
    assert Roadwork.objects.count() == 1


def test_others_may_not_import(api, carol, dave):
    assert upload(api(None), collection(plan_feature("X"))).status_code == 401
    assert upload(api(dave), collection(plan_feature("X"))).status_code == 403
    assert upload(api(carol), collection(plan_feature("X"))).status_code == 403
    assert Roadwork.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01 not json", MSG_FILE_UNREADABLE),
        (b'{"type": "FeatureCollection", "features": []}', MSG_FILE_NO_FEATURES),
        (
            b'{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:25832"}},'
            b' "features": [{"type": "Feature"}]}',
            MSG_FILE_CRS,
        ),
    ],
)
def test_an_unreadable_file_is_refused_as_a_whole(api, alice, data, message):
    response = upload(api(alice), data)
    assert response.status_code == 400
    assert response.json()["file"] == [str(message)]


def test_the_staff_page_uploads_and_shows_the_report(client, alice):
    client.force_login(alice)
    page = client.get("/gis/import/")
    assert page.status_code == 200 and 'id="gis-import-form"' in page.content.decode()
    bad = collection(plan_feature("SW-1"), plan_feature("SW-2", colour="red"))
    response = client.post("/gis/import/", {"file": SimpleUploadedFile("p.geojson", bad), "dry_run": "on"})
    assert response.status_code == 400
    text = response.content.decode()
    assert 'id="gis-import-rejected"' in text and "SW-2" in text
    good = collection(plan_feature("SW-1"))
    response = client.post("/gis/import/", {"file": SimpleUploadedFile("p.geojson", good)})
    assert response.status_code == 200
    assert 'id="gis-import-created"' in response.content.decode()
    assert Roadwork.objects.get().reference == "SW-1"


def test_the_staff_page_is_not_for_the_public(client, dave):
    assert client.get("/gis/import/").status_code == 302
    client.force_login(dave)
    assert client.get("/gis/import/").status_code == 403


def test_the_command_imports_for_an_organisation(bob, stadtwerke, tmp_path):
    path = tmp_path / "plan.geojson"
    path.write_bytes(collection(plan_feature("CMD-1"), plan_feature("CMD-2", coords=NECKARAU)))
    out = StringIO()
    call_command("import_roadworks", str(path), "--organisation", "Stadtwerke Mannheim", "--dry-run", stdout=out)
    assert Roadwork.objects.count() == 0
    call_command("import_roadworks", str(path), "--organisation", str(stadtwerke.pk), stdout=out)
    assert set(Roadwork.objects.values_list("reference", flat=True)) == {"CMD-1", "CMD-2"}
    assert Roadwork.objects.filter(organisation=stadtwerke, created_by=bob).count() == 2


def test_the_command_fails_and_imports_nothing_on_a_rejection(bob, stadtwerke, tmp_path):
    path = tmp_path / "plan.geojson"
    path.write_bytes(collection(plan_feature("CMD-1"), plan_feature("CMD-2", coords=BERLIN_LINE)))
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import_roadworks", str(path), "--organisation", str(stadtwerke.pk), stdout=out)
    assert "#2 (CMD-2)" in out.getvalue()
    assert Roadwork.objects.count() == 0


def test_an_authority_user_without_an_organisation_must_choose_one_on_the_page_and_in_the_api(client, api):
    from accounts.models import Role, User
    from gisio.services import MSG_ORGANISATION_REQUIRED

    nobody = User.objects.create_user("ohne", password="pw-ohne-1", role=Role.AUTHORITY, organisation=None)
    client.force_login(nobody)
    page = client.post("/gis/import/", {"file": SimpleUploadedFile("p.geojson", collection(plan_feature("X-1")))})
    assert page.status_code == 400
    with translation.override("de"):
        assert str(MSG_ORGANISATION_REQUIRED) in page.content.decode()
    answer = upload(api(nobody), collection(plan_feature("X-1")))
    assert answer.status_code == 400 and "organisation" in answer.json()
    assert not Roadwork.objects.exists()
