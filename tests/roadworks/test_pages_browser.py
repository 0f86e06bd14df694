"""The application form and the application's page in Debian's Chromium: alice draws the works area and a detour with
Leaflet-Geoman, fills in the form and submits; bob approves from the application's page.

Clicks on the map are real mouse clicks at pixel positions; the street network holds Kaiserring, so the street
search can zoom the map there first. Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import MultiPolygon
from django.utils import timezone, translation

from accounts.models import Organisation
from maps.models import StreetSegment
from roadworks.models import Conflict, Detour, Roadwork, RoadworkStatus, RoadworkTransition, Severity
from tests.conftest import KAISERRING, KAISERRING_NEARBY, line, make_roadwork
from tests.maps.conftest import ARTIFACTS, BrowserPage, browser, browser_page  # noqa: F401 - session fixtures
from tests.roadworks.helpers import from_now

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

S = RoadworkStatus
BERLIN = ZoneInfo("Europe/Berlin")


def screenshot(result: BrowserPage, name: str) -> None:
    """The whole page: the form is long."""
    ARTIFACTS.mkdir(exist_ok=True)
    result.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(result: BrowserPage, username: str, password: str, next_url: str) -> None:
    page = result.page
    page.goto(f"{result.base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form.login-form button[type=submit]").click()
    page.wait_for_load_state()
    assert urlsplit(page.url).path == next_url


@pytest.fixture
def second_page(browser, live_server) -> Iterator[BrowserPage]:  # noqa: F811 - uses the imported fixture
    """Another person at another computer: a browser context of its own (its own session cookie)."""
    # bypass_csp: Playwright's wait_for_function runs its predicate through eval inside the page, which the
    # Content-Security-Policy (no 'unsafe-eval') refuses. The policy itself is tested in
    # tests/security/test_csp_browser.py, in a context that does not bypass it.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="de-DE", timezone_id="UTC", bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    result = BrowserPage(page=page, base_url=live_server.url)
    page.on("console", lambda message: message.type == "error" and result.console_errors.append(message.text))
    page.on("pageerror", lambda error: result.console_errors.append(f"uncaught: {error}"))
    yield result
    context.close()


@pytest.fixture
def kaiserring_street(db) -> StreetSegment:
    return StreetSegment.objects.create(
        osm_way_id=4711, name="Kaiserring", highway="primary", geometry=line(KAISERRING)
    )


def click_map(page, points: list[tuple[float, float]]) -> None:
    """Clicks at positions given as fractions of the map's width and height."""
    box = page.locator("#rw-map").bounding_box()
    for fx, fy in points:
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        # Geoman ignores a second click that comes too fast after the first (it would be a double click).
        page.wait_for_timeout(120)


def find_kaiserring(page) -> None:
    page.fill("#rw-street-query", "Kaiser")
    page.wait_for_function("document.body.dataset.streetSearch === 'done'")
    page.locator("#rw-street-results li").first.locator("button").first.click()


