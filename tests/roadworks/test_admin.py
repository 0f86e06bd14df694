"""The admin: every page renders with a local Leaflet map, geometry round-trips between WGS84 on the
map and the metric storage SRID, and the admin refuses geometry the API would refuse."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, Point
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from accounts.models import User
from auman.geo import MSG_GEOMETRY_OUTSIDE, MSG_GEOMETRY_TYPE
from roadworks.models import LINE_AND_AREA_TYPES, Conflict, ConflictStatus, Roadwork
from roadworks.services import conflicts_sweep
from tests.conftest import KAISERRING, KAISERRING_NEARBY, geojson_line, line, make_incident, make_roadwork
from traffic.models import Incident

pytestmark = pytest.mark.django_db

HEIDELBERG = [(8.6940, 49.4100), (8.6960, 49.4110)]  # Heidelberg's old town: outside Mannheim
# A script or stylesheet fetched from another host (http:, https: or protocol-relative).
EXTERNAL_ASSET = re.compile(r"""<(?:script|link)\b[^>]*(?:src|href)=["'](?:https?:)?//""", re.IGNORECASE)
GEOMETRY_TEXTAREA = re.compile(r'<textarea id="id_geometry"[^>]*>(.*?)</textarea>', re.DOTALL)


@pytest.fixture
def root(db) -> User:
    """root administers the site: a superuser, the only kind of user the admin is for."""
    return User.objects.create_superuser("root", "root@example.org", "pw-root-1")


@pytest.fixture
def admin_web(root) -> Client:
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def rows(stadtwerke, telekom) -> dict[str, Any]:
    """One row of every model the admin shows: two overlapping roadworks, their conflict, an incident."""
    first = make_roadwork(stadtwerke)
    second = make_roadwork(telekom, title="Glasfaser Kaiserring", geometry=line(KAISERRING_NEARBY))
    conflicts_sweep()
    return {
        "roadwork": first,
        "other_roadwork": second,
        "conflict": Conflict.objects.get(),
        "incident": make_incident(),
    }


