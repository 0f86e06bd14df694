"""manage.py check_feeds: build every registered feed, validate it, and report stale items.

As the WZDx feed dashboard does for published feeds: each feed's body is checked against its official schema and
its standard's business rules (Feed.validate), and the data behind the feeds is searched for items a consumer
would distrust: still published although they ended more than --stale-days ago, or not updated for that long.

Exit code 1 when a feed fails to build or validate (and, with --strict, when stale items exist); 0 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.test import RequestFactory
from django.urls import resolve, reverse
from django.utils import timezone

from roadworks.models import Roadwork, RoadworkStatus
from traffic.feeds.registry import FEEDS, Feed
from traffic.models import ACTIVE_INCIDENT_STATUSES, Incident

MAX_ERRORS_SHOWN = 20
MAX_IDS_SHOWN = 10


@dataclass(frozen=True)
class StaleSource:
    """Published items of one kind, and the fields that say when they end and when they were last touched."""

    label: str
    published: Callable[[], QuerySet]
    end_lookup: str  # a lookup on the end time, e.g. "period__endswith"
    updated_field: str = "updated_at"


# What the feeds publish: roadworks on the road or coming, and incidents on the road now.
STALE_SOURCES = (
    StaleSource(
        "roadworks",
        lambda: Roadwork.objects.filter(status__in=(RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)),
        "period__endswith",
    ),
    StaleSource(
        "incidents",
        lambda: Incident.objects.filter(status__in=ACTIVE_INCIDENT_STATUSES),
        "expected_clearance_at",
    ),
)


def stale_items(source: StaleSource, *, days: int) -> dict[str, list[str]]:
    """Ids of published items that ended more than `days` ago, and of those not updated for `days`."""
    cutoff = timezone.now() - timedelta(days=days)
    published = source.published()
    ended = published.filter(Q(**{f"{source.end_lookup}__lt": cutoff}))
    untouched = published.filter(Q(**{f"{source.updated_field}__lt": cutoff}))
    return {
        f"ended more than {days} days ago": [str(pk) for pk in ended.order_by("pk").values_list("pk", flat=True)],
        f"not updated for {days} days": [str(pk) for pk in untouched.order_by("pk").values_list("pk", flat=True)],
    }


def fetch(feed: Feed) -> tuple[int, bytes]:
    """The feed as a plain GET (no conditions, no compression) gets it, through its view."""
    import traffic.feeds.urls  # noqa: F401  - the feed modules register themselves on import

    path = reverse(feed.url_name)
    host = urlsplit(settings.SITE_URL).netloc or "localhost"
    request = RequestFactory().get(path, HTTP_HOST=host)
    response = resolve(path).func(request)
    return response.status_code, response.content


class Command(BaseCommand):
    help = "Build and validate every registered feed against its official schema; report stale items."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--feed", action="append", dest="feeds", help="check only this feed (key); repeatable")
        parser.add_argument("--stale-days", type=int, default=14, help="age that makes an item stale (default 14)")
        parser.add_argument("--strict", action="store_true", help="fail (exit code 1) on stale items too")

    def handle(self, *args, feeds: list[str] | None, stale_days: int, strict: bool, **options) -> None:
        import traffic.feeds.urls  # noqa: F401

        unknown = sorted(set(feeds or []) - set(FEEDS))
        if unknown:
            raise CommandError(f"unknown feed(s): {', '.join(unknown)}; known: {', '.join(FEEDS)}")
        failures = 0
        for feed in FEEDS.values():
            if feeds and feed.key not in feeds:
                continue
            started = time.perf_counter()
            try:
                status, body = fetch(feed)
            except Exception as exc:  # noqa: BLE001 - a feed that cannot be built is the report, not a crash
                failures += 1
                self.stdout.write(self.style.ERROR(f"ERROR {feed.key}: could not be built: {exc!r}"))
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            if status != 200:
                failures += 1
                self.stdout.write(self.style.ERROR(f"ERROR {feed.key}: HTTP {status}"))
                continue
            errors = feed.validate(body)
            summary = f"{feed.key} ({feed.format}): {len(body) / 1024:,.1f} KiB in {elapsed_ms:,.0f} ms"
            if errors:
                failures += 1
                self.stdout.write(self.style.ERROR(f"ERROR {summary}: {len(errors)} error(s)"))
                for error in errors[:MAX_ERRORS_SHOWN]:
                    self.stdout.write(f"  - {error}")
                if len(errors) > MAX_ERRORS_SHOWN:
                    self.stdout.write(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more")
            else:
                self.stdout.write(self.style.SUCCESS(f"OK    {summary}"))

        stale = 0
        for source in STALE_SOURCES:
            for what, ids in stale_items(source, days=stale_days).items():
                if not ids:
                    continue
                stale += len(ids)
                shown = ", ".join(ids[:MAX_IDS_SHOWN]) + (" ..." if len(ids) > MAX_IDS_SHOWN else "")
                self.stdout.write(self.style.WARNING(f"STALE {len(ids)} {source.label} {what}: {shown}"))
        if not stale:
            self.stdout.write(f"No stale items (older than {stale_days} days).")

        if failures:
            raise CommandError(f"{failures} feed(s) failed")
        if strict and stale:
            raise CommandError(f"{stale} stale item(s)")