def fill_application(page) -> tuple[str, str]:
    start = timezone.localtime(timezone.now() + timedelta(days=14), BERLIN).replace(hour=7, minute=0)
    end = start + timedelta(days=4, hours=10)
    values = (start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#id_title", "Fernwärme-Hausanschluss Kaiserring 10")
    page.fill("#id_purpose", "Neuer Hausanschluss")
    page.select_option("#id_work_kind", "district_heating")
    page.check("#id_excavation")
    page.fill("#id_period_start", values[0])
    page.fill("#id_period_end", values[1])
    page.select_option("#id_traffic_management", "lane_closure")
    page.fill("#id_lanes_affected", "1")
    page.fill("#id_contact_name", "Bauleitung Fernwärme")
    page.fill("#id_contact_email", "fernwaerme@example.org")
    return values


def test_alice_draws_and_submits_an_application_and_bob_approves_it(
    browser_page,  # noqa: F811 - the imported fixture
    second_page,
    alice,
    bob,
    kaiserring_street,
):
    page = browser_page.page
    log_in(browser_page, "alice", "pw-alice-1", "/baustellen/neu/")
    page.wait_for_function("document.body.dataset.rwFormState === 'ready'")
    assert page.evaluate("document.body.dataset.rwArea") == "none"

    # The street search adds the name and zooms the map to the street.
    find_kaiserring(page)
    assert page.input_value("#id_street_names") == "Kaiserring"

    # The works area: four corners, then a click on the first one closes it (Geoman's own gesture).
    page.click("#rw-draw-area")
    assert page.evaluate("document.body.dataset.rwDrawing") == "area"
    corners = [(0.40, 0.40), (0.60, 0.40), (0.60, 0.60), (0.40, 0.60)]
    click_map(page, [*corners, corners[0]])
    page.wait_for_function("document.body.dataset.rwArea === 'set'")

    # A detour: three points, and a click on the last one ends the line.
    page.click("#rw-draw-detour")
    route = [(0.20, 0.30), (0.30, 0.15), (0.75, 0.20)]
    click_map(page, [*route, route[-1]])
    page.wait_for_function("document.body.dataset.rwDetours === '1'")
    page.fill("#rw-detour-name-1", "Umleitung über Friedrichsring")

    fill_application(page)
    screenshot(browser_page, "roadwork-form-filled")
    drawn = page.evaluate("window.aumanRoadworkForm.area()")
    assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 5

    page.click("#rw-submit")
    page.wait_for_url("**/baustellen/*/")
    work = Roadwork.objects.get()
    assert urlsplit(page.url).path == f"/baustellen/{work.pk}/"
    assert (work.status, work.organisation_id, work.street_names) == (
        S.SUBMITTED,
        alice.organisation_id,
        ["Kaiserring"],
    )
    assert work.geometry.geom_type == "Polygon"
    stored = work.geometry.transform(4326, clone=True)
    assert stored.coords[0][0] == pytest.approx(drawn["coordinates"][0][0], abs=1e-6)
    detour = Detour.objects.get()
    assert (detour.name, detour.geometry.geom_type, detour.geometry.num_coords) == (
        "Umleitung über Friedrichsring",
        "LineString",
        3,
    )

    # The application's page draws what was drawn: the works area and the detour.
    page.wait_for_function("document.body.dataset.mapFeatures === '2'")
    assert page.locator("#rw-feature-map path.rw-role-works").count() == 1
    assert page.locator("#rw-feature-map path.rw-role-detour").count() == 1
    assert page.locator(".rw-messages").is_visible()
    assert page.locator("#step-approve").count() == 0
    screenshot(browser_page, "roadwork-detail-submitted")
    browser_page.assert_clean()

    # Bob approves from the same page, at his own computer.
    other = second_page.page
    log_in(second_page, "bob", "pw-bob-1", f"/baustellen/{work.pk}/")
    other.wait_for_function("document.body.dataset.mapFeatures === '2'")
    other.locator("#step-approve button[type=submit]").click()
    other.wait_for_load_state()
    work.refresh_from_db()
    assert work.status == S.APPROVED
    assert RoadworkTransition.objects.filter(roadwork=work, action="approve", by=bob).exists()
    with translation.override("de"):
        assert other.locator("#rw-status").text_content().strip() == str(S.APPROVED.label)
    assert "bob" in other.locator("#rw-history").text_content()
    screenshot(second_page, "roadwork-detail-approved")
    assert second_page.console_errors == []


def test_a_street_found_by_the_search_becomes_the_works_area_without_drawing(
    browser_page,  # noqa: F811 - the imported fixture
    alice,
    kaiserring_street,
):
    page = browser_page.page
    log_in(browser_page, "alice", "pw-alice-1", "/baustellen/neu/")
    page.wait_for_function("document.body.dataset.rwFormState === 'ready'")
    page.focus("#rw-street-query")
    page.keyboard.type("kaiserr")
    page.keyboard.press("Enter")  # searches; must not submit the form
    page.wait_for_function("document.body.dataset.streetSearch === 'done'")
    assert urlsplit(page.url).path == "/baustellen/neu/"
    page.locator("#rw-street-results li").first.locator("button").last.click()
    page.wait_for_function("document.body.dataset.rwArea === 'set'")
    fill_application(page)
    page.click("#rw-save")
    page.wait_for_url("**/baustellen/*/")
    work = Roadwork.objects.get()
    assert (work.status, work.geometry.geom_type, work.street_names) == (S.DRAFT, "LineString", ["Kaiserring"])
    assert work.geometry.equals_exact(line(KAISERRING), tolerance=0.05)
    browser_page.assert_clean()


def test_a_footway_closure_gets_its_pedestrian_route_drawn_and_removed_on_the_map(
    browser_page,  # noqa: F811 - the imported fixture
    alice,
    kaiserring_street,
):
    page = browser_page.page
    log_in(browser_page, "alice", "pw-alice-1", "/baustellen/neu/")
    page.wait_for_function("document.body.dataset.rwFormState === 'ready'")
    assert page.evaluate("document.body.dataset.rwPedestrian") == "none"
    find_kaiserring(page)
    page.click("#rw-draw-line")
    click_map(page, [(0.40, 0.50), (0.60, 0.50), (0.60, 0.50)])
    page.wait_for_function("document.body.dataset.rwArea === 'set'")

    # Drawn, removed, drawn again: only the last one is kept.
    page.click("#rw-draw-pedestrian")
    assert page.evaluate("document.body.dataset.rwDrawing") == "pedestrian"
    click_map(page, [(0.30, 0.30), (0.70, 0.30), (0.70, 0.30)])
    page.wait_for_function("document.body.dataset.rwPedestrian === 'set'")
    page.click("#rw-remove-pedestrian")
    page.wait_for_function("document.body.dataset.rwPedestrian === 'none'")
    page.click("#rw-draw-pedestrian")
    click_map(page, [(0.30, 0.70), (0.50, 0.75), (0.70, 0.70), (0.70, 0.70)])
    page.wait_for_function("document.body.dataset.rwPedestrian === 'set'")

    fill_application(page)
    page.select_option("#id_traffic_management", "footway_closure")
    page.click("#rw-save")
    page.wait_for_url("**/baustellen/*/")
    work = Roadwork.objects.get()
    assert (work.traffic_management, work.pedestrian_route.geom_type, work.pedestrian_route.num_coords) == (
        "footway_closure",
        "LineString",
        3,
    )
    browser_page.assert_clean()


def test_the_servers_messages_appear_beside_the_fields_and_the_drawing_survives(
    browser_page,  # noqa: F811 - the imported fixture
    alice,
):
    page = browser_page.page
    log_in(browser_page, "alice", "pw-alice-1", "/baustellen/neu/")
    page.wait_for_function("document.body.dataset.rwFormState === 'ready'")
    page.click("#rw-draw-detour")
    click_map(page, [(0.3, 0.5), (0.6, 0.5), (0.6, 0.5)])
    page.wait_for_function("document.body.dataset.rwDetours === '1'")
    page.fill("#id_contact_name", "Bauleitung")
    page.click("#rw-save")  # no title, no period, no works area
    page.wait_for_load_state()

    assert page.locator("#form-errors").is_visible()
    assert page.locator("#id_title_error").is_visible()
    assert page.locator("#id_geometry_error").is_visible()
    assert page.locator("#id_period_start_error").is_visible()
    assert page.get_attribute("#id_title", "aria-invalid") == "true"
    assert page.input_value("#id_contact_name") == "Bauleitung"
    # The detour drawn before is drawn again from what came back.
    page.wait_for_function("document.body.dataset.rwDetours === '1'")
    screenshot(browser_page, "roadwork-form-errors")
    assert Roadwork.objects.count() == 0
    expected = ("Failed to load resource: the server responded with a status of 400",)
    assert [e for e in browser_page.console_errors if not e.startswith(expected)] == []


def test_bob_follows_a_conflict_from_the_dashboard_to_its_map(
    browser_page,  # noqa: F811 - the imported fixture
    bob,
    stadtwerke,
):
    bauamt = Organisation.objects.create(name="Bauamt", kind=Organisation.Kind.CITY_DEPARTMENT)
    due = timezone.localdate() - timedelta(days=1)
    mine = make_roadwork(stadtwerke, status=S.SUBMITTED, period=from_now(days=5), decision_due=due)
    other = make_roadwork(
        bauamt, title="Kanalsanierung", geometry=line(KAISERRING_NEARBY), period=from_now(days=3, length=20)
    )
    first, second = sorted([mine, other], key=lambda work: work.pk)
    overlap = line(KAISERRING).buffer(10).intersection(line(KAISERRING_NEARBY).buffer(10))
    conflict = Conflict.objects.create(
        rule="C1",
        severity=Severity.ERROR,
        roadwork_a=first,
        roadwork_b=second,
        overlap_period=mine.period,
        place=MultiPolygon(overlap),
    )
    page = browser_page.page
    log_in(browser_page, "bob", "pw-bob-1", "/koordination/")
    assert page.locator(f"#rw-overdue [data-roadwork='{mine.pk}']").is_visible()
    screenshot(browser_page, "coordination-dashboard")

    page.locator(f"#conflicts [data-conflict='{conflict.pk}'] a").first.click()
    page.wait_for_function("document.body.dataset.mapFeatures === '3'")
    assert urlsplit(page.url).path == f"/konflikte/{conflict.pk}/"
    for role in ("works", "otherWorks", "place"):
        assert page.locator(f"#rw-feature-map path.rw-role-{role}").count() == 1, role
    screenshot(browser_page, "conflict-page")

    page.goto(f"{browser_page.base_url}/baustellen/zeitplan/?strasse=Kaiserring")
    assert page.locator("#rw-chart .rw-chart-row").count() == 2
    screenshot(browser_page, "timeline")
    browser_page.assert_clean()