def admin_url(model: type, action: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{action}", args=args)


def assert_local_leaflet_map(html: str) -> None:
    assert "leaflet/leaflet.js" in html, "the Leaflet script is not on the page"
    assert "django-leaflet-raw-textarea" in html, "no Leaflet map widget on the page"
    assert not EXTERNAL_ASSET.search(html), EXTERNAL_ASSET.search(html).group(0)


def roadwork_form(organisation_pk: int, geometry: dict | str, **overrides: Any) -> dict[str, Any]:
    data = {
        "reference": "BS-ADMIN-0001",
        "organisation": organisation_pk,
        "title": "Leitungsbau Kaiserring",
        "description": "",
        "street_names": "Kaiserring",
        "status": "approved",
        "geometry": geometry if isinstance(geometry, str) else json.dumps(geometry),
        "period_0": "2027-03-01T07:00:00",
        "period_1": "2027-03-12T17:00:00",
        "work_kind": "water",
        "traffic_management": "lane_closure",
        "direction": "both",
        "lanes_affected": "1",
        "max_width_m": "",
        "max_height_m": "",
        "max_weight_t": "",
        "speed_limit_kmh": "",
        "contact": "",
        "_save": "Sichern",
    }
    data.update(overrides)
    return data


def incident_form(location: dict, **overrides: Any) -> dict[str, Any]:
    data = {
        "kind": "breakdown",
        "status": "reported",
        "street_name": "Kaiserring",
        "description": "",
        "organisation": "",
        "location": json.dumps(location),
        "affected_line": "",
        "lanes_blocked": "1",
        "direction": "unknown",
        "occurred_at_0": "2026-05-04",
        "occurred_at_1": "08:15:00",
        "reported_at_0": "2026-05-04",
        "reported_at_1": "08:20:00",
        "_save": "Sichern",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("model", [Roadwork, Conflict, Incident])
def test_it_renders_every_changelist_for_a_superuser(admin_web, rows, model):
    response = admin_web.get(admin_url(model, "changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize("model", [Roadwork, Conflict, Incident])
def test_it_renders_a_searched_changelist(admin_web, rows, model):
    response = admin_web.get(admin_url(model, "changelist"), {"q": "Kaiser"})
    assert response.status_code == 200


@pytest.mark.parametrize(("model", "column"), [(Roadwork, "6"), (Conflict, "-6")])
def test_it_sorts_by_period(admin_web, rows, model, column):
    response = admin_web.get(admin_url(model, "changelist"), {"o": column})
    assert response.status_code == 200


def test_it_finds_roadworks_by_street_name(admin_web, stadtwerke):
    make_roadwork(stadtwerke, title="Wasserleitung", street_names=["Kaiserring", "Tattersallstraße"])
    response = admin_web.get(admin_url(Roadwork, "changelist"), {"q": "tattersall"})
    assert response.status_code == 200
    assert "Wasserleitung" in response.content.decode()


@pytest.mark.parametrize("name", ["roadwork", "conflict", "incident"])
def test_it_renders_every_change_form_with_a_local_leaflet_map(admin_web, rows, name):
    obj = rows[name]
    response = admin_web.get(admin_url(type(obj), "change", obj.pk))
    assert response.status_code == 200
    assert_local_leaflet_map(response.content.decode())


@pytest.mark.parametrize("model", [Roadwork, Incident])
def test_it_renders_the_add_forms_with_a_local_leaflet_map(admin_web, model):
    response = admin_web.get(admin_url(model, "add"))
    assert response.status_code == 200
    assert_local_leaflet_map(response.content.decode())


def test_it_offers_no_add_form_for_conflicts(admin_web):
    # Conflicts come from detection only.
    assert admin_web.get(admin_url(Conflict, "add")).status_code == 403


def test_it_stores_a_roadwork_saved_through_the_admin_in_the_metric_srid_at_the_right_place(
    admin_web, root, stadtwerke
):
    response = admin_web.post(admin_url(Roadwork, "add"), roadwork_form(stadtwerke.pk, geojson_line(KAISERRING)))
    assert response.status_code == 302, response.content.decode()

    roadwork = Roadwork.objects.get(reference="BS-ADMIN-0001")
    assert roadwork.geometry.srid == settings.AUMAN_SRID == 25832
    # UTM 32N metres, Mannheim: about 462 km east, 5482 km north. Swapped axes would land far away.
    x, y = roadwork.geometry.coords[0]
    assert 455_000 < x < 470_000 and 5_470_000 < y < 5_495_000, (x, y)
    assert roadwork.geometry.equals_exact(line(KAISERRING), tolerance=0.01)
    back = roadwork.geometry.transform(4326, clone=True)
    for (lon, lat), (lon_in, lat_in) in zip(back.coords, KAISERRING, strict=True):
        assert lon == pytest.approx(lon_in, abs=1e-7) and lat == pytest.approx(lat_in, abs=1e-7)
    assert roadwork.created_by == root
    assert roadwork.organisation == stadtwerke


def test_it_shows_the_stored_geometry_in_wgs84_on_the_map_and_keeps_it_on_a_second_save(admin_web, stadtwerke):
    roadwork = make_roadwork(stadtwerke)
    url = admin_url(Roadwork, "change", roadwork.pk)

    shown = GEOMETRY_TEXTAREA.search(admin_web.get(url).content.decode())
    assert shown, "no geometry textarea in the change form"
    geometry = json.loads(shown.group(1).replace("&quot;", '"'))
    assert geometry["type"] == "LineString"
    for (lon, lat), (lon_in, lat_in) in zip(geometry["coordinates"], KAISERRING, strict=True):
        assert lon == pytest.approx(lon_in, abs=1e-6) and lat == pytest.approx(lat_in, abs=1e-6)

    # Saving the form as the map shows it must not move the works.
    data = roadwork_form(
        stadtwerke.pk,
        json.dumps(geometry),
        reference=roadwork.reference,
        period_0="2027-03-01T07:00:00",
        period_1="2027-03-11T07:00:00",
    )
    assert admin_web.post(url, data).status_code == 302
    roadwork.refresh_from_db()
    assert roadwork.geometry.equals_exact(line(KAISERRING), tolerance=0.1)
    assert roadwork.version == 2


def test_it_rejects_a_roadwork_outside_mannheim_with_the_service_area_message(admin_web, stadtwerke):
    response = admin_web.post(admin_url(Roadwork, "add"), roadwork_form(stadtwerke.pk, geojson_line(HEIDELBERG)))
    assert response.status_code == 200
    expected = str(MSG_GEOMETRY_OUTSIDE).format(city=settings.AUMAN_CITY_NAME)
    assert escape(expected) in response.content.decode()
    assert not Roadwork.objects.exists()


def test_it_rejects_a_point_as_roadwork_geometry_with_the_api_message(admin_web, stadtwerke):
    point = {"type": "Point", "coordinates": list(KAISERRING[0])}
    response = admin_web.post(admin_url(Roadwork, "add"), roadwork_form(stadtwerke.pk, point))
    assert response.status_code == 200
    expected = str(MSG_GEOMETRY_TYPE).format(given="Point", allowed=", ".join(LINE_AND_AREA_TYPES))
    assert escape(expected) in response.content.decode()
    assert not Roadwork.objects.exists()


def test_it_stores_an_incident_saved_through_the_admin_in_the_metric_srid(admin_web, root):
    location = {"type": "Point", "coordinates": [8.4750, 49.4846]}
    response = admin_web.post(admin_url(Incident, "add"), incident_form(location))
    assert response.status_code == 302, response.content.decode()

    incident = Incident.objects.get()
    assert incident.location.srid == settings.AUMAN_SRID
    expected = Point(8.4750, 49.4846, srid=4326).transform(settings.AUMAN_SRID, clone=True)
    assert incident.location.distance(expected) < 0.01
    assert incident.reported_by == root
    assert incident.period.lower == incident.occurred_at and incident.period.upper is None


def test_it_rejects_an_incident_outside_mannheim_with_the_service_area_message(admin_web):
    location = {"type": "Point", "coordinates": [8.6940, 49.4100]}
    response = admin_web.post(admin_url(Incident, "add"), incident_form(location))
    assert response.status_code == 200
    assert escape(str(MSG_GEOMETRY_OUTSIDE).format(city=settings.AUMAN_CITY_NAME)) in response.content.decode()
    assert not Incident.objects.exists()


def test_it_lets_a_conflict_be_accepted_with_a_reason_but_keeps_what_detection_found(admin_web, rows):
    conflict = rows["conflict"]
    place_before = GEOSGeometry(conflict.place.ewkb)
    url = admin_url(Conflict, "change", conflict.pk)
    data = {
        "status": ConflictStatus.ACCEPTED,
        "reason": "Arbeiten werden in einer gemeinsamen Baugrube koordiniert.",
        # Read-only fields a tampered form might still send: they must be ignored.
        "rule": "C9",
        "roadwork_a": str(rows["other_roadwork"].pk),
        "_save": "Sichern",
    }
    assert admin_web.post(url, data).status_code == 302

    conflict.refresh_from_db()
    assert conflict.status == ConflictStatus.ACCEPTED
    assert conflict.reason.startswith("Arbeiten werden")
    assert conflict.rule == "C1"
    assert conflict.place.equals_exact(place_before, tolerance=1e-6)
