"""The map against WCAG 2.1 AA, checked by axe-core in Debian's Chromium: the public map and the staff map with
every layer on, a popup open and details in the side panel.

axe-core is vendored under static/vendor/axe-core (see its SOURCE.md) and added to the page by URL, from the
same origin, so the page's Content-Security-Policy (script-src 'self') lets it run and no network is needed.
"""

from __future__ import annotations

import json

import pytest

from roadworks.models import Detour, RoadworkStatus, TrafficManagement
from tests.conftest import KAISERRING, line, make_incident, make_roadwork
from tests.maps.factories import make_black_spot
from tests.maps.test_map_browser import LUISENRING, log_in, running
from tests.maps.test_map_browser_client import open_map, until
from traffic.models import IncidentKind

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE_URL = "/static/vendor/axe-core/axe.min.js"
# The success criteria the city requires: WCAG 2.0 and 2.1, levels A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


def axe_violations(browser_page) -> list[dict]:
    page = browser_page.page
    page.add_script_tag(url=browser_page.base_url + AXE_URL)
    until(page, "typeof window.axe === 'object'")
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"][:5]],
        }
        for violation in result["violations"]
    ]


def popup_shown(page) -> None:
    # Leaflet fades popups in; checked half transparent, their text would fail on contrast.
    until(page, "getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'")


def blocking(violations: list[dict]) -> list[dict]:
    return [violation for violation in violations if violation["impact"] in BLOCKING]


def some_data(organisation) -> None:
    work = make_roadwork(
        organisation,
        title="Vollsperrung Kaiserring",
        geometry=line(KAISERRING),
        period=running(),
        traffic_management=TrafficManagement.FULL_CLOSURE,
    )
    Detour.objects.create(roadwork=work, name="Umleitung Luisenring", geometry=line(LUISENRING))
    make_roadwork(organisation, geometry=line(LUISENRING), period=running(), status=RoadworkStatus.SUBMITTED)
    make_incident(kind=IncidentKind.ACCIDENT)
    make_incident(kind=IncidentKind.HAZARD, location=line(LUISENRING).centroid)


def test_axe_finds_no_serious_or_critical_violations_on_the_public_map(browser_page, stadtwerke):
    some_data(stadtwerke)
    page = browser_page.page
    open_map(browser_page, expected=3)
    until(page, "Number(document.body.dataset.listCount) >= 4")  # with the detour
    violations = axe_violations(browser_page)
    assert blocking(violations) == [], json.dumps(violations, indent=1)

    # With a feature chosen from the list: popup and side panel filled.
    page.locator("#map-list .map-list-item").first.click()
    page.locator(".leaflet-popup-content .auman-popup").wait_for()
    popup_shown(page)
    violations = axe_violations(browser_page)
    assert blocking(violations) == [], json.dumps(violations, indent=1)
    browser_page.screenshot("map-a11y-public")
    browser_page.assert_clean()


def test_axe_finds_no_serious_or_critical_violations_on_the_staff_map_with_every_layer_on(
    browser_page, bob, stadtwerke
):
    some_data(stadtwerke)
    make_black_spot()
    log_in(browser_page, bob)
    page = browser_page.page
    layers = "roadworks,detours,incidents,accidents,black_spots,moratoria,events,corridors,conflicts"
    open_map(browser_page, f"#map=14/49.4870/8.4700&layers={layers}")
    until(page, "document.body.dataset.featuresLoaded === '5'")
    until(
        page, "document.body.dataset.apiLoadedConflicts === '0' && document.body.dataset.tilesLoadedAccidents === '1'"
    )
    assert page.locator("#map-live").is_checked()
    violations = axe_violations(browser_page)
    assert blocking(violations) == [], json.dumps(violations, indent=1)

    page.locator("#map-list tr[data-layer='roadworks'] .map-list-item").first.click()
    page.locator("#map-details-body a").wait_for()
    popup_shown(page)
    violations = axe_violations(browser_page)
    assert blocking(violations) == [], json.dumps(violations, indent=1)
    browser_page.screenshot("map-a11y-staff")
    browser_page.assert_clean()
