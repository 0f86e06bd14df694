"""The map page in Debian's Chromium: drawing, popups as text, reloading on pan, nothing fetched from elsewhere.

Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.gis.geos import Polygon
from django.core.management import call_command
from django.utils import timezone

from maps.selectors import map_features
from roadworks.models import RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, NECKARAU, line, local, make_incident, make_roadwork, period
from traffic.models import IncidentKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECTION = "<img src=x onerror=alert(1)>"
# Streets in the centre of Mannheim, all inside the map's first view (zoom 13 around the city centre).
LUISENRING = [(8.4615, 49.4905), (8.4660, 49.4930)]
RING_AREA = (8.4685, 49.4868, 8.4705, 49.4880)


def running():
    return period(timezone.now() - timedelta(days=1), 10)


def area(bbox: tuple[float, float, float, float]):
    polygon = Polygon.from_bbox(bbox)
    polygon.srid = 4326
    return polygon.transform(25832, clone=True)


def wait_for_popup(page) -> None:
    # Leaflet fades popups in; a screenshot taken earlier shows the map through them.
    page.wait_for_function("getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")


def open_map(browser_page, expected_features: int) -> None:
    page = browser_page.page
    page.goto(browser_page.base_url + "/")
    page.wait_for_function(f"document.body.dataset.featuresLoaded === '{expected_features}'")


def test_the_map_draws_roadworks_by_impact_and_incidents_with_a_legend(browser_page, stadtwerke):
    make_roadwork(
        stadtwerke,
        title="Vollsperrung Kaiserring",
        geometry=line(KAISERRING),
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
        status=RoadworkStatus.IN_PROGRESS,
    )
    make_roadwork(
        stadtwerke,
        title="Fahrstreifensperrung Luisenring",
        geometry=line(LUISENRING),
        period=period(local(2030, 3, 1, 7), 10),
        traffic_management=TrafficManagement.LANE_CLOSURE,
    )
    make_roadwork(
        stadtwerke,
        title="Gehwegsperrung am Ring",
        geometry=area(RING_AREA),
        period=running(),
        traffic_management=TrafficManagement.FOOTWAY_CLOSURE,
    )
    make_incident(kind=IncidentKind.ACCIDENT)
    page = browser_page.page

    open_map(browser_page, 4)

    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("path.auman-roadwork").count() == 3
    assert page.locator("path.auman-roadwork.auman-impact-closure.auman-phase-active").count() == 1
    assert page.locator("path.auman-roadwork.auman-impact-restriction.auman-phase-planned").count() == 1
    assert page.locator("path.auman-roadwork.auman-impact-minor.auman-area").count() == 1
    assert page.locator(".auman-incident").count() == 1
    assert page.locator(".auman-incident[data-kind='accident']").count() == 1
    assert page.evaluate("[aumanMap.featureCount('roadworks'), aumanMap.featureCount('incidents')]") == [3, 1]
    # Closure, restriction and minor must look different: colours come from the stylesheet.
    strokes = page.evaluate(
        """['closure', 'restriction', 'minor'].map((impact) =>
            getComputedStyle(document.querySelector(`path.auman-roadwork.auman-impact-${impact}`)).stroke)"""
    )
    assert len(set(strokes)) == 3, strokes
    planned_dash = page.evaluate("getComputedStyle(document.querySelector('path.auman-phase-planned')).strokeDasharray")
    active_dash = page.evaluate("getComputedStyle(document.querySelector('path.auman-phase-active')).strokeDasharray")
    assert planned_dash != "none" and active_dash == "none"

    legend = page.locator(".leaflet-control-container #map-legend")
    assert legend.is_visible()
    assert legend.locator("[data-impact]").count() == 3
    assert legend.locator("[data-kind='accident'] svg").is_visible()
    # The base map is off in tests (no tile server), and the page must not need one.
    assert page.locator(".leaflet-tile").count() == 0

    browser_page.screenshot("map-overview")
    browser_page.assert_clean()


def test_a_popup_shows_the_title_as_text_never_as_markup(browser_page, stadtwerke):
    make_roadwork(
        stadtwerke,
        title=INJECTION,
        street_names=["<b>Kaiserring</b>"],
        geometry=line(KAISERRING),
        # 07:00 in Berlin is 06:00 UTC; the browser runs in UTC, so this shows the map converts itself.
        period=period(local(2030, 3, 1, 7), 10),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    make_incident(kind=IncidentKind.ACCIDENT, street_name="<i>Luisenring</i>", location=line(LUISENRING).centroid)
    page = browser_page.page
    open_map(browser_page, 2)
    images_before = page.evaluate("document.images.length")

    page.locator("path.auman-roadwork").first.click()
    popup = page.locator(".leaflet-popup-content .auman-popup-roadwork")
    popup.wait_for()
    wait_for_popup(page)
    assert popup.locator(".auman-popup-title").text_content() == INJECTION
    assert "<b>Kaiserring</b>" in popup.text_content()
    assert "01.03.2030, 07:00" in popup.text_content()
    assert "11.03.2030, 07:00" in popup.text_content()
    assert popup.locator("img, b").count() == 0
    assert page.evaluate("document.images.length") == images_before
    browser_page.screenshot("map-popup-roadwork")

    page.locator(".leaflet-popup-close-button").click()
    popup.wait_for(state="detached")
    page.locator(".auman-incident").click()
    incident_popup = page.locator(".leaflet-popup-content .auman-popup-incident")
    incident_popup.wait_for()
    wait_for_popup(page)
    assert "<i>Luisenring</i>" in incident_popup.text_content()
    assert incident_popup.locator("i").count() == 0
    browser_page.screenshot("map-popup-incident")
    browser_page.assert_clean()  # also: no alert() dialog opened


def test_panning_loads_the_features_of_the_new_view(browser_page, stadtwerke):
    make_roadwork(stadtwerke, title="Kaiserring", geometry=line(KAISERRING), period=running())
    make_roadwork(stadtwerke, title="Neckarau", geometry=line(NECKARAU), period=running())
    page = browser_page.page
    open_map(browser_page, 2)
    first_bbox = page.evaluate("document.body.dataset.featuresBbox")

    # Zoom in on Kaiserring: Neckarau, 4 km south, leaves the view and the map.
    page.evaluate("aumanMap.map.setView([49.4846, 8.4751], 17)")
    page.wait_for_function(f"document.body.dataset.featuresBbox !== '{first_bbox}'")
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    assert page.locator("path.auman-roadwork").count() == 1
    zoomed_bbox = page.evaluate("document.body.dataset.featuresBbox")

    # Drag the map to the left with the mouse: the view moves east and a new bbox is asked for.
    page.mouse.move(640, 450)
    page.mouse.down()
    page.mouse.move(340, 450, steps=12)
    page.mouse.up()
    page.wait_for_function(f"document.body.dataset.featuresBbox !== '{zoomed_bbox}'")
    panned_bbox = page.evaluate("document.body.dataset.featuresBbox")
    assert float(panned_bbox.split(",")[0]) > float(zoomed_bbox.split(",")[0])

    asked = [
        parse_qs(urlsplit(url).query)["bbox"][0]
        for url in browser_page.requests
        if urlsplit(url).path == "/map/features.geojson"
    ]
    assert asked[0] == first_bbox
    assert zoomed_bbox in asked
    assert asked[-1] == panned_bbox
    browser_page.screenshot("map-panned")
    browser_page.assert_clean()


def test_the_legend_switches_a_layer_off_and_on(browser_page, stadtwerke):
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running())
    make_incident()
    page = browser_page.page
    open_map(browser_page, 2)
    toggle = page.locator("input[data-layer-toggle='incidents']")
    toggle.uncheck()
    assert page.locator(".auman-incident").count() == 0
    assert page.locator("path.auman-roadwork").count() == 1
    toggle.check()
    assert page.locator(".auman-incident[data-kind='accident']").count() == 1
    browser_page.assert_clean()


def test_the_authority_logs_in_and_sees_works_under_review_faded(browser_page, bob, stadtwerke):
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running(), status=RoadworkStatus.SUBMITTED)
    make_roadwork(stadtwerke, geometry=line(LUISENRING), period=running(), status=RoadworkStatus.APPROVED)
    page = browser_page.page
    open_map(browser_page, 1)  # the public sees the approved work only
    assert page.locator("#map-legend [data-phase='pending']").count() == 0

    page.locator(".site-header a[href^='/accounts/login/']").click()
    page.locator("input[name='username']").fill("bob")
    page.locator("input[name='password']").fill("pw-bob-1")
    page.locator("form.login-form button[type='submit']").click()
    page.wait_for_url(browser_page.base_url + "/")
    page.wait_for_function("document.body.dataset.featuresLoaded === '2'")
    assert "bob" in page.locator(".site-header").text_content()
    assert page.locator("path.auman-roadwork.auman-pending").count() == 1
    assert page.locator("#map-legend [data-phase='pending']").is_visible()
    browser_page.screenshot("map-authority")

    # Logging out is a POST form; afterwards the work under review is gone again.
    page.locator(".site-header form[action='/accounts/logout/'] button").click()
    page.wait_for_url(browser_page.base_url + "/")
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    assert page.locator("path.auman-roadwork.auman-pending").count() == 0
    browser_page.assert_clean()


def test_a_wrong_password_gets_a_message_and_the_language_switch_works(browser_page, dave):
    page = browser_page.page
    page.goto(browser_page.base_url + "/accounts/login/")
    assert page.locator("html").get_attribute("lang") == "de"
    page.locator("input[name='username']").fill("dave")
    page.locator("input[name='password']").fill("wrong")
    page.locator("form.login-form button[type='submit']").click()
    assert page.locator("#login-errors[role='alert']").is_visible()
    assert page.locator("input[name='username']").get_attribute("aria-invalid") == "true"

    page.locator("#language-select").select_option("en")
    page.locator(".language-form button[type='submit']").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.url.startswith(browser_page.base_url + "/accounts/login/")
    browser_page.assert_clean()


def test_the_map_shows_the_demo_data_after_load_demo(browser_page):
    call_command("load_demo", stdout=StringIO())
    # What the public should see, counted by the same selector the endpoint uses, over the whole city.
    expected = json.loads(map_features(user=None, bbox=None, layers=("roadworks", "incidents")))["features"]
    roadworks = [f for f in expected if f["properties"]["layer"] == "roadworks"]
    incidents = [f for f in expected if f["properties"]["layer"] == "incidents"]
    assert len(roadworks) >= 8 and len(incidents) >= 5, "the demo data should give the map something to show"
    page = browser_page.page

    page.goto(browser_page.base_url + "/")
    page.wait_for_function("Number(document.body.dataset.featuresLoads) >= 1")
    # The first view may not hold the whole city: zoom out so every demo feature is in view.
    page.evaluate("window.aumanMap.map.setZoom(11)")
    page.wait_for_function(f"document.body.dataset.featuresLoaded === '{len(expected)}'")

    assert page.locator("path.auman-roadwork").count() == len(roadworks)
    assert page.evaluate("window.aumanMap.featureCount('incidents')") == len(incidents)
    browser_page.screenshot("map-demo-data")
    browser_page.assert_clean()
