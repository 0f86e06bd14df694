"""The application's parts: detours (nested in the Feature), pedestrian route, daily windows, attachments."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from auman.api import MSG_UNKNOWN_FIELD
from auman.geo import MSG_GEOMETRY_OUTSIDE
from roadworks.models import Attachment, Detour, Roadwork, RoadworkStatus
from roadworks.services import (
    MSG_DAILY_WINDOW_EMPTY,
    MSG_DAILY_WINDOW_INCOMPLETE,
    MSG_DETOUR_PERIOD,
    MSG_FILE_EMPTY,
    MSG_FILE_REQUIRED,
    MSG_FILE_TYPE,
    clean_file_name,
)
from tests.conftest import KAISERRING, KAISERRING_NEARBY, NECKARAU, feature, geojson_line, line, make_roadwork

pytestmark = pytest.mark.django_db

S = RoadworkStatus
PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}
HEIDELBERG = [(8.6940, 49.4100), (8.6960, 49.4110)]

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def detour(name: str = "Umleitung Nord", coords=KAISERRING_NEARBY, **extra) -> dict:
    return {"name": name, "geometry": geojson_line(coords), **extra}


def create(client, **properties):
    body = feature(geojson_line(KAISERRING), **{"title": "Fernwärme", "period": PERIOD, **properties})
    return client.post("/api/v1/roadworks/", body, format="json")


# --- Detours ------------------------------------------------------------------------------------


def test_a_roadwork_carries_several_detours_in_wgs84(api, alice):
    multi = {
        "type": "MultiLineString",
        "coordinates": [[list(c) for c in KAISERRING_NEARBY], [list(c) for c in NECKARAU]],
    }
    response = create(
        api(alice),
        detours=[
            detour(
                description="Über den Ring", period={"lower": PERIOD["lower"], "upper": "2027-03-05T17:00:00+01:00"}
            ),
            {"name": "Umleitung Süd", "geometry": multi},
        ],
    )

    assert response.status_code == 201, response.json()
    detours = response.json()["properties"]["detours"]
    assert [d["name"] for d in detours] == ["Umleitung Nord", "Umleitung Süd"]
    assert detours[0]["geometry"]["coordinates"][0] == pytest.approx(list(KAISERRING_NEARBY[0]), abs=1e-6)
    assert detours[0]["period"]["upper"].startswith("2027-03-05T17:00:00")
    assert detours[1]["period"] is None and detours[1]["geometry"]["type"] == "MultiLineString"
    stored = Detour.objects.order_by("id")
    assert [d.geometry.srid for d in stored] == [settings.AUMAN_SRID] * 2
    assert stored[0].geometry.equals_exact(line(KAISERRING_NEARBY), tolerance=0.01)


def test_sending_detours_replaces_them_and_leaving_them_out_keeps_them(api, alice):
    url = create(api(alice), detours=[detour("A"), detour("B")]).json()["properties"]["url"]

    kept = api(alice).patch(url, {"properties": {"title": "Neu", "version": 1}}, format="json")
    assert [d["name"] for d in kept.json()["properties"]["detours"]] == ["A", "B"]

    replaced = api(alice).patch(url, {"properties": {"detours": [detour("C")], "version": 2}}, format="json")
    assert [d["name"] for d in replaced.json()["properties"]["detours"]] == ["C"]

    cleared = api(alice).patch(url, {"properties": {"detours": [], "version": 3}}, format="json")
    assert cleared.json()["properties"]["detours"] == []
    assert not Detour.objects.exists()


def test_a_get_result_can_be_sent_back_with_its_detour_ids(api, alice):
    created = create(api(alice), detours=[detour("A")]).json()
    properties = created["properties"]
    response = api(alice).put(properties["url"], {**created, "properties": {**properties, "version": 1}}, format="json")
    assert response.status_code == 200, response.json()
    assert [d["name"] for d in response.json()["properties"]["detours"]] == ["A"]


def test_a_detour_keeps_its_id_when_sent_back_unchanged_or_named_by_it(api, alice):
    created = create(api(alice), detours=[detour("A"), detour("B", coords=NECKARAU)]).json()["properties"]
    a, b = created["detours"]

    # Sent again without ids and unchanged (a client that rewrites the whole list): the same rows.
    same = api(alice).patch(
        created["url"], {"properties": {"detours": [detour("A"), detour("B", coords=NECKARAU)], "version": 1}},
        format="json",
    ).json()["properties"]  # fmt: skip
    assert [d["id"] for d in same["detours"]] == [a["id"], b["id"]]

    # Named by id: changed in place; left out: gone; without an id and changed: new.
    changed = (
        api(alice)
        .patch(
            created["url"],
            {"properties": {"detours": [{**detour("A2"), "id": a["id"]}, detour("C", coords=NECKARAU)], "version": 2}},
            format="json",
        )
        .json()["properties"]
    )
    assert changed["detours"][0] == {**changed["detours"][0], "id": a["id"], "name": "A2"}
    assert changed["detours"][1]["name"] == "C" and changed["detours"][1]["id"] not in (a["id"], b["id"])
    assert sorted(Detour.objects.values_list("name", flat=True)) == ["A2", "C"]


def test_an_id_of_another_roadworks_detour_makes_a_new_detour(api, alice):
    other = create(api(alice), detours=[detour("Fremd")]).json()["properties"]["detours"][0]
    mine = create(api(alice), detours=[]).json()["properties"]

    response = api(alice).patch(
        mine["url"], {"properties": {"detours": [{**detour("Meine"), "id": other["id"]}], "version": 1}}, format="json"
    )

    assert response.status_code == 200, response.json()
    (created,) = response.json()["properties"]["detours"]
    assert created["id"] != other["id"] and created["name"] == "Meine"
    assert Detour.objects.get(pk=other["id"]).name == "Fremd"  # the other roadwork's detour is untouched


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"name": "P", "geometry": {"type": "Point", "coordinates": [8.47, 49.48]}}, "geometry", "Point"),
        (detour(coords=HEIDELBERG), "geometry", str(MSG_GEOMETRY_OUTSIDE).split("(")[0].strip()),
        (detour(colour="red"), "colour", str(MSG_UNKNOWN_FIELD)),
        ({"geometry": geojson_line(KAISERRING_NEARBY)}, "name", None),
        (detour(period={"lower": "2027-03-05T07:00:00+01:00"}), "period", None),
    ],
)
def test_a_bad_detour_is_refused_naming_its_position_and_field(api, alice, bad, field, message):
    response = create(api(alice), detours=[detour("Gut"), bad])
    assert response.status_code == 400, response.content
    # Errors are keyed by the detour's position: the first detour is fine, the second is not.
    errors = response.json()["detours"]
    assert set(errors) == {"1"}, errors
    assert field in errors["1"], errors
    if message is not None:
        assert any(message in text for text in errors["1"][field]), errors
    assert not Roadwork.objects.exists() and not Detour.objects.exists()


def test_a_detour_must_be_an_object(api, alice):
    response = create(api(alice), detours=["über den Ring"])
    assert response.status_code == 400 and "detours" in response.json()


def test_a_detour_period_lies_within_the_roadworks(api, alice):
    outside = {"lower": "2027-02-20T07:00:00+01:00", "upper": "2027-03-05T17:00:00+01:00"}
    response = create(api(alice), detours=[detour(period=outside)])
    assert response.status_code == 400
    assert response.json()["detours"] == [str(MSG_DETOUR_PERIOD).format(number=1)]
    assert not Roadwork.objects.exists()


def test_shortening_the_roadwork_must_keep_its_detours_inside(api, alice):
    inner = {"lower": "2027-03-08T07:00:00+01:00", "upper": "2027-03-10T17:00:00+01:00"}
    url = create(api(alice), detours=[detour(period=inner)]).json()["properties"]["url"]
    shorter = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-05T17:00:00+01:00"}
    response = api(alice).patch(url, {"properties": {"period": shorter, "version": 1}}, format="json")
    assert response.status_code == 400 and "detours" in response.json()


def test_at_most_twenty_detours(api, alice):
    response = create(api(alice), detours=[detour(f"D{i}") for i in range(21)])
    assert response.status_code == 400 and "detours" in response.json()


# --- Pedestrian route, daily windows, contacts ----------------------------------------------------


def test_a_footway_closure_names_its_pedestrian_route(api, alice):
    response = create(
        api(alice), traffic_management="footway_closure", pedestrian_route=geojson_line(KAISERRING_NEARBY)
    )
    assert response.status_code == 201, response.json()
    assert response.json()["properties"]["pedestrian_route"]["type"] == "LineString"
    assert Roadwork.objects.get().pedestrian_route.srid == settings.AUMAN_SRID
    polygon = {"type": "Polygon", "coordinates": [[[8.474, 49.484], [8.475, 49.484], [8.475, 49.485], [8.474, 49.484]]]}
    assert create(api(alice), reference="X-2", pedestrian_route=polygon).status_code == 400


def test_a_night_window_over_midnight_on_weekdays(api, alice):
    response = create(api(alice), daily_start="20:00", daily_end="05:00", weekdays=[4, 0, 1, 2, 3])
    assert response.status_code == 201, response.json()
    properties = response.json()["properties"]
    assert (properties["daily_start"], properties["daily_end"]) == ("20:00:00", "05:00:00")
    assert properties["weekdays"] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("properties", "field", "message"),
    [
        ({"daily_start": "20:00"}, "daily_end", MSG_DAILY_WINDOW_INCOMPLETE),
        ({"daily_end": "05:00"}, "daily_start", MSG_DAILY_WINDOW_INCOMPLETE),
        ({"daily_start": "07:00", "daily_end": "07:00"}, "daily_end", MSG_DAILY_WINDOW_EMPTY),
        ({"weekdays": [0, 7]}, "weekdays", None),
        ({"weekdays": [1, 1]}, "weekdays", None),
        ({"daily_start": "25:00", "daily_end": "05:00"}, "daily_start", None),
    ],
)
def test_a_bad_daily_window_is_refused(api, alice, properties, field, message):
    response = create(api(alice), **properties)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    if message is not None:
        assert response.json()[field] == [str(message)]
    assert not Roadwork.objects.exists()


def test_the_database_refuses_a_half_window_or_a_bad_weekday(stadtwerke):
    from django.db import IntegrityError, transaction
    from django.utils.dateparse import parse_time

    with transaction.atomic(), pytest.raises(IntegrityError):
        make_roadwork(stadtwerke, daily_start=parse_time("20:00"))
    with transaction.atomic(), pytest.raises(IntegrityError):
        make_roadwork(stadtwerke, weekdays=[9])


def test_contacts_are_stored_and_shown_to_the_applicant_and_authority_only(api, alice, bob, erin):
    contact = {"contact_name": "Bauleitung Netze", "contact_phone": "0621 000-2000", "contact_email": "bau@example.org"}
    url = create(api(alice), purpose="Hausanschlüsse", **contact).json()["properties"]["url"]
    work = Roadwork.objects.get()
    Roadwork.objects.filter(pk=work.pk).update(status=S.APPROVED)
    for user in (alice, bob):
        properties = api(user).get(url).json()["properties"]
        assert {key: properties[key] for key in contact} == contact
        assert properties["purpose"] == "Hausanschlüsse"
    for user in (erin, None):
        properties = api(user).get(url).json()["properties"]
        assert not set(contact) & set(properties)
    assert create(api(alice), reference="X-3", contact_email="not-an-address").status_code == 400


# --- Attachments -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(client, work: Roadwork, content: bytes, name: str = "plan.pdf", **data):
    body = {"file": SimpleUploadedFile(name, content, content_type="application/octet-stream"), **data}
    return client.post(f"/api/v1/roadworks/{work.pk}/attachments/", body, format="multipart")


@pytest.fixture
def draft(stadtwerke) -> Roadwork:
    return make_roadwork(stadtwerke, status=S.DRAFT)


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        (PDF, "Verkehrszeichenplan.pdf", "application/pdf"),
        (PNG, "foto.png", "image/png"),
        (JPEG, "foto.JPG", "image/jpeg"),
    ],
)
def test_pdf_png_and_jpeg_are_stored_under_their_id(api, alice, draft, media_root, content, name, content_type):
    response = upload(api(alice), draft, content, name, kind="traffic_sign_plan")

    assert response.status_code == 201, response.json()
    body = response.json()
    attachment = Attachment.objects.get()
    assert (body["original_name"], body["content_type"], body["size"]) == (name, content_type, len(content))
    assert body["kind"] == "traffic_sign_plan" and body["uploaded_by"] == "alice"
    assert attachment.file.name == f"attachments/{attachment.pk}"
    assert (media_root / "attachments" / str(attachment.pk)).read_bytes() == content
    assert response["Location"].endswith(f"/api/v1/roadworks/{draft.pk}/attachments/{attachment.pk}/")


def test_the_type_comes_from_the_content_not_the_name(api, alice, draft, media_root):
    response = upload(api(alice), draft, b"#!/bin/sh\necho hello\n", "plan.pdf")
    assert response.status_code == 415
    assert response.json()["detail"] == str(MSG_FILE_TYPE)
    png_named_pdf = upload(api(alice), draft, PNG, "plan.pdf")
    assert png_named_pdf.status_code == 415
    assert "PNG" in png_named_pdf.json()["detail"]
    assert not Attachment.objects.exists()
    assert not (media_root / "attachments").exists() or not any((media_root / "attachments").iterdir())


def test_a_file_over_the_limit_is_refused_with_413(api, alice, draft, settings):
    settings.AUMAN_MAX_ATTACHMENT_BYTES = 2048
    response = upload(api(alice), draft, PDF + b"0" * 4000)
    assert response.status_code == 413
    assert "2048" in response.json()["detail"]
    assert not Attachment.objects.exists()


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(api, alice, draft, settings):
    settings.AUMAN_MAX_ATTACHMENT_BYTES = 1024
    response = upload(api(alice), draft, PDF + b"0" * 200_000)
    assert response.status_code == 413
    assert not Attachment.objects.exists()


def test_an_empty_or_missing_file_is_refused(api, alice, draft):
    empty = upload(api(alice), draft, b"")
    assert empty.status_code == 400 and empty.json()["file"] == [str(MSG_FILE_EMPTY)]
    missing = api(alice).post(f"/api/v1/roadworks/{draft.pk}/attachments/", {"kind": "other"}, format="multipart")
    assert missing.status_code == 400 and missing.json()["file"] == [str(MSG_FILE_REQUIRED)]


def test_an_upload_must_be_multipart(api, alice, draft):
    response = api(alice).post(f"/api/v1/roadworks/{draft.pk}/attachments/", {"file": "JVBERi0="}, format="json")
    assert response.status_code == 415


def test_an_unknown_kind_or_field_is_refused(api, alice, draft):
    assert upload(api(alice), draft, PDF, kind="selfie").status_code == 400
    assert upload(api(alice), draft, PDF, colour="red").status_code == 400
    assert not Attachment.objects.exists()


def test_a_file_name_cannot_reach_the_file_system(api, alice, draft, media_root):
    response = upload(api(alice), draft, PDF, "../../etc/passwd.pdf")
    assert response.status_code == 201
    attachment = Attachment.objects.get()
    assert attachment.original_name == "passwd.pdf"
    assert Path(attachment.file.path).parent == media_root / "attachments"
    assert clean_file_name("C:\\Users\\x\\plan\x00.pdf") == "plan_.pdf"
    assert len(clean_file_name("a" * 300 + ".pdf")) == 255


@pytest.mark.parametrize(("status", "code"), [(S.DRAFT, 201), (S.MODIFICATION_REQUESTED, 201), (S.SUBMITTED, 403)])
def test_an_applicant_attaches_files_while_it_may_edit(api, alice, stadtwerke, status, code):
    work = make_roadwork(stadtwerke, status=status)
    assert upload(api(alice), work, PDF).status_code == code


def test_the_authority_attaches_files_in_any_status(api, bob, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED)
    assert upload(api(bob), work, PDF).status_code == 201


def test_strangers_cannot_attach(api, erin, carol, stadtwerke):
    work = make_roadwork(stadtwerke, status=S.APPROVED)
    assert upload(api(erin), work, PDF).status_code == 403
    assert upload(api(carol), work, PDF).status_code == 403
    assert upload(api(None), work, PDF).status_code == 401
    draft = make_roadwork(stadtwerke, status=S.DRAFT)
    assert upload(api(erin), draft, PDF).status_code == 404


@pytest.fixture
def with_file(api, alice, stadtwerke) -> tuple[Roadwork, str]:
    work = make_roadwork(stadtwerke, status=S.DRAFT)
    url = upload(api(alice), work, PDF, "Verkehrszeichenplan Kaiserring.pdf").json()["url"]
    Roadwork.objects.filter(pk=work.pk).update(status=S.APPROVED)
    return work, url


@pytest.mark.parametrize("persona", ["alice", "bob", "carol"])
def test_the_applicant_authority_and_police_list_and_download_files(api, request, with_file, persona):
    work, url = with_file
    client = api(request.getfixturevalue(persona))

    listing = client.get(f"/api/v1/roadworks/{work.pk}/attachments/")
    download = client.get(url)

    assert listing.status_code == 200
    assert [a["original_name"] for a in listing.json()] == ["Verkehrszeichenplan Kaiserring.pdf"]
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"].startswith("attachment;")
    assert "Verkehrszeichenplan" in download["Content-Disposition"]
    assert b"".join(download.streaming_content) == PDF


@pytest.mark.parametrize(("persona", "code"), [("erin", 403), ("dave", 403), (None, 401)])
def test_others_neither_list_nor_download_files_of_a_public_work(api, request, with_file, persona, code):
    work, url = with_file
    client = api(request.getfixturevalue(persona) if persona else None)
    assert client.get(f"/api/v1/roadworks/{work.pk}/attachments/").status_code == code
    assert client.get(url).status_code == code


def test_a_file_of_another_work_or_a_lost_file_answers_404(api, bob, with_file, stadtwerke):
    work, url = with_file
    other = make_roadwork(stadtwerke, status=S.APPROVED)
    attachment = Attachment.objects.get()
    assert api(bob).get(f"/api/v1/roadworks/{other.pk}/attachments/{attachment.pk}/").status_code == 404
    assert api(bob).get(f"/api/v1/roadworks/{work.pk}/attachments/{uuid.uuid4()}/").status_code == 404
    Path(attachment.file.path).unlink()
    assert api(bob).get(url).status_code == 404
