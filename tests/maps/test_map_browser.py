"""The map page in Debian's Chromium: drawing, popups as text, reloading on pan, nothing fetched from elsewhere.

Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation import gettext

from maps.selectors import map_features
from roadworks.models import RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, NECKARAU, line, local, make_incident, make_roadwork, period
from tests.maps.factories import JUNCTION, make_black_spot
from traffic.models import AccidentType, IncidentKind

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


# --- Black spots, incident stretches and the view in the URL -------------------------------------------------


def log_in(browser_page, user) -> None:
    """A session for `user` in the browser, without walking through the login form (tested above)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    browser_page.page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": browser_page.base_url}]
    )


def map_view(page) -> tuple[float, float, float]:
    return tuple(
        page.evaluate(
            "(() => { const c = aumanMap.map.getCenter(); return [aumanMap.map.getZoom(), c.lat, c.lng]; })()"
        )
    )


def hash_view(page) -> tuple[float, float, float]:
    fragment = page.evaluate("window.location.hash")
    assert fragment.startswith("#map="), fragment
    zoom, lat, lon = fragment.removeprefix("#map=").split("/")
    return int(zoom), float(lat), float(lon)


def test_the_commission_sees_black_spots_as_hatched_areas_with_a_popup_and_a_legend_entry(
    browser_page, bob, stadtwerke
):
    spot = make_black_spot()
    make_roadwork(
        stadtwerke,
        geometry=area(RING_AREA),
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    log_in(browser_page, bob)
    page = browser_page.page
    open_map(browser_page, 2)

    drawn = page.locator(".leaflet-auman-black-spots-pane path.auman-black-spot")
    assert drawn.count() == 1
    assert drawn.get_attribute("data-feature-id") == str(spot.pk)
    assert page.evaluate("aumanMap.featureCount('black_spots')") == 1
    style = page.evaluate(
        """(() => {
            const spot = getComputedStyle(document.querySelector('path.auman-black-spot'));
            const work = getComputedStyle(document.querySelector('path.auman-roadwork'));
            const pattern = document.getElementById('auman-black-spot-hatch');
            const zIndex = (pane) => Number(getComputedStyle(document.querySelector(`.leaflet-${pane}-pane`)).zIndex);
            return {stroke: spot.stroke, fill: spot.fill, workStroke: work.stroke, workFill: work.fill,
                    pattern: pattern instanceof SVGPatternElement,
                    paneBelow: zIndex('auman-black-spots') < zIndex('overlay')};
        })()"""
    )
    # Purple, hatched, and under the roadworks: told apart from every roadwork by colour and by pattern.
    assert style["stroke"] == "rgb(126, 34, 206)"
    assert style["fill"] == 'url("#auman-black-spot-hatch")' and style["pattern"]
    assert style["stroke"] != style["workStroke"] and style["fill"] != style["workFill"]
    assert style["paneBelow"]
    root = "getComputedStyle(document.documentElement)"
    impact_strokes = page.evaluate(
        f"['closure', 'restriction', 'minor'].map((i) => {root}.getPropertyValue(`--auman-${{i}}`).trim())"
    )
    assert "#7e22ce" not in impact_strokes

    legend = page.locator("#map-legend")
    assert legend.locator("input[data-layer-toggle='black_spots']").is_visible()
    assert legend.locator("[data-black-spot] svg").is_visible()
    assert "1" in page.locator("#map-status").text_content()
    browser_page.screenshot("map-black-spot")

    # At zoom 13 the area is a few pixels wide; a dot at its centre is what one sees and clicks.
    dot = page.locator("path.auman-black-spot-centre")
    assert dot.is_visible()
    assert dot.bounding_box()["width"] >= 10
    dot.click()
    popup = page.locator(".leaflet-popup-content .auman-popup-black-spot")
    popup.wait_for()
    wait_for_popup(page)
    rows = popup.evaluate(
        "(root) => Object.fromEntries([...root.querySelectorAll('dt')].map((dt) => [dt.textContent, "
        "dt.nextElementSibling.textContent]))"
    )
    lower = timezone.localtime(spot.period.lower).strftime("%d.%m.%Y")
    upper = timezone.localtime(spot.period.upper).strftime("%d.%m.%Y")
    with translation.override("de"):
        assert rows[gettext("Rule")].startswith("UHS-1J – ")
        assert rows[gettext("Type of accident")] == str(AccidentType(2).label)
        assert rows[gettext("Accidents")] == "6"
        assert rows[gettext("Score")] == "12"
        assert rows[gettext("Period")] == f"{lower} – {upper}"
    link = popup.locator("a")
    assert link.get_attribute("href") == f"/unfallkommission/#black-spot-{spot.pk}"
    page.locator(".leaflet-popup-close-button").click()
    popup.wait_for(state="detached")

    # Zoomed in, the area itself is the target and the dot gives way (the roadwork leaves the view).
    page.evaluate(f"aumanMap.map.setView([{JUNCTION[1]}, {JUNCTION[0]}], 18)")
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    assert not dot.is_visible()
    page.locator("path.auman-black-spot").click(position={"x": 20, "y": 60})
    popup.wait_for()
    wait_for_popup(page)
    browser_page.screenshot("map-popup-black-spot")

    link.click()
    page.wait_for_url(f"**/unfallkommission/#black-spot-{spot.pk}")
    assert page.locator("tr:target").get_attribute("data-key") == spot.key

    # Back on the map, the fragment has kept the zoomed-in view.
    page.go_back()
    page.locator("path.auman-black-spot").wait_for()
    assert map_view(page)[0] == 18
    page.locator("input[data-layer-toggle='black_spots']").uncheck()
    assert page.locator("path.auman-black-spot").count() == 0
    page.locator("input[data-layer-toggle='black_spots']").check()
    assert page.locator("path.auman-black-spot").count() == 1
    browser_page.assert_clean()


def test_the_public_sees_no_black_spots_and_no_legend_entry_for_them(browser_page, stadtwerke):
    make_black_spot()
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running())
    page = browser_page.page
    open_map(browser_page, 1)
    assert page.locator("path.auman-black-spot").count() == 0
    assert page.locator("input[data-layer-toggle='black_spots']").count() == 0
    assert page.locator("#auman-black-spot-hatch").count() == 0
    assert page.evaluate("Object.keys(aumanMap.layers)") == ["roadworks", "incidents"]
    browser_page.assert_clean()


