"""Benchmark: the time to a drawn map with the demo data, in headless Chromium (Debian's, driven by Playwright).

Run from the repository root against the dev database with the demo data loaded (`manage.py load_demo`):

    .venv/bin/python bench/map_render.py [--loads 10] [--no-write]

Serves the project with Django's live-server thread (the ordinary WSGI application and its static files, no base
map, as the tests do) and opens the map page `--loads` times for each case, side by side in one run:
  a) public, cold: a new browser context for each load (empty cache, new connection);
  b) public, warm: the same context reloading (static files from the browser's cache, features revalidated);
  c) staff (the demo authority user `behoerde`), cold: works under review too, live updates on, staff layers known;
  d) public, zoomed out to 10 (roadworks as vector tiles, incidents clustered), cold.
"Drawn" is the page's own mark `auman-map-drawn` (performance.mark in static/maps/map.js), set once the first
features answer has been turned into SVG paths and markers; measured from the start of navigation. Also listed:
DOMContentLoaded, and the number of features drawn. Median and maximum of the loads.

Writes nothing to the database but one session row for the staff case, deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, machine_lines, setup_django, write_section

setup_django()

from django.conf import settings  # noqa: E402

HEADING = "## Map: time to a drawn map"
CHROMIUM = "/usr/bin/chromium"
# As in tests/maps/conftest.py: no network beyond the page's own server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STAFF_USER = "behoerde"
TIMEOUT_S = 30.0


def serve():
    """The live-server thread on a free port, with plain static files (no collectstatic manifest needed)."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.test.testcases import LiveServerThread

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    # No base map: the tile server is not reachable here, and its tiles are not what is measured.
    settings.AUMAN_TILE_URL = ""
    thread = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    return thread, f"http://127.0.0.1:{thread.port}"


def staff_cookie() -> tuple[str, str]:
    """A session for the demo authority user, written directly: a login would run the login signals (lockout
    bookkeeping), which are not what is measured."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    user = User.objects.get(username=STAFF_USER)
    backend = next(
        (path for path in settings.AUTHENTICATION_BACKENDS if path.endswith("ModelBackend")),
        settings.AUTHENTICATION_BACKENDS[-1],
    )
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = backend
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return settings.SESSION_COOKIE_NAME, session.session_key


def wait_drawn(page) -> dict:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = page.evaluate(
            """(() => {
                const drawn = performance.getEntriesByName('auman-map-drawn')[0];
                if (!drawn) return null;
                const nav = performance.getEntriesByType('navigation')[0];
                return {drawn: drawn.startTime, dcl: nav ? nav.domContentLoadedEventEnd : null,
                        features: Number(document.body.dataset.featuresLoaded || 0)};
            })()"""
        )
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError("the map was not drawn within the time limit")
        page.wait_for_timeout(10)


def measure(
    browser, base_url: str, *, loads: int, fragment: str = "", cookie: tuple[str, str] | None = None, warm: bool = False
) -> list[dict]:
    results = []
    context = None
    for index in range(loads + 1):  # the first load warms the server (imports, plan cache) and is not counted
        if context is None or not warm:
            if context is not None:
                context.close()
            context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
            if cookie:
                context.add_cookies([{"name": cookie[0], "value": cookie[1], "url": base_url}])
            page = context.new_page()
            page.goto(base_url + "/" + fragment)
        else:
            page.reload()
        result = wait_drawn(page)
        if index:
            results.append(result)
    context.close()
    return results


def summary(results: list[dict]) -> dict:
    drawn = [r["drawn"] for r in results]
    dcl = [r["dcl"] for r in results if r["dcl"] is not None]
    return {
        "median": statistics.median(drawn),
        "max": max(drawn),
        "dcl": statistics.median(dcl) if dcl else float("nan"),
        "features": results[-1]["features"],
        "n": len(results),
    }


def run(loads: int) -> dict[str, dict]:
    from playwright.sync_api import sync_playwright

    thread, base_url = serve()
    name, value = staff_cookie()
    cases: dict[str, dict] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            cases["a) public, cold"] = summary(measure(browser, base_url, loads=loads))
            cases["b) public, warm (reload)"] = summary(measure(browser, base_url, loads=loads, warm=True))
            cases["c) staff, cold"] = summary(measure(browser, base_url, loads=loads, cookie=(name, value)))
            cases["d) public, zoom 10 (tiles), cold"] = summary(
                measure(browser, base_url, loads=loads, fragment="#map=10/49.4875/8.4660")
            )
            browser.close()
    finally:
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key=value).delete()
        thread.terminate()
    return cases


def section(info: dict[str, str], cases: dict[str, dict], loads: int) -> str:
    lines = [
        HEADING,
        "",
        "`bench/map_render.py`: the map page opened in headless Chromium (Debian's, through Playwright) against "
        "Django's live-server thread with the demo data (`load_demo`), no base map. *Drawn* runs from the start of "
        "navigation to the page's mark `auman-map-drawn`, set when the first features answer has become SVG paths "
        "and markers; DOMContentLoaded for comparison.",
        "",
        *machine_lines(info),
        "Figures taken on a shared 2-core machine that other jobs were using at the same time: read them as orders "
        "of magnitude, and compare the cases with each other rather than with other runs.",
        "",
        "| case | loads | drawn, median ms | drawn, max ms | DOMContentLoaded, median ms | features drawn |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, case in cases.items():
        lines.append(
            f"| {label} | {case['n']} | {case['median']:.0f} | {case['max']:.0f} | {case['dcl']:.0f} "
            f"| {case['features']} |"
        )
    lines += [
        "",
        "Cold loads fetch Leaflet, the two plugins and map.js anew each time (about 330 kB uncompressed); "
        "warm reloads take them from the browser's cache and revalidate only the features. The staff map carries "
        "more (works under review, the staff layers' legend) and starts live polling; at zoom 10 roadworks come as "
        "vector tiles, which load after the mark, so case d measures the page without them.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    info = machine()
    cases = run(args.loads)
    text = section(info, cases, args.loads)
    print("\n" + text)
    if not args.no_write:
        write_section(HEADING, text)


if __name__ == "__main__":
    main()
