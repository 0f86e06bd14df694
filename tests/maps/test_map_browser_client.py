"""The map's browser side in Debian's Chromium: layers and their switches, the day shown, filters, street search,
popups and the side panel, the list view by keyboard, clusters, vector tiles, live updates and the shareable URL.

The page runs under its Content-Security-Policy (script-src 'self'), which forbids eval: page.wait_for_function
would need it, so these tests poll with page.evaluate (a DevTools call, outside the page's policy) instead.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.gis.geos import MultiLineString, MultiPolygon, Point, Polygon
from django.core.management import call_command
from django.utils import timezone

from maps.models import District
from roadworks.models import Conflict, Corridor, Detour, Event, MoratoriumArea, RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, NECKARAU, line, make_incident, make_roadwork, period
from tests.maps.test_map_browser import LUISENRING, log_in, running
from traffic.models import IncidentKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECTION = "<img src=x onerror=alert(1)>"


def until(page, expression: str, timeout: float = 10.0) -> None:
    """Wait until `expression` is truthy in the page, without eval (see the module docstring)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def open_map(browser_page, fragment: str = "", expected: int | None = None) -> None:
    page = browser_page.page
    page.goto(browser_page.base_url + "/" + fragment)
    if expected is None:
        until(page, "Number(document.body.dataset.featuresLoads) >= 1")
    else:
        until(page, f"document.body.dataset.featuresLoaded === '{expected}'")


def today() -> date:
    return timezone.localdate()


def area(bbox: tuple[float, float, float, float]) -> MultiPolygon:
    polygon = Polygon.from_bbox(bbox)
    polygon.srid = 4326
    return MultiPolygon(polygon.transform(25832, clone=True), srid=25832)


def hash_params(page) -> dict[str, str]:
    fragment = page.evaluate("window.location.hash").removeprefix("#")
    return {key: values[0] for key, values in parse_qs(fragment, keep_blank_values=True).items()}


def list_rows(page) -> list[dict]:
    return page.evaluate(
        """[...document.querySelectorAll('#map-list tbody tr[data-key]')].map((row) => ({
            key: row.dataset.key, layer: row.dataset.layer,
            title: row.querySelector('.map-list-item').textContent,
            badge: (row.querySelector('.auman-badge-new') || {}).textContent || null}))"""
    )


# --- Layers and the legend ---------------------------------------------------------------------------------------