def test_an_incidents_affected_stretch_is_a_thin_line_in_the_colour_of_its_symbol(browser_page):
    make_incident(kind=IncidentKind.ACCIDENT, affected_line=line(KAISERRING))
    page = browser_page.page
    open_map(browser_page, 1)
    stretch = page.locator(".leaflet-auman-incident-lines-pane path.auman-incident-line.auman-kind-accident")
    assert stretch.count() == 1
    assert page.locator(".auman-incident[data-kind='accident']").count() == 1
    colours = page.evaluate(
        """(() => {
            const line = getComputedStyle(document.querySelector('path.auman-incident-line'));
            const symbol = document.querySelector('#map-legend [data-symbol="accident"] path');
            const zIndex = (pane) => Number(getComputedStyle(document.querySelector(`.leaflet-${pane}-pane`)).zIndex);
            return [line.stroke, getComputedStyle(symbol).stroke, line.strokeWidth,
                    zIndex('overlay') < zIndex('auman-incident-lines'),
                    zIndex('auman-incident-lines') < zIndex('marker')];
        })()"""
    )
    assert colours[0] == colours[1] == "rgb(200, 16, 46)"
    assert float(colours[2].removesuffix("px")) <= 3
    assert colours[3] and colours[4], "the stretch is drawn above the roadworks and below the symbols"

    # The stretch opens the incident's popup as the symbol does.
    page.evaluate("aumanMap.map.setView([49.4846, 8.4751], 18)")
    page.wait_for_function("document.body.dataset.featuresLoads === '2'")
    box = stretch.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.75)
    page.locator(".leaflet-popup-content .auman-popup-incident").wait_for()
    wait_for_popup(page)
    browser_page.screenshot("map-incident-stretch")
    browser_page.assert_clean()


