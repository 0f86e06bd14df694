"""Writes of the external sources: poll a source (fetch, parse, ingest) and keep its health.

A poll takes the source's lock (a PostgreSQL advisory lock: two workers never poll one source at once, and a worker
that dies releases it with its connection), fetches outside any transaction, parses, and then writes everything in
ONE transaction: the items (one INSERT ... ON CONFLICT for all of them, and one DELETE of those gone from the source,
in one statement) and the source's health. A feed that cannot be fetched or parsed, or whose write fails, leaves the
items as they were and records the error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from auman.geo import service_area_geometry

from .fetch import FetchError, fetch_source
from .models import SKIPPED_SHOWN, ExternalSource
from .parsers import FeedError, Item, ParseResult, get_parser

logger = logging.getLogger(__name__)

MSG_OUTSIDE = _("outside the service area")
MSG_PERIOD_ORDER = _("the end does not lie after the start")
MSG_WRITE_FAILED = _("The items could not be stored: {detail}")

_LOCK_KEY = 0x494E5450  # "INTP": advisory locks of source polls, second key the source id


@dataclass
class PollResult:
    status: str  # "ok", "not_modified", "error", "locked", "not_due", "disabled", "missing"
    items: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)


_UPSERT = """
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset(%(items)s::jsonb) AS t(
        source_item_id text, kind text, title text, description text, geometry jsonb,
        start_at timestamptz, end_at timestamptz, restriction text, properties jsonb)
),
placed AS (
    SELECT i.*, CASE WHEN ST_IsValid(g.raw) THEN g.raw ELSE ST_MakeValid(g.raw) END AS geom
      FROM incoming i
     CROSS JOIN LATERAL (
        SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(i.geometry::text), 4326), %(srid)s) AS raw
     ) g
),
judged AS (
    SELECT p.*, ST_Intersects(p.geom, area.g) AS inside
      FROM placed p CROSS JOIN (SELECT ST_GeomFromEWKB(%(area)s) AS g) area
),
kept AS (SELECT * FROM judged WHERE inside),
upserted AS (
    INSERT INTO interop_externalitem AS e
        (source_id, source_item_id, kind, title, description, geometry, period, restriction, properties,
         created_at, updated_at)
    SELECT %(source)s, source_item_id, kind, left(title, 500), description, geom,
           tstzrange(start_at, end_at, '[)'), restriction, properties, now(), now()
      FROM kept
    ON CONFLICT (source_id, source_item_id) DO UPDATE
       SET kind = EXCLUDED.kind, title = EXCLUDED.title, description = EXCLUDED.description,
           geometry = EXCLUDED.geometry, period = EXCLUDED.period, restriction = EXCLUDED.restriction,
           properties = EXCLUDED.properties, updated_at = now()
     WHERE (e.kind, e.title, e.description, e.period, e.restriction, e.properties)
           IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.title, EXCLUDED.description, EXCLUDED.period,
                             EXCLUDED.restriction, EXCLUDED.properties)
        OR NOT ST_OrderingEquals(e.geometry, EXCLUDED.geometry)
    RETURNING (xmax = 0) AS inserted
),
removed AS (
    DELETE FROM interop_externalitem e
     WHERE e.source_id = %(source)s AND e.source_item_id NOT IN (SELECT source_item_id FROM kept)
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept),
       (SELECT count(*) FROM upserted WHERE inserted),
       (SELECT count(*) FROM upserted WHERE NOT inserted),
       (SELECT count(*) FROM removed),
       (SELECT coalesce(jsonb_agg(source_item_id ORDER BY source_item_id), '[]'::jsonb) FROM judged WHERE NOT inside)
