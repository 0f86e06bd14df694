"""Bad input the other test modules do not yet cover: each answers 4xx with a clear message and stores nothing.

Already covered elsewhere (not repeated here): the roadworks API's malformed GeoJSON, empty and self-intersecting
geometry, outside the service area, swapped lon/lat, foreign CRS, too many vertices, end before start, absurd year,
unknown fields, broken JSON, oversized body and wrong content type (tests/roadworks/test_api_validation.py);
uploads of the wrong type or too large through the API (tests/roadworks/test_detours_attachments.py); the form's
missing fields, end before start and geometry outside the service area (tests/roadworks/test_pages.py). The police
quick entry sends its report to POST /api/v1/incidents/, so the incident API cases below are its cases too.
"""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import translation

from auman.api import MSG_PERIOD_ORDER
from auman.geo import (
    MSG_GEOJSON_MALFORMED,
    MSG_GEOMETRY_CRS,
    MSG_GEOMETRY_INVALID,
    MSG_GEOMETRY_TOO_LARGE,
    MSG_GEOMETRY_TOO_MANY_VERTICES,
)
from roadworks.models import Attachment, Conflict, ConflictStatus, Event, MoratoriumArea, Roadwork, RoadworkStatus
from tests.conftest import KAISERRING, feature, geojson_line, make_incident, make_roadwork
from tests.roadworks.test_pages import form_data
from traffic.models import Incident

pytestmark = pytest.mark.django_db

PERIOD = {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"}
POINT = {"type": "Point", "coordinates": [8.4750, 49.4846]}
# About 5 x 5.6 km (28 km²) inside the city: a drawing mistake, not a works area.
HUGE = {
    "type": "Polygon",
    "coordinates": [[[8.47, 49.45], [8.54, 49.45], [8.54, 49.50], [8.47, 49.50], [8.47, 49.45]]],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[8.4740, 49.4838], [8.4762, 49.4850], [8.4762, 49.4838], [8.4740, 49.4850], [8.4740, 49.4838]]],
}
SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def german(message, **values) -> str:
    with translation.override("de"):
        return str(message).format(**values) if values else str(message)


def _roadwork(**properties):
    return feature(geojson_line(KAISERRING), **{"title": "Fernwärme", "period": PERIOD, **properties})


def _web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Roadworks API ---------------------------------------------------------------------------------------------------


def test_it_rejects_an_area_larger_than_the_limit(api, alice, settings):
    settings.AUMAN_MAX_AREA_KM2 = 25
    response = api(alice).post("/api/v1/roadworks/", {**_roadwork(), "geometry": HUGE}, format="json")
    assert response.status_code == 400, response.content
    message = response.json()["geometry"][0]
    assert message.startswith(german(MSG_GEOMETRY_TOO_LARGE, area="", limit="25").split(" ")[0])
    assert "25" in message and "km²" in message
    assert Roadwork.objects.count() == 0


