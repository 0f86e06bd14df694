"""Browser fixtures: Debian's Chromium driven by Playwright's sync API, against pytest-django's live server.

Never `playwright install`: there is no browser download here; the system Chromium is the browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium phones home at start (component updates, sync, field trials): no network here.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI and these machines run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# The running browser, for the fixture imported into test modules elsewhere (from tests.maps.conftest import
# browser): each import is a fixture of its own to pytest, and a second sync_playwright() in this thread fails.
_RUNNING: dict[str, object] = {}


@pytest.fixture(scope="session")
def browser() -> Iterator:
    if "browser" in _RUNNING:
        yield _RUNNING["browser"]
        return
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio event loop in this thread (in a greenlet it switches to), so
    # Django's async-safety check sees a "running loop" and refuses every ORM call the test makes while the
    # browser is open, although nothing runs concurrently: each Playwright call blocks until it returns.
    # The live server answers in its own thread, unaffected. Set for the session because transactional_db
    # flushes the tables in its teardown, after function-scoped fixtures such as monkeypatch are undone.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        _RUNNING["browser"] = chromium
        try:
            yield chromium
        finally:
            del _RUNNING["browser"]
            chromium.close()


@dataclass
class BrowserPage:
    """A page plus what it did that a test must check: console errors and requests to other hosts."""

    page: object
    base_url: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.foreign_requests == [], self.foreign_requests


@pytest.fixture
def browser_page(browser, live_server) -> Iterator[BrowserPage]:
    # The browser runs in UTC on purpose: the map must show Europe/Berlin because it says so, not by accident.
    # bypass_csp: Playwright's wait_for_function runs its predicate through eval inside the page, which the
    # Content-Security-Policy (no 'unsafe-eval') refuses. The policy itself is tested in
    # tests/security/test_csp_browser.py, in a context that does not bypass it.
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, locale="de-DE", timezone_id="UTC", bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    result = BrowserPage(page=page, base_url=live_server.url)
    own = urlsplit(live_server.url)

    def on_request(request) -> None:
        result.requests.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob"):
            return
        if (parts.scheme, parts.netloc) != (own.scheme, own.netloc):
            result.foreign_requests.append(request.url)

    page.on("request", on_request)
    page.on("console", lambda message: message.type == "error" and result.console_errors.append(message.text))
    page.on("pageerror", lambda error: result.console_errors.append(f"uncaught: {error}"))
    # A dialog would mean injected markup ran (alert(1)); record it and keep the page usable.
    page.on("dialog", lambda dialog: (result.console_errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield result
    context.close()
