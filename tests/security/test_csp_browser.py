"""In a real browser, the pages that carry most script (map, application form, police quick entry) run under the
Content-Security-Policy without a single violation."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.maps.conftest import BrowserPage, browser  # noqa: F401 - the session browser fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Registered before any page script runs (init scripts come from the browser, not the page, so CSP allows them).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + (event.blockedURI || 'inline') + ' ' + event.sourceFile
    + ':' + event.lineNumber);
});
"""


@pytest.fixture
def strict_page(browser, live_server) -> Iterator[BrowserPage]:  # noqa: F811 - uses the imported fixture
    """Like tests/maps/conftest.py's browser_page, but the page keeps to the Content-Security-Policy (the other
    browser tests bypass it, because Playwright's wait_for_function needs eval)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="UTC")
    page = context.new_page()
    page.set_default_timeout(10_000)
    result = BrowserPage(page=page, base_url=live_server.url)
    own = urlsplit(live_server.url)

    def on_request(request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in ("data", "blob") and (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
            result.foreign_requests.append(request.url)

    page.on("request", on_request)
    page.on("console", lambda message: message.type == "error" and result.console_errors.append(message.text))
    page.on("pageerror", lambda error: result.console_errors.append(f"uncaught: {error}"))
    yield result
    context.close()


def _log_in(visit: BrowserPage, username: str, password: str, next_url: str) -> None:
    page = visit.page
    page.goto(f"{visit.base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.locator("form.login-form button[type=submit]").click()
    page.wait_for_load_state("networkidle")


def _violations(visit: BrowserPage) -> list[str]:
    return visit.page.evaluate("window.__cspViolations")


@pytest.mark.parametrize(
    ("user", "path", "ready"),
    [
        (None, "/", "#map .leaflet-pane"),
        ("alice", "/baustellen/neu/", "#id_title"),
        ("carol", "/polizei/neu/", "#qe-save"),
    ],
    ids=["map", "application-form", "police-quick-entry"],
)
def test_the_page_runs_under_the_policy_without_violations(strict_page, alice, carol, user, path, ready):
    page = strict_page.page
    page.add_init_script(RECORD_VIOLATIONS)
    if user is not None:
        _log_in(strict_page, user, f"pw-{user}-1", path)
    response = page.goto(f"{strict_page.base_url}{path}")
    assert response is not None and response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.wait_for_selector(ready, state="attached")
    page.wait_for_load_state("networkidle")
    assert _violations(strict_page) == []
    assert [message for message in strict_page.console_errors if "Content Security Policy" in message] == []
    strict_page.assert_clean()


def test_the_policy_is_really_enforced_in_this_browser(strict_page):
    """The check above would be empty if the browser ignored the header: an inline script must be refused."""
    page = strict_page.page
    page.add_init_script(RECORD_VIOLATIONS)
    page.goto(f"{strict_page.base_url}/")
    page.wait_for_selector("#map .leaflet-pane", state="attached")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in _violations(strict_page))