def test_it_draws_detours_as_their_own_switchable_layer_and_keeps_the_switch_in_the_url(browser_page, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        title="Vollsperrung Kaiserring",
        geometry=line(KAISERRING),
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    detour = Detour.objects.create(roadwork=work, name="Umleitung über den Luisenring", geometry=line(LUISENRING))
    page = browser_page.page
    open_map(browser_page, expected=1)

    drawn = page.locator("path.auman-detour")
    assert drawn.count() == 1
    assert drawn.get_attribute("data-feature-id") == str(detour.pk)
    assert page.evaluate("aumanMap.featureCount('detours')") == 1
    assert page.locator("#map-legend input[data-layer-toggle='detours']").is_checked()
    rows = list_rows(page)
    assert {"key": f"detours:{detour.pk}", "layer": "detours", "title": detour.name, "badge": None} in rows

    page.locator("#map-legend input[data-layer-toggle='detours']").uncheck()
    assert drawn.count() == 0
    assert hash_params(page)["layers"] == "roadworks,incidents"
    until(page, "!document.querySelector('#map-list tr[data-layer=\"detours\"]')")

    # The address keeps the choice: opened again, the detours stay off.
    page.reload()
    until(page, "document.body.dataset.featuresLoaded === '1'")
    assert page.locator("path.auman-roadwork").count() == 1
    assert drawn.count() == 0
    assert not page.locator("#map-legend input[data-layer-toggle='detours']").is_checked()
    browser_page.screenshot("map-client-detours-off")
    browser_page.assert_clean()


def test_staff_switch_on_moratoria_events_corridors_and_conflicts(browser_page, bob, stadtwerke, telekom):
    MoratoriumArea.objects.create(
        name="Neu asphaltiert: Kaiserring", geometry=area((8.4735, 49.4835, 8.4770, 49.4858)), resurfaced_on=today()
    )
    Event.objects.create(
        name="Stadtfest", area=area((8.4640, 49.4860, 8.4680, 49.4890)), period=period(timezone.now(), 3)
    )
    Corridor.objects.create(
        name="Ring", geometry=MultiLineString(line(LUISENRING), srid=25832), max_simultaneous=1, active=True
    )
    # The table keeps each pair once, in id order (constraint conflict_pair_ordered).
    first, second = sorted(
        (
            make_roadwork(organisation, geometry=line(KAISERRING), period=running())
            for organisation in (stadtwerke, telekom)
        ),
        key=lambda work: str(work.pk),
    )
    conflict = Conflict.objects.create(
        rule="C1",
        roadwork_a=first,
        roadwork_b=second,
        overlap_period=running(),
        place=area((8.4745, 49.4842, 8.4755, 49.4849)),
    )
    log_in(browser_page, bob)
    page = browser_page.page
    open_map(browser_page, expected=2)

    for name in ("moratoria", "events", "corridors", "conflicts"):
        assert page.locator(f"#map-legend input[data-layer-toggle='{name}']").is_visible()
        page.locator(f"#map-legend input[data-layer-toggle='{name}']").check()
    until(page, "document.body.dataset.apiLoadedConflicts === '1' && document.body.dataset.apiLoadedEvents === '1'")
    until(page, "document.body.dataset.apiLoadedMoratoria === '1' && document.body.dataset.apiLoadedCorridors === '1'")
    assert page.locator("path.auman-staff-area.auman-moratoria[data-feature-id]").count() == 1
    assert page.locator("path.auman-staff-area.auman-events[data-feature-id]").count() == 1
    assert page.locator("path.auman-corridor[data-feature-id]").count() == 1
    assert page.locator("path.auman-staff-area.auman-conflicts[data-feature-id]").count() == 1
    until(page, "document.querySelectorAll('#map-list tr[data-layer=\"conflicts\"]').length === 1")
    layers = {row["layer"] for row in list_rows(page)}
    assert {"moratoria", "events", "corridors", "conflicts", "roadworks"} <= layers
    assert set(hash_params(page)["layers"].split(",")) >= {"moratoria", "events", "corridors", "conflicts"}

    # A conflict's details link to its page, for the authority to act on.
    page.locator("#map-list tr[data-layer='conflicts'] .map-list-item").click()
    details = page.locator("#map-details-body")
    assert details.locator("a").get_attribute("href") == f"/konflikte/{conflict.pk}/"
    browser_page.screenshot("map-client-staff-layers")
    browser_page.assert_clean()


def test_the_public_gets_no_staff_layers_and_no_accidents(browser_page, stadtwerke):
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running())
    page = browser_page.page
    open_map(browser_page, expected=1)
    toggles = page.evaluate(
        "[...document.querySelectorAll('#map-legend input[data-layer-toggle]')].map((i) => i.dataset.layerToggle)"
    )
    assert toggles == ["roadworks", "incidents", "detours"]
    assert not [url for url in browser_page.requests if "/api/v1/moratoria" in url or "/tiles/accidents" in url]
    # A shared link naming a staff layer switches nothing on for the public.
    page.goto(browser_page.base_url + "/#map=13/49.4875/8.4660&layers=roadworks,moratoria")
    until(page, "document.body.dataset.featuresLoaded === '1'")
    assert page.evaluate("[...aumanMap.state.on]") == ["roadworks"]
    browser_page.assert_clean()


# --- The day shown ----------------------------------------------------------------------------------------------


