"""The one list of AUMAn's public feeds: the /feeds/ index page and `manage.py check_feeds` read it.

Each feed module registers its feeds here when it is imported (traffic.apps.TrafficConfig.ready imports them), so a new
feed shows in the index and is checked without touching either."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.functional import Promise


@dataclass(frozen=True)
class Feed:
    key: str  # stable identifier, e.g. "wzdx-workzones"
    title: str | Promise  # for people, translated
    format: str  # standard and version, e.g. "WZDx 4.2 WorkZoneFeed"
    url_name: str  # reverse() name, e.g. "feeds:wzdx-workzones"
    content_type: str
    # Errors against the official schema (and the standard's business rules) for a body of this feed; [] when valid.
    validate: Callable[[bytes], list[str]]
    description: str | Promise = ""


FEEDS: dict[str, Feed] = {}


def register(feed: Feed) -> Feed:
    if feed.key in FEEDS and FEEDS[feed.key] != feed:
        raise ValueError(f"feed {feed.key!r} registered twice")
    FEEDS[feed.key] = feed
    return feed
