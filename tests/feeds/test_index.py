"""/feeds/ lists every registered feed with its format, URL and update frequency: German first for people,
JSON for programs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from traffic.feeds.registry import FEEDS

pytestmark = pytest.mark.django_db


def test_the_page_lists_every_registered_feed_in_german(client):
    response = client.get("/feeds/", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<html lang="de"' in page
    for feed in FEEDS.values():
        assert f"http://testserver{reverse(feed.url_name)}" in page
        assert feed.format in page
    assert "<script" not in page.split("</header>")[1]  # no inline script (CSP)


def test_the_page_follows_the_language_switch(client, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert '<html lang="en"' in client.get("/feeds/").content.decode()


@pytest.mark.parametrize("ask", [{"data": {"format": "json"}}, {"headers": {"Accept": "application/json"}}])
def test_it_lists_the_feeds_as_json_for_programs(client, settings, ask):
    settings.AUMAN_FEED_MAX_AGE = 90
    response = client.get("/feeds/", **ask)
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert [feed["key"] for feed in body["feeds"]] == list(FEEDS)
    wzdx = next(feed for feed in body["feeds"] if feed["key"] == "wzdx-workzones")
    assert wzdx["url"] == "http://testserver/feeds/wzdx/v4.2/workzones.geojson"
    assert wzdx["format"].startswith("WZDx 4.2") and wzdx["max_age_seconds"] == 90
    assert body["filters"] == ["bbox", "updated_since", "active_on"]
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Accept" in response["Vary"]