"""


def _row(item: Item) -> dict[str, Any]:
    return {
        "source_item_id": item.source_item_id[:300],
        "kind": item.kind,
        "title": item.title,
        "description": item.description,
        "geometry": item.geometry,
        "start_at": item.start.isoformat() if item.start else None,
        "end_at": item.end.isoformat() if item.end else None,
        "restriction": item.restriction,
        "properties": item.properties,
    }


def items_ingest(*, source: ExternalSource, parsed: ParseResult) -> PollResult:
    """Make the source's items what `parsed` says, in one statement: insert the new, update the changed, delete the
    gone; items outside the service area are skipped. Must run inside the poll's transaction."""
    parsed = parsed.deduplicated()
    usable: list[Item] = []
    for item in parsed.items:
        if item.start and item.end and item.end <= item.start:
            parsed.skip(item.source_item_id, MSG_PERIOD_ORDER)
            continue
        usable.append(item)
    area = service_area_geometry()
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT,
            {
                "items": json.dumps([_row(item) for item in usable], default=str),
                "srid": settings.AUMAN_SRID,
                "area": bytes(area.ewkb),
                "source": source.pk,
            },
        )
        kept, created, updated, removed, outside = cursor.fetchone()
    if isinstance(outside, str):
        outside = json.loads(outside)
    skipped = [s.as_dict() for s in parsed.skipped] + [
        {"record": record, "reason": str(MSG_OUTSIDE)} for record in outside
    ]
    return PollResult("ok", items=kept, created=created, updated=updated, removed=removed, skipped=skipped)


def _record_error(source_id: int, message: str) -> None:
    now = timezone.now()
    ExternalSource.objects.filter(pk=source_id).update(last_error=message[:2000], last_error_at=now)
    logger.warning("polling external source %s failed: %s", source_id, message)


def _try_lock(source_id: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_KEY, source_id])
        return bool(cursor.fetchone()[0])


def _unlock(source_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_KEY, source_id])


def source_poll(*, source_id: int, force: bool = False) -> PollResult:
    """Poll one source if it is due (or `force`), unless another worker is polling it right now."""
    if not _try_lock(source_id):
        return PollResult("locked")
    try:
        source = ExternalSource.objects.filter(pk=source_id).first()
        if source is None:  # deleted since the poll was queued
            return PollResult("missing")
        if not source.enabled and not force:
            return PollResult("disabled")
        if not force and not source.is_due():
            return PollResult("not_due")
        ExternalSource.objects.filter(pk=source_id).update(last_attempt_at=timezone.now())
        try:
            fetched = fetch_source(source)
        except FetchError as exc:
            _record_error(source_id, str(exc))
            return PollResult("error", error=str(exc))
        if fetched.body is None:
            ExternalSource.objects.filter(pk=source_id).update(last_success_at=timezone.now())
            return PollResult("not_modified", items=source.item_count)
        try:
            parsed = get_parser(source.format)(fetched.body)
        except FeedError as exc:
            _record_error(source_id, str(exc))
            return PollResult("error", error=str(exc))
        try:
            return _store(source, parsed, etag=fetched.etag, last_modified=fetched.last_modified)
        except DatabaseError as exc:
            message = str(MSG_WRITE_FAILED).format(detail=str(exc).splitlines()[0] if str(exc) else exc)
            _record_error(source_id, message)
            return PollResult("error", error=message)
    finally:
        _unlock(source_id)


@transaction.atomic
def _store(source: ExternalSource, parsed: ParseResult, *, etag: str, last_modified: str) -> PollResult:
    result = items_ingest(source=source, parsed=parsed)
    ExternalSource.objects.filter(pk=source.pk).update(
        last_success_at=timezone.now(),
        item_count=result.items,
        skipped_count=len(result.skipped),
        skipped=result.skipped[:SKIPPED_SHOWN],
        etag=etag[:500],
        last_modified=last_modified[:100],
    )
    if result.changed:
        external_conflicts_on_commit(source_id=source.pk)
    return result


def external_conflicts_on_commit(*, source_id: int | None) -> None:
    """Re-run rule C9 for one source's items after the commit (None: for all: a source was deleted or disabled)."""
    from jobs import outbox

    from . import tasks

    # Through the outbox: written with the change, handed to Celery after the commit, kept if the broker is down.
    outbox.enqueue(tasks.conflicts_detect_external, source_id)


@transaction.atomic
def conflicts_detect_for_source(*, source_id: int | None) -> dict[str, int]:
    """Rule C9 for the items of one source against every roadwork (None: the full sweep of C9)."""
    from roadworks import rules
    from roadworks.services import conflicts_sweep_rule

    if source_id is None:
        return conflicts_sweep_rule(code="C9")
    return rules.get("C9").for_source(source_id)


def sources_poll_due() -> dict[str, str]:
    """Poll every enabled source whose interval has passed, one after the other (manage.py poll_sources; the beat
    task enqueues a task per source instead)."""
    from .selectors import sources_due

    return {str(source_id): source_poll(source_id=source_id).status for source_id in sources_due()}