def test_a_map_fragment_centres_the_map_and_then_follows_the_view(browser_page, stadtwerke):
    kaiserring = make_roadwork(stadtwerke, title="Kaiserring", geometry=line(KAISERRING), period=running())
    neckarau = make_roadwork(stadtwerke, title="Neckarau", geometry=line(NECKARAU), period=running())
    page = browser_page.page

    page.goto(browser_page.base_url + "/#map=17/49.48460/8.47500")
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    zoom, lat, lon = map_view(page)
    assert zoom == 17
    assert lat == pytest.approx(49.4846, abs=1e-5) and lon == pytest.approx(8.4750, abs=1e-5)
    assert page.locator("path.auman-roadwork").get_attribute("data-feature-id") == str(kaiserring.pk)
    first = page.evaluate("window.location.hash")

    # Drag the map to the left: the view moves east, and the URL with it (no new history entry).
    history_length = page.evaluate("history.length")
    page.mouse.move(640, 450)
    page.mouse.down()
    page.mouse.move(340, 450, steps=12)
    page.mouse.up()
    page.wait_for_function(f"window.location.hash !== '{first}'")
    zoom, lat, lon = hash_view(page)
    assert zoom == 17 and lon > 8.4750 + 0.001
    assert (zoom, lat, lon) == pytest.approx(map_view(page), abs=1e-5)
    assert page.evaluate("history.length") == history_length
    assert page.url.startswith(browser_page.base_url + "/#map=17/")

    # A fragment changed on the page (a link, the address bar) moves the map; the Neckarau works come into view.
    page.evaluate("window.location.hash = '#map=16/49.45250/8.48700'")
    page.wait_for_function("aumanMap.map.getZoom() === 16")
    page.locator(f"path.auman-roadwork[data-feature-id='{neckarau.pk}']").wait_for()
    assert map_view(page) == pytest.approx((16, 49.4525, 8.4870), abs=1e-5)
    assert page.locator("path.auman-roadwork").count() == 1

    # The address is the view: opened again, the page shows the same place.
    page.reload()
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    assert map_view(page) == pytest.approx((16, 49.4525, 8.4870), abs=1e-5)
    browser_page.assert_clean()


def test_a_malformed_map_fragment_is_ignored(browser_page):
    page = browser_page.page
    page.goto(browser_page.base_url + "/#map=99/123.4/8.4")
    page.wait_for_function("Number(document.body.dataset.featuresLoads) >= 1")
    zoom, lat, lon = map_view(page)
    assert zoom == settings.AUMAN_MAP_ZOOM
    assert (lat, lon) == pytest.approx(tuple(settings.AUMAN_MAP_CENTER), abs=1e-4)
    browser_page.assert_clean()


def test_show_on_the_map_in_the_commissions_list_centres_the_map_on_the_black_spot(browser_page, carol):
    spot = make_black_spot()
    log_in(browser_page, carol)
    page = browser_page.page
    page.goto(browser_page.base_url + "/unfallkommission/")
    page.locator(f"tr[data-key='{spot.key}'] a[href^='/#map=18/']").click()
    page.wait_for_function("document.body.dataset.featuresLoaded === '1'")
    zoom, lat, lon = map_view(page)
    assert zoom == 18
    assert (lat, lon) == pytest.approx((JUNCTION[1], JUNCTION[0]), abs=1e-4)
    assert page.locator("path.auman-black-spot").is_visible()
    browser_page.screenshot("map-from-commission-list")
    browser_page.assert_clean()