def test_the_date_slider_and_the_date_field_show_the_city_on_another_day(browser_page, stadtwerke):
    now = timezone.now()
    soon_over = make_roadwork(
        stadtwerke, title="Endet bald", geometry=line(KAISERRING), period=period(now - timedelta(days=1), 5)
    )
    later = make_roadwork(
        stadtwerke,
        title="Beginnt in 30 Tagen",
        geometry=line(LUISENRING),
        period=period(now + timedelta(days=30), 10),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    make_incident(kind=IncidentKind.BREAKDOWN, location=line(LUISENRING).centroid)
    page = browser_page.page
    open_map(browser_page, expected=3)

    def phase_of(work) -> str | None:
        element = page.locator(f"path.auman-roadwork[data-feature-id='{work.pk}']")
        if element.count() == 0:
            return None
        return "planned" if "auman-phase-planned" in element.get_attribute("class") else "active"

    assert (phase_of(soon_over), phase_of(later)) == ("active", "planned")
    assert page.locator("#map-date").input_value() == today().isoformat()
    assert page.locator(".auman-incident").count() == 1

    # The slider, by keyboard: 30 steps to the right is 30 days ahead.
    slider = page.locator("#map-day")
    slider.focus()
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    day = (today() + timedelta(days=30)).isoformat()
    until(page, f"aumanMap.state.date === '{day}'")
    assert page.locator("#map-date").input_value() == day
    assert (phase_of(soon_over), phase_of(later)) == (None, "active")
    # Incidents are live: they belong to today only, and the status line says so.
    assert page.locator(".auman-incident").count() == 0
    assert hash_params(page)["date"] == day
    assert slider.get_attribute("aria-valuetext")
    browser_page.screenshot("map-client-day-30")

    # The date field: five days ahead, the first work still runs and the second is still to come.
    five = (today() + timedelta(days=5)).isoformat()
    page.locator("#map-date").fill(five)
    until(page, f"aumanMap.state.date === '{five}'")
    assert slider.input_value() == "5"
    assert phase_of(later) == "planned"
    # Only that day: works still to come are left out.
    page.locator("#map-upcoming").uncheck()
    assert phase_of(later) is None
    assert hash_params(page)["upcoming"] == "0"

    # A shared link opens on its day; today's button goes back and the address loses the date.
    page.reload()
    until(page, "Number(document.body.dataset.featuresLoads) >= 1")
    assert page.locator("#map-date").input_value() == five
    assert not page.locator("#map-upcoming").is_checked()
    page.locator("#map-today").click()
    until(page, f"aumanMap.state.date === '{today().isoformat()}'")
    assert "date" not in hash_params(page)
    assert page.locator(".auman-incident").count() == 1
    browser_page.assert_clean()


# --- Filters and the street search ---------------------------------------------------------------------------------


def test_filters_narrow_the_map_and_the_list_and_stay_in_the_url(browser_page, stadtwerke):
    closure = make_roadwork(
        stadtwerke, geometry=line(KAISERRING), period=running(), traffic_management=TrafficManagement.FULL_CLOSURE
    )
    make_roadwork(
        stadtwerke, geometry=line(LUISENRING), period=running(), traffic_management=TrafficManagement.LANE_CLOSURE
    )
    accident = make_incident(kind=IncidentKind.ACCIDENT)
    make_incident(kind=IncidentKind.HAZARD, location=line(LUISENRING).centroid)
    page = browser_page.page
    open_map(browser_page, "#map=15/49.4880/8.4700", expected=4)

    page.locator("#map-impact").select_option("closure")
    assert page.locator("path.auman-roadwork").count() == 1
    assert page.locator("path.auman-roadwork").get_attribute("data-feature-id") == str(closure.pk)
    page.locator("#map-kind").select_option("accident")
    until(page, "document.querySelectorAll('.auman-incident').length === 1")
    assert page.locator(".auman-incident").get_attribute("data-feature-id") == str(accident.pk)
    params = hash_params(page)
    assert (params["impact"], params["kind"]) == ("closure", "accident")
    until(page, "document.body.dataset.listCount === '2'")
    assert {row["key"] for row in list_rows(page)} == {f"roadworks:{closure.pk}", f"incidents:{accident.pk}"}
    browser_page.screenshot("map-client-filtered")

    # The address is the view: the filters come back with it.
    page.reload()
    until(page, "document.body.dataset.featuresLoaded === '2'")
    assert page.locator("#map-impact").input_value() == "closure"
    assert page.locator("#map-kind").input_value() == "accident"
    browser_page.assert_clean()


def test_the_district_filter_asks_the_server_and_frames_the_district(browser_page, stadtwerke):
    call_command("load_districts", stdout=StringIO())
    neckarau = District.objects.get(name="Neckarau")
    make_roadwork(stadtwerke, title="Kaiserring", geometry=line(KAISERRING), period=running())
    south = make_roadwork(stadtwerke, title="Neckarau", geometry=line(NECKARAU), period=running())
    page = browser_page.page
    open_map(browser_page, "#map=12/49.4700/8.4800", expected=2)
    until(page, "Number(document.body.dataset.districtsLoaded) > 10")

    page.locator("#map-district").select_option(str(neckarau.pk))
    until(page, "document.body.dataset.featuresLoaded === '1'")
    assert page.locator("path.auman-roadwork").get_attribute("data-feature-id") == str(south.pk)
    asked = [url for url in browser_page.requests if urlsplit(url).path == "/map/features.geojson"]
    assert parse_qs(urlsplit(asked[-1]).query)["district"] == [str(neckarau.pk)]
    assert page.locator("path.auman-district-outline").count() == 1
    assert hash_params(page)["district"] == str(neckarau.pk)
    browser_page.screenshot("map-client-district")
    browser_page.assert_clean()


def test_the_street_search_zooms_to_the_street(browser_page):
    call_command("load_demo_streets", stdout=StringIO())
    page = browser_page.page
    open_map(browser_page)

    def view_holds(lon: float, lat: float) -> bool:
        west, south, east, north = map(float, page.evaluate("aumanMap.map.getBounds().toBBoxString()").split(","))
        return west < lon < east and south < lat < north

    # One street of that name: straight there, marked, and said in the live region.
    page.locator("#map-street").fill("Parkring")
    page.locator("#map-street").press("Enter")
    until(page, "document.querySelector('#map-street-status').textContent.includes('Parkring')")
    until(page, "!aumanMap.map._animatingZoom")
    assert page.locator("path.auman-street-highlight").count() >= 1
    assert view_holds(8.4575, 49.4847)
    assert page.evaluate("aumanMap.map.getZoom()") >= 15
    assert page.locator("#map-street-status").get_attribute("role") == "status"

    # Several: offered as buttons, and the chosen one is where the map goes.
    page.locator("#map-street").fill("Bismarck")
    page.locator("#map-street-form button[type='submit']").click()
    choices = page.locator("#map-street-results button")
    choices.first.wait_for()
    assert sorted(choices.all_text_contents()) == ["Bismarckplatz", "Bismarckstraße"]
    page.locator("#map-street-results button", has_text="Bismarckplatz").click()
    until(page, "document.querySelector('#map-street-status').textContent.includes('Bismarckplatz')")
    until(page, "!aumanMap.map._animatingZoom")
    assert view_holds(8.4718, 49.4809)
    browser_page.screenshot("map-client-street")

    page.locator("#map-street").fill("Gibtsnichtstraße")
    page.locator("#map-street").press("Enter")
    until(page, "document.querySelectorAll('#map-street-results button').length === 0")
    until(page, "!document.querySelector('#map-street-status').textContent.includes('Bismarckplatz')")
    browser_page.assert_clean()


# --- Popups, the side panel and the list view --------------------------------------------------------------------


def test_staff_get_a_link_to_the_application_in_the_popup_and_the_panel(browser_page, bob, stadtwerke):
    work = make_roadwork(
        stadtwerke,
        title=INJECTION,
        geometry=line(KAISERRING),
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    log_in(browser_page, bob)
    page = browser_page.page
    open_map(browser_page, "#map=16/49.4846/8.4751", expected=1)
    page.locator("path.auman-roadwork").click()
    popup = page.locator(".leaflet-popup-content .auman-popup-roadwork")
    popup.wait_for()
    assert popup.locator(".auman-popup-title").text_content() == INJECTION
    assert popup.locator("a").get_attribute("href") == f"/baustellen/{work.pk}/"
    panel = page.locator("#map-details-body")
    assert panel.locator(".auman-popup-title").text_content() == INJECTION
    assert panel.locator("a").get_attribute("href") == f"/baustellen/{work.pk}/"
    assert panel.locator("img").count() == 0
    browser_page.screenshot("map-client-staff-popup")
    browser_page.assert_clean()


def test_the_public_gets_no_link_to_the_application(browser_page, stadtwerke):
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running(), status=RoadworkStatus.APPROVED)
    page = browser_page.page
    open_map(browser_page, "#map=16/49.4846/8.4751", expected=1)
    page.locator("path.auman-roadwork").click()
    page.locator(".leaflet-popup-content .auman-popup-roadwork").wait_for()
    assert page.locator(".leaflet-popup-content a").count() == 0
    assert page.locator("#map-details-body a").count() == 0
    browser_page.assert_clean()


def test_the_list_view_works_with_the_keyboard_alone(browser_page, stadtwerke):
    make_roadwork(stadtwerke, title="Kanalbau Luisenring", geometry=line(LUISENRING), period=running())
    incident = make_incident(kind=IncidentKind.HAZARD, street_name="<i>Kaiserring</i>")
    page = browser_page.page
    open_map(browser_page, expected=2)
    until(page, "document.body.dataset.listCount === '2'")

    # Tab from the top of the page: the site's skip link to the content, then the map page's own to the list.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#map-list-heading"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "map-list-heading"
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('tr').dataset.key")
    # Incidents come first: what is happening now matters most.
    assert focused == f"incidents:{incident.pk}"
    page.keyboard.press("Enter")
    page.locator(".leaflet-popup-content .auman-popup-incident").wait_for()
    assert page.evaluate("document.activeElement.id") == "map-details-heading"
    assert "<i>Kaiserring</i>" in page.locator("#map-details-body").text_content()
    assert page.locator("#map-details-body i").count() == 0
    # Back to the list and on to the next row, all by keyboard.
    page.keyboard.press("Shift+Tab")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('map-list-item')"):
            break
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    until(page, "document.querySelector('#map-details-body .auman-popup-title').textContent === 'Kanalbau Luisenring'")
    browser_page.screenshot("map-client-list-keyboard")
    browser_page.assert_clean()


# --- Scale: clusters and vector tiles ------------------------------------------------------------------------------


def test_nearby_incidents_are_clustered_until_zoomed_in(browser_page):
    for offset in (0, 0.0003, 0.0006):
        make_incident(location=Point(8.4750 + offset, 49.4846, srid=4326).transform(25832, clone=True))
    page = browser_page.page
    open_map(browser_page, expected=3)
    cluster = page.locator(".auman-cluster")
    assert cluster.count() == 1
    assert cluster.locator(".auman-cluster-count").text_content() == "3"
    assert page.locator(".auman-incident").count() == 0
    # The list names all three, clustered or not.
    until(page, "document.body.dataset.listCount === '3'")

    page.evaluate("aumanMap.map.setView([49.4846, 8.4756], 17)")
    until(page, "document.querySelectorAll('.auman-incident').length === 3")
    until(page, "document.querySelectorAll('.auman-cluster').length === 0")  # it fades out
    browser_page.screenshot("map-client-unclustered")
    browser_page.assert_clean()


def test_zoomed_far_out_roadworks_come_as_vector_tiles(browser_page, stadtwerke):
    make_roadwork(
        stadtwerke, geometry=line(KAISERRING), period=running(), traffic_management=TrafficManagement.FULL_CLOSURE
    )
    page = browser_page.page
    open_map(browser_page, "#map=10/49.4875/8.4660")
    until(page, "document.body.dataset.tilesLoadedRoadworks === '1'")
    until(page, "document.querySelectorAll('path.auman-roadwork-tile').length >= 1")
    assert page.locator("path.auman-roadwork").count() == 0
    asked = [url for url in browser_page.requests if urlsplit(url).path == "/map/features.geojson"]
    assert parse_qs(urlsplit(asked[-1]).query)["layers"] == ["incidents"]
    tiles = [url for url in browser_page.requests if urlsplit(url).path.startswith("/tiles/roadworks/10/")]
    assert tiles and parse_qs(urlsplit(tiles[0]).query)["on"] == [today().isoformat()]
    # The list still holds them, from the tiles.
    until(page, "document.body.dataset.listCount === '1'")

    # Zoomed in again, GeoJSON takes over.
    page.evaluate("aumanMap.map.setView([49.4846, 8.4751], 14)")
    until(page, "document.querySelectorAll('path.auman-roadwork').length === 1")
    assert page.locator("path.auman-roadwork-tile").count() == 0
    browser_page.screenshot("map-client-tiles")
    browser_page.assert_clean()


# --- Live updates ---------------------------------------------------------------------------------------------------


def test_the_control_room_sees_new_incidents_without_a_reload_and_marked(browser_page, carol):
    make_incident(kind=IncidentKind.BREAKDOWN)
    log_in(browser_page, carol)
    page = browser_page.page
    statuses: list[tuple[int, str | None]] = []
    page.on(
        "response",
        lambda response: (
            urlsplit(response.url).path == "/map/features.geojson"
            and statuses.append((response.status, response.request.headers.get("if-none-match")))
        ),
    )
    open_map(browser_page, "#map=16/49.4846/8.4751", expected=1)
    assert page.locator("#map-live").is_checked()
    page.evaluate("window.__aumanNavigations = performance.getEntriesByType('navigation').length")

    # Nothing changed: a conditional request, answered 304.
    page.evaluate("aumanMap.poll()")
    until(page, "document.body.dataset.featuresPolls === '1'")
    assert statuses[-1][0] == 304 and statuses[-1][1]

    new = make_incident(
        kind=IncidentKind.HAZARD, location=Point(8.4756, 49.4848, srid=4326).transform(25832, clone=True)
    )
    page.evaluate("aumanMap.poll()")
    until(page, "document.body.dataset.featuresLoaded === '2'")
    assert statuses[-1][0] == 200
    marker = page.locator(f".auman-incident[data-feature-id='{new.pk}']")
    assert "auman-new" in marker.get_attribute("class")
    until(page, "document.querySelector('#map-list .auman-badge-new') !== null")
    rows = {row["key"]: row["badge"] for row in list_rows(page)}
    assert rows[f"incidents:{new.pk}"]
    assert "1" in page.locator("#map-status").text_content()
    # No reload happened: the same document.
    assert page.evaluate("performance.getEntriesByType('navigation').length === window.__aumanNavigations")
    browser_page.screenshot("map-client-live")

    # Looked at, no longer new.
    marker.click()
    page.locator(".leaflet-popup-content .auman-popup-incident").wait_for()
    assert "auman-new" not in marker.get_attribute("class")
    browser_page.assert_clean()


def test_live_updates_bring_and_mark_new_items_of_the_staff_layers_too(browser_page, bob):
    log_in(browser_page, bob)
    page = browser_page.page
    open_map(browser_page, "#map=14/49.4870/8.4700&layers=roadworks,incidents,moratoria")
    until(page, "document.body.dataset.apiLoadedMoratoria === '0'")
    moratorium = MoratoriumArea.objects.create(
        name="Frisch asphaltiert", geometry=area((8.4735, 49.4835, 8.4770, 49.4858)), resurfaced_on=today()
    )
    page.evaluate("aumanMap.poll()")
    until(page, "document.body.dataset.apiLoadedMoratoria === '1'")
    drawn = page.locator(f"path.auman-moratoria[data-feature-id='{moratorium.pk}']")
    assert "auman-new" in drawn.get_attribute("class")
    until(page, "document.querySelector('#map-list tr[data-layer=\"moratoria\"] .auman-badge-new') !== null")
    browser_page.assert_clean()


def test_the_public_map_does_not_poll(browser_page):
    page = browser_page.page
    open_map(browser_page)
    assert page.locator("#map-live").count() == 0
    assert page.evaluate("JSON.parse(document.getElementById('auman-map-config').textContent).live.enabled") is False
    browser_page.assert_clean()


# --- Languages ------------------------------------------------------------------------------------------------------


def test_the_map_speaks_english_after_the_language_switch(browser_page, stadtwerke):
    make_roadwork(stadtwerke, geometry=line(KAISERRING), period=running())
    page = browser_page.page
    open_map(browser_page, expected=1)
    page.locator("#language-select").select_option("en")
    page.locator(".language-form button[type='submit']").click()
    until(page, "document.documentElement.lang === 'en' && document.body.dataset.featuresLoaded === '1'")
    assert page.locator("label[for='map-date']").text_content() == "Date"
    assert page.locator("#map-list-heading").text_content() == "List view"
    assert page.evaluate("JSON.parse(document.getElementById('auman-map-config').textContent).strings.roadworks") == (
        "Roadworks"
    )
    assert "Roadworks" in page.locator("#map-legend").text_content()
    browser_page.assert_clean()


# --- Recorded accidents as vector tiles (staff) -----------------------------------------------------------------------


def test_staff_see_recorded_accidents_as_vector_tiles_in_the_list_and_by_click(browser_page, carol):
    from traffic.models import Accident

    def accident(lon: float, lat: float, category: int) -> Accident:
        return Accident.objects.create(
            location=Point(lon, lat, srid=4326).transform(25832, clone=True),
            occurred_at=timezone.now() - timedelta(days=30),
            category=category,
            kind=5,
            type=2,
        )

    fatal = accident(8.4750, 49.4846, 1)
    accident(8.4757, 49.4849, 3)
    log_in(browser_page, carol)
    page = browser_page.page
    open_map(browser_page, "#map=17/49.4847/8.4753")
    toggle = page.locator("#map-legend input[data-layer-toggle='accidents']")
    assert not toggle.is_checked()
    toggle.check()
    until(page, "document.body.dataset.tilesLoadedAccidents === '1'")
    until(page, "document.querySelectorAll('#map-list tr[data-layer=\"accidents\"]').length === 2")
    tiles = [url for url in browser_page.requests if urlsplit(url).path.startswith("/tiles/accidents/17/")]
    assert tiles and parse_qs(urlsplit(tiles[0]).query)["on"] == [today().isoformat()]
    assert page.locator(".leaflet-auman-accidents-pane canvas").count() >= 1

    # A click on the dot finds the accident under it (the tiles are drawn without Leaflet's own events).
    x, y = page.evaluate(
        """(() => { const p = aumanMap.map.latLngToContainerPoint([49.4846, 8.4750]);
                    const box = document.getElementById('map').getBoundingClientRect();
                    return [box.left + p.x, box.top + p.y]; })()"""
    )
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content .auman-popup-accidents")
    popup.wait_for()
    assert page.locator("#map-details-body").get_attribute("data-key") == f"accidents:{fatal.pk}"
    browser_page.screenshot("map-client-accidents")
    browser_page.assert_clean()