def test_the_area_limit_is_a_setting(api, alice, settings):
    settings.AUMAN_MAX_AREA_KM2 = 30
    response = api(alice).post("/api/v1/roadworks/", {**_roadwork(), "geometry": HUGE}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(("field", "length"), [("title", 201), ("description", 5001), ("purpose", 2001)])
def test_it_rejects_text_that_is_too_long(api, alice, field, length):
    response = api(alice).post("/api/v1/roadworks/", _roadwork(**{field: "x" * length}), format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert Roadwork.objects.count() == 0


def test_html_in_a_title_is_stored_as_text_and_escaped_on_every_page(api, alice, bob):
    response = api(alice).post("/api/v1/roadworks/", _roadwork(title=SCRIPT), format="json")
    assert response.status_code == 201
    work = Roadwork.objects.get()
    assert work.title == SCRIPT
    assert api(alice).get(f"/api/v1/roadworks/{work.pk}/").json()["properties"]["title"] == SCRIPT
    for url in (f"/baustellen/{work.pk}/", f"/baustellen/{work.pk}/bearbeiten/", "/koordination/"):
        page = _web(bob).get(url).content.decode()
        assert SCRIPT not in page, url
        assert "<img src=x" not in page, url


def test_a_transition_comment_that_is_too_long_is_refused(api, alice, stadtwerke):
    work = make_roadwork(stadtwerke, status=RoadworkStatus.DRAFT)
    response = api(alice).post(
        f"/api/v1/roadworks/{work.pk}/transition/",
        {"to": "submitted", "comment": "x" * 2001, "version": work.version},
        format="json",
    )
    assert response.status_code == 400 and "comment" in response.json()
    assert Roadwork.objects.get().status == RoadworkStatus.DRAFT


def test_a_conflict_reason_that_is_too_long_is_refused(api, bob, stadtwerke):
    from roadworks.services import conflicts_sweep
    from tests.conftest import KAISERRING_NEARBY, line

    make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED)
    make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED, geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    conflict = Conflict.objects.first()
    response = api(bob).post(
        f"/api/v1/conflicts/{conflict.pk}/status/", {"status": "accepted", "reason": "x" * 2001}, format="json"
    )
    assert response.status_code == 400 and "reason" in response.json()
    assert Conflict.objects.get(pk=conflict.pk).status == ConflictStatus.OPEN


# --- Incidents API (also the police quick entry) -------------------------------------------------------------------


def _incident(**properties):
    return feature(POINT, kind="accident", **properties)


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Point", "coordinates": []}, MSG_GEOJSON_MALFORMED),
        ({**POINT, "crs": {"type": "name", "properties": {"name": "EPSG:25832"}}}, MSG_GEOMETRY_CRS),
        ({"type": "Point", "coordinates": "8.47,49.48"}, None),
        ({"type": "Point", "coordinates": [49.4846, 8.4750]}, None),  # lat/lon swapped: outside the city
    ],
    ids=["empty", "foreign-crs", "malformed", "swapped"],
)
def test_the_incident_api_rejects_bad_geometry(api, carol, geometry, message):
    response = api(carol).post("/api/v1/incidents/", {**_incident(), "geometry": geometry}, format="json")
    # The incident's geometry is its location; the answer names that field.
    assert response.status_code == 400 and "location" in response.json(), response.content
    if message is not None:
        assert german(message).split("{")[0] in response.json()["location"][0]
    assert Incident.objects.count() == 0


@pytest.mark.parametrize(
    "properties",
    [
        {"occurred_at": "9999-01-01T00:00:00+01:00"},
        {"occurred_at": "0001-01-01T00:00:00+01:00"},
        {"occurred_at": "gestern"},
        {"description": "x" * 2001},
        {"street_name": "x" * 201},
        {"lanes_blocked": -1},
        {"lanes_blocked": "viele"},
    ],
    ids=["year-9999", "year-1", "no-date", "long-description", "long-street", "negative-lanes", "text-lanes"],
)
def test_the_incident_api_rejects_bad_properties(api, carol, properties):
    response = api(carol).post("/api/v1/incidents/", _incident(**properties), format="json")
    assert response.status_code == 400, response.content
    assert set(properties) & set(response.json()), response.json()
    assert Incident.objects.count() == 0


