"""The map page's configuration (maps/page.py, merged by views.index) and the detours in the map's GeoJSON.

The browser tests (test_map_browser_client.py) show what map.js does with these; here what each user is handed.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from maps.page import DATE_RANGE_DAYS
from roadworks.models import Detour
from tests.conftest import KAISERRING, features_of, line, make_roadwork, period

pytestmark = pytest.mark.django_db

LUISENRING = [(8.4615, 49.4905), (8.4660, 49.4930)]


def config_for(user) -> dict:
    """The configuration as map.js reads it: the json_script element of the page."""
    client = Client()
    if user is not None:
        client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    found = re.search(
        r'<script id="auman-map-config" type="application/json">(.*?)</script>', response.content.decode()
    )
    return json.loads(found.group(1))


def layer_names(config: dict) -> list[str]:
    return [layer["name"] for layer in config["layerDefs"]]


def test_it_hands_the_public_roadworks_detours_and_incidents_only_and_no_links():
    config = config_for(None)
    assert layer_names(config) == ["roadworks", "detours", "incidents"]
    assert config["applicationUrl"] is None and config["conflictUrl"] is None
    assert config["live"]["enabled"] is False
    # The base map's URL stays the base map's: the vector tiles have their own key.
    assert config["vectorTileUrl"] == "/tiles/{layer}/{z}/{x}/{y}.mvt"
    assert config["districtsUrl"] == "/api/v1/districts/"


def test_it_hands_staff_the_accidents_the_rule_layers_links_and_live_updates(bob):
    config = config_for(bob)
    assert layer_names(config) == [
        "roadworks",
        "detours",
        "incidents",
        "accidents",
        "black_spots",
        "moratoria",
        "events",
        "corridors",
        "conflicts",
        "external",
    ]
    on = {layer["name"] for layer in config["layerDefs"] if layer["on"]}
    assert on == {"roadworks", "detours", "incidents", "black_spots"}
    assert config["applicationUrl"] == "/baustellen/{id}/"
    assert config["conflictUrl"] == "/konflikte/{id}/"
    assert config["live"] == {"enabled": True, "seconds": 30}
    moratoria = next(layer for layer in config["layerDefs"] if layer["name"] == "moratoria")
    assert moratoria["url"] == "/api/v1/moratoria/"
    external = next(layer for layer in config["layerDefs"] if layer["name"] == "external")
    assert (external["url"], external["on"]) == ("/api/v1/external-items/", False)


def test_an_applicant_gets_the_rule_layers_but_no_accidents_and_no_live_updates(alice):
    config = config_for(alice)
    assert "accidents" not in layer_names(config)
    assert {"moratoria", "events", "corridors", "conflicts"} <= set(layer_names(config))
    assert config["applicationUrl"] is None
    assert config["live"]["enabled"] is False


def test_the_day_range_runs_from_today_for_a_year():
    config = config_for(None)
    today = timezone.localdate()
    assert config["today"] == today.isoformat()
    assert config["maxDate"] == (today + timedelta(days=DATE_RANGE_DAYS)).isoformat()


def test_the_page_has_the_list_view_the_controls_and_no_inline_script():
    response = Client().get("/")
    html = response.content.decode()
    for marker in ('id="map-list"', 'id="map-date"', 'type="range"', 'id="map-street"', 'href="#map-list-heading"'):
        assert marker in html
    # Only json_script data and script files: the Content-Security-Policy allows no inline code.
    assert html.count("<script>") == 0
    assert "onclick" not in html and 'style="' not in html


def test_a_roadworks_feature_carries_its_detours_in_wgs84(stadtwerke):
    work = make_roadwork(stadtwerke, geometry=line(KAISERRING), period=period(timezone.now(), 5))
    detour = Detour.objects.create(roadwork=work, name="<b>Umleitung</b>", geometry=line(LUISENRING))
    bare = make_roadwork(stadtwerke, geometry=line(KAISERRING), period=period(timezone.now(), 5))
    features = {f["id"]: f for f in features_of(Client().get("/map/features.geojson", {"layers": "roadworks"}))}
    detours = features[str(work.pk)]["properties"]["detours"]
    assert len(detours) == 1
    assert detours[0]["id"] == detour.pk and detours[0]["name"] == "<b>Umleitung</b>"
    assert detours[0]["geometry"]["type"] == "LineString"
    assert detours[0]["geometry"]["coordinates"][0] == pytest.approx(list(LUISENRING[0]), abs=1e-6)
    assert detours[0]["period"] is None
    assert features[str(bare.pk)]["properties"]["detours"] == []
