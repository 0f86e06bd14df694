"""The police quick entry in Debian's Chromium, phone-sized: log a simple accident in a handful of taps.

The officer's phone is a 390×844 viewport with touch, its position granted and set to a point on Kaiserring in
Mannheim. The "under 30 seconds" goal is for a person; the test counts the interactions instead of timing them.
Screenshots land in test-artifacts/ for a human to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from maps.models import StreetSegment
from tests.conftest import KAISERRING, line, make_incident
from tests.maps.conftest import ARTIFACTS, BrowserPage, browser  # noqa: F401 - the session browser fixture
from traffic.models import Accident, Incident, IncidentStatus, IncidentTransition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# On Kaiserring, between the ends of the test street (tests.conftest.KAISERRING).
OFFICER_POSITION = {"latitude": 49.48460, "longitude": 8.47510, "accuracy": 8}
PHONE = {"width": 390, "height": 844}
MAX_INTERACTIONS = 9


@dataclass
class Officer:
    """Drives the page like a person would, counting every tap, choice and keystroke field."""

    page: object
    interactions: int = 0

    def tap(self, selector: str) -> None:
        self.page.locator(selector).tap()
        self.interactions += 1

    def choose(self, selector: str, value: str) -> None:
        self.page.locator(selector).select_option(value)
        self.interactions += 1

    def type_into(self, selector: str, text: str) -> None:
        self.page.locator(selector).fill(text)
        self.interactions += 1


@pytest.fixture
def phone(browser, live_server) -> Iterator[BrowserPage]:  # noqa: F811 - uses the imported fixture
    # bypass_csp: Playwright's wait_for_function runs its predicate through eval inside the page, which the
    # Content-Security-Policy (no 'unsafe-eval') refuses. The policy itself is tested in
    # tests/security/test_csp_browser.py, in a context that does not bypass it.
    context = browser.new_context(
        bypass_csp=True,
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="de-DE",
        timezone_id="Europe/Berlin",
        geolocation=OFFICER_POSITION,
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    result = BrowserPage(page=page, base_url=live_server.url)
    own = urlsplit(live_server.url)

    def on_request(request) -> None:
        result.requests.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob") and (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
            result.foreign_requests.append(request.url)

    page.on("request", on_request)
    page.on("console", lambda message: message.type == "error" and result.console_errors.append(message.text))
    page.on("pageerror", lambda error: result.console_errors.append(f"uncaught: {error}"))
    page.on("dialog", lambda dialog: (result.console_errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield result
    context.close()


def screenshot(phone: BrowserPage, name: str) -> None:
    """The whole page, not only the part in view: a phone page is long."""
    ARTIFACTS.mkdir(exist_ok=True)
    phone.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(phone: BrowserPage, username: str, password: str, next_url: str) -> None:
    page = phone.page
    page.goto(f"{phone.base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form.login-form button[type=submit]").click()
    page.wait_for_load_state()


def test_an_officer_logs_a_simple_accident_on_a_phone_in_a_few_taps(phone, carol):
    StreetSegment.objects.create(osm_way_id=4711, name="Kaiserring", highway="primary", geometry=line(KAISERRING))
    page = phone.page
    log_in(phone, "carol", "pw-carol-1", "/polizei/neu/")
    assert urlsplit(page.url).path == "/polizei/neu/"
    page.wait_for_function("document.body.dataset.qeState === 'ready'")
    # One column that fits the phone: nothing wider than the screen, so no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Save is big and always on screen (a sticky bar), so no one scrolls to find it.
    save_box = page.locator("#qe-save").bounding_box()
    assert save_box["height"] >= 48 and save_box["width"] >= 300
    assert save_box["y"] >= 0 and save_box["y"] + save_box["height"] <= PHONE["height"]

    officer = Officer(page)
    officer.tap("#qe-locate")
    page.wait_for_function("document.body.dataset.streetLookup === 'found'")
    assert page.input_value("#qe-street_name") == "Kaiserring"
    assert page.locator(".leaflet-marker-icon").count() == 1
    # Accident is the preselected kind; its codes are picked from short lists.
    assert page.locator("#qe-kind-accident").is_checked()
    officer.choose("#qe-accident-category", "5")
    officer.choose("#qe-accident-type", "6")
    officer.choose("#qe-accident-kind", "2")
    officer.tap("label[for=qe-involves-car]")
    # Category 5 is property damage only: no casualty fields to fill in.
    assert page.locator("#qe-casualties").is_hidden()
    screenshot(phone, "quick-entry-phone-filled")
    officer.tap("#qe-save")

    page.wait_for_function("document.body.dataset.qeState === 'saved'")
    assert page.locator("#qe-success").is_visible()
    assert "Kaiserring" in page.text_content("#qe-success-text")
    screenshot(phone, "quick-entry-phone-saved")
    assert officer.interactions <= MAX_INTERACTIONS, officer.interactions

    incident = Incident.objects.get()
    assert page.evaluate("document.body.dataset.savedIncident") == str(incident.pk)
    assert (incident.kind, incident.status, incident.street_name) == ("accident", "reported", "Kaiserring")
    assert incident.reported_by == carol
    position = incident.location.transform(4326, clone=True)
    assert position.x == pytest.approx(OFFICER_POSITION["longitude"], abs=1e-5)
    assert position.y == pytest.approx(OFFICER_POSITION["latitude"], abs=1e-5)
    accident = Accident.objects.get()
    assert accident.incident == incident
    assert (accident.category, accident.type, accident.kind) == (5, 6, 2)
    assert accident.involves_car and not accident.involves_bicycle
    assert (accident.killed, accident.seriously_injured, accident.slightly_injured) == (0, 0, 0)
    assert IncidentTransition.objects.get().by == carol
    phone.assert_clean()

    # "New entry" gives an empty form for the next one.
    page.locator("#qe-new").tap()
    page.wait_for_function("document.body.dataset.qeState === 'ready'")
    assert page.locator("#quick-entry").is_visible()
    assert page.input_value("#qe-accident-category") == ""
    assert page.locator(".leaflet-marker-icon").count() == 0


def test_the_api_messages_appear_beside_the_fields(phone, carol):
    page = phone.page
    log_in(phone, "carol", "pw-carol-1", "/polizei/neu/")
    page.wait_for_function("document.body.dataset.qeState === 'ready'")

    # Saving without a place is stopped on the page.
    page.locator("#qe-save").tap()
    assert page.text_content("#error-location").strip()
    assert Incident.objects.count() == 0

    # A tap on the map places the incident; casualty fields appear for an accident with injuries.
    page.locator("#qe-map").tap(position={"x": 195, "y": 120})
    page.wait_for_function("document.body.dataset.streetLookup !== 'pending'")
    page.select_option("#qe-accident-category", "1")
    assert page.locator("#qe-accident-killed").is_visible()
    page.select_option("#qe-accident-category", "3")
    assert page.locator("#qe-accident-killed").is_hidden()
    assert page.locator("#qe-accident-slightly_injured").is_visible()
    # Category 3 without a slightly injured person, and no type: the API says what is wrong, where.
    page.select_option("#qe-accident-kind", "5")
    page.locator("#qe-save").tap()
    page.wait_for_function(
        "document.body.dataset.qeState === 'ready' && document.getElementById('qe-form-error').textContent"
    )
    assert page.text_content("#error-accident-slightly_injured").strip()
    assert page.text_content("#error-accident-type").strip()
    assert page.get_attribute("#qe-accident-type", "aria-invalid") == "true"
    screenshot(phone, "quick-entry-phone-errors")
    assert Incident.objects.count() == 0

    page.fill("#qe-accident-slightly_injured", "1")
    page.select_option("#qe-accident-type", "3")
    page.locator("#qe-save").tap()
    page.wait_for_function("document.body.dataset.qeState === 'saved'")
    assert Accident.objects.get().slightly_injured == 1
    # The browser logs the 400 answer (and the street lookup's 404: no street here) as failed resources;
    # nothing else may have gone wrong.
    expected = ("Failed to load resource: the server responded with a status of 40",)
    assert [e for e in phone.console_errors if not e.startswith(expected)] == []
    assert phone.foreign_requests == []


def test_the_staff_list_clears_an_incident_with_one_tap(phone, carol, api):
    now = timezone.now()
    incident = make_incident(street_name="Luisenring", reported_at=now - timedelta(minutes=3))
    IncidentTransition.objects.create(incident=incident, to_status="reported", at=incident.reported_at)
    page = phone.page
    log_in(phone, "carol", "pw-carol-1", "/polizei/")
    item = page.locator(f"[data-incident='{incident.pk}']")
    item.locator("button[data-to=cleared]").tap()
    item.locator(".pl-status[data-status=cleared]").wait_for()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLEARED
    assert incident.transitions.order_by("-at").first().by == carol
    # The row now offers only what a cleared incident allows: reopening, with a reason.
    assert item.locator("button[data-to]").evaluate_all("buttons => buttons.map(b => b.dataset.to)") == ["confirmed"]
    item.locator("button[data-to=confirmed]").tap()
    assert item.locator(".pl-message").text_content().strip()
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLEARED
    screenshot(phone, "incident-list-phone")
    phone.assert_clean()
    assert api(None).get("/api/v1/incidents/").json()["features"] == []


def test_the_page_refuses_dave(phone, dave):
    page = phone.page
    log_in(phone, "dave", "pw-dave-1", "/")
    response = page.goto(f"{phone.base_url}/polizei/neu/")
    assert response.status == 403


def test_the_page_sends_anonymous_users_to_the_login(phone):
    page = phone.page
    page.goto(f"{phone.base_url}/polizei/neu/")
    assert urlsplit(page.url).path == "/accounts/login/"
    assert "next=/polizei/neu/" in page.url
    assert page.locator("#id_username").is_visible()