def test_the_incident_api_rejects_broken_json_wrong_content_type_and_oversized_bodies(api, carol, settings):
    client = api(carol)
    broken = client.post("/api/v1/incidents/", '{"type": "Feature", ', content_type="application/json")
    assert broken.status_code == 400 and broken.json()["detail"]
    form = client.post("/api/v1/incidents/", "kind=accident", content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415 and form.json()["detail"]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    big = client.post("/api/v1/incidents/", _incident(description="x" * 20_000), format="json")
    assert big.status_code == 413 and big.json()["detail"]
    assert Incident.objects.count() == 0


def test_html_in_an_incident_is_stored_as_text_and_escaped_on_the_police_list(api, carol):
    response = api(carol).post("/api/v1/incidents/", _incident(street_name=SCRIPT[:200]), format="json")
    assert response.status_code == 201
    assert Incident.objects.get().street_name == SCRIPT[:200]
    page = _web(carol).get("/polizei/").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page


def test_an_incident_update_with_absurd_times_changes_nothing(api, carol):
    incident = make_incident()
    response = api(carol).patch(
        f"/api/v1/incidents/{incident.pk}/",
        {"properties": {"occurred_at": "3000-01-01T00:00:00Z", "version": incident.version}},
        format="json",
    )
    assert response.status_code == 400
    assert Incident.objects.get().occurred_at == incident.occurred_at


# --- Rule layers ---------------------------------------------------------------------------------------------------


def test_a_moratorium_larger_than_the_limit_is_refused(api, bob, settings):
    settings.AUMAN_MAX_AREA_KM2 = 25
    response = api(bob).post(
        "/api/v1/moratoria/", feature(HUGE, name="Ganze Stadt", resurfaced_on="2025-04-01"), format="json"
    )
    assert response.status_code == 400 and "geometry" in response.json()
    assert MoratoriumArea.objects.count() == 0


def test_an_event_in_an_absurd_year_is_refused(api, bob):
    period = {"lower": "9999-03-05T10:00:00+01:00", "upper": "9999-03-05T22:00:00+01:00"}
    response = api(bob).post("/api/v1/events/", feature(HUGE, name="Fern", period=period), format="json")
    assert response.status_code == 400
    assert Event.objects.count() == 0


# --- The application form (page) --------------------------------------------------------------------------------------

CREATE = "/baustellen/neu/"


def _vertices(count: int) -> dict:
    step = 0.002 / count
    return geojson_line([(8.4740 + i * step, 49.4840 + i * step / 2) for i in range(count)])


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (BOWTIE, MSG_GEOMETRY_INVALID),
        ({"type": "Polygon", "coordinates": []}, MSG_GEOJSON_MALFORMED),
        (HUGE, MSG_GEOMETRY_TOO_LARGE),
        ({**geojson_line(KAISERRING), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}, MSG_GEOMETRY_CRS),
        ("{not json", MSG_GEOJSON_MALFORMED),
    ],
    ids=["self-intersecting", "no-coordinates", "too-large", "foreign-crs", "malformed"],
)
def test_the_form_refuses_bad_geometry_with_a_message_beside_the_map(alice, settings, geometry, message):
    settings.AUMAN_MAX_AREA_KM2 = 25
    raw = geometry if isinstance(geometry, str) else json.dumps(geometry)
    response = _web(alice).post(CREATE, form_data(geometry=raw))
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    prefix = german(message).split("{")[0].strip()[:20]
    assert prefix in page, prefix
    assert Roadwork.objects.count() == 0


def test_the_form_refuses_too_many_vertices(alice, settings):
    settings.AUMAN_MAX_VERTICES = 50
    response = _web(alice).post(CREATE, form_data(geometry=json.dumps(_vertices(51))))
    assert response.status_code == 400
    assert german(MSG_GEOMETRY_TOO_MANY_VERTICES, count=51, limit=50) in html.unescape(response.content.decode())
    assert Roadwork.objects.count() == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"period_start": "9999-03-01T07:00", "period_end": "9999-03-05T07:00"},
        {"period_start": "2027-03-05T07:00", "period_end": "2027-03-01T07:00"},
        {"period_start": "morgen", "period_end": "übermorgen"},
        {"title": "x" * 201},
        {"description": "x" * 5001},
    ],
    ids=["absurd-year", "end-before-start", "no-dates", "long-title", "long-description"],
)
def test_the_form_refuses_bad_times_and_text(alice, overrides):
    response = _web(alice).post(CREATE, form_data(**overrides))
    assert response.status_code == 400
    assert Roadwork.objects.count() == 0


def test_the_form_names_end_before_start(alice):
    response = _web(alice).post(CREATE, form_data(period_start="2027-03-05T07:00", period_end="2027-03-01T07:00"))
    assert html.escape(german(MSG_PERIOD_ORDER)) in response.content.decode()


def test_an_oversized_form_is_refused_and_stores_nothing(alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = _web(alice).post(CREATE, form_data(description="x" * 20_000))
    assert response.status_code in (400, 413)
    assert Roadwork.objects.count() == 0


def test_the_upload_page_refuses_a_file_over_the_limit(alice, stadtwerke, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.AUMAN_MAX_ATTACHMENT_BYTES = 1024
    draft = make_roadwork(stadtwerke, status=RoadworkStatus.DRAFT)
    upload = SimpleUploadedFile("plan.pdf", b"%PDF-1.7\n" + b"0" * 4096, content_type="application/pdf")
    response = _web(alice).post(f"/baustellen/{draft.pk}/anhaenge/", {"file": upload, "kind": "traffic_sign_plan"})
    assert response.status_code in (400, 413)
    assert Attachment.objects.count() == 0
    assert not any(tmp_path.rglob("*.pdf"))
