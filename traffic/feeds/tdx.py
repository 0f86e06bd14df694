"""TDx 1.1 RoadIncidentFeed: active incidents as GeoJSON road events.

Specification: https://github.com/usdot-jpo-ode/TDx (v1.1), the incident and restriction feeds that grew out of
WZDx and share its road event model; the official schema is in ../shared/data/schemas/wzdx/tdx-1.1/ (and a copy
in auman/data/schemas/ for ``manage.py check_feeds``). Same shape as the WZDx module, sharing its document SQL
(``wzdx.document_sql``): a fingerprint, the whole document written by PostgreSQL in one query (``incident_document``:
ids, related incidents, data sources and feed_info included) and the view.

Choices the specification leaves to the producer:

- Which incidents: reported and confirmed ones, the ones on the road now. A cleared or cancelled incident leaves
  at once (as it leaves the public map). With ``active_on`` the feed looks back: cleared incidents of that time
  are in it too, with their clearance as ``end_date``; cancelled ones (false reports) never are.
- Geometry: the affected stretch when the police drew one, as a LineString in the direction of travel, one road
  event per direction (as in the WZDx feed; the first keeps the incident's UUID, a second gets a UUIDv5). Else the
  incident's point, as a one-point MultiPoint, with direction ``unknown``.
- Types: TDx's incident types come from American traffic management; an accident is ``crash`` (and ``injury``
  when anyone was hurt or killed), a spill ``spill``, breakdowns, obstructions and hazards the general
  ``incident``, a police operation ``investigation``. "Other" sends an empty list (the field is required, a list of
  one or more is not).
- ``vehicle_impact``: lanes blocked give ``some-lanes-closed`` (how many lanes stay open is not recorded), none
  blocked ``all-lanes-open``, unknown ``unknown``.
- ``is_start_date_verified`` is true once the police confirmed the incident; positions are picked on a map, so
  never verified; ``location_method`` is ``unknown``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from traffic.models import ACTIVE_INCIDENT_STATUSES, IncidentDirection, IncidentKind, IncidentStatus

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .sql import fetch_document, incident_labels, utc_sql
from .wzdx import (
    document_params,
    document_sql,
    doubled_braces,
    feed_info_from_settings,
    json_object_sql,
    quoted_sql,
    related_links_sql,
    related_road_events_sql,
)

TDX_VERSION = "1.1"
CONTENT_TYPE = "application/geo+json"
FEED_NAME = "tdx-1.1-incidents"

FEED_STATUSES = ACTIVE_INCIDENT_STATUSES
LOOK_BACK_STATUSES = (*ACTIVE_INCIDENT_STATUSES, IncidentStatus.CLEARED)

# kind -> (incident_category, incident_type); a kind not named here sends an empty list.
TYPE_OF_INCIDENT = {
    IncidentKind.ACCIDENT: ("crash", "crash"),
    IncidentKind.SPILL: ("crash", "spill"),
    IncidentKind.BREAKDOWN: ("crash", "incident"),
    IncidentKind.OBSTRUCTION: ("crash", "incident"),
    IncidentKind.HAZARD: ("crash", "incident"),
    IncidentKind.POLICE_OPERATION: ("crash", "investigation"),
}


def _types_of_incident(kind: str, injured: str) -> str:
    """SQL for the types_of_incident JSON text of an incident of `kind`, `injured` or not."""
    return f"""coalesce((
            SELECT json_agg(json_build_object('incident_category', t.category, 'incident_type', t.type,
                                              'description', %(labels)s::jsonb ->> {kind}) ORDER BY t.n)::text
            FROM (SELECT %(types)s::jsonb -> {kind} ->> 0, %(types)s::jsonb -> {kind} ->> 1, 1
                  UNION ALL SELECT 'crash', 'injury', 2 WHERE {injured}) AS t(category, type, n)
            WHERE t.type IS NOT NULL), '[]')"""


_CORE_DETAILS = json_object_sql(
    ("event_type", """'"incident"'"""),
    ("data_source_id", "to_json(coalesce(e.organisation_id::text, %(publisher_id)s))::text"),
    (
        "road_names",
        "json_build_array(coalesce(NULLIF(e.street_name, ''), %(labels)s::jsonb ->> e.kind))::text",
    ),
    (
        "direction",
        """CASE WHEN e.affected_line IS NOT NULL AND e.direction <> %(unknown)s THEN '"undefined"'
                ELSE '"unknown"' END""",
    ),
    ("name", "to_json(concat_ws(', ', %(labels)s::jsonb ->> e.kind, NULLIF(e.street_name, '')))::text"),
    ("description", "to_json(NULLIF(e.description, ''))::text", True),
    ("creation_date", quoted_sql(utc_sql("e.created_at"))),
    ("update_date", quoted_sql(utc_sql("e.updated_at"))),
)

_PROPERTIES = json_object_sql(
    (
        "types_of_incident",
        # Written once per kind and injury (the kinds CTE); the expression itself only for a kind without a label.
        f"coalesce(e.types_text, {_types_of_incident('e.kind', 'e.injured')})",
    ),
    ("start_date", quoted_sql(utc_sql("e.occurred_at"))),
    ("end_date", quoted_sql(utc_sql("coalesce(e.cleared_at, e.expected_clearance_at)")), True),
    ("is_start_date_verified", "(e.confirmed_at IS NOT NULL)::text"),
    ("is_end_date_verified", "(e.cleared_at IS NOT NULL)::text"),
    ("is_start_position_verified", "'false'"),
    ("is_end_position_verified", "'false'"),
    ("location_method", """'"unknown"'"""),
    (
        "vehicle_impact",
        """CASE WHEN e.lanes_blocked > 0 THEN '"some-lanes-closed"'
                WHEN e.lanes_blocked = 0 THEN '"all-lanes-open"' ELSE '"unknown"' END""",
    ),
)

_INJURED = """a.id IS NOT NULL AND coalesce(a.killed, 0) + coalesce(a.seriously_injured, 0)
                                + coalesce(a.slightly_injured, 0) > 0"""

_FEATURES = f"""
-- types_of_incident depends on the kind and the injuries only: its sixteen texts are written once, not per event
-- (measured at 10,000 incidents: a fifth of the query).
kinds AS (
    SELECT k.kind, k.injured, {doubled_braces(_types_of_incident("k.kind", "k.injured"))} AS types_text
    FROM jsonb_object_keys(%(labels)s::jsonb) AS labels(kind)
    CROSS JOIN LATERAL (VALUES (labels.kind, false), (labels.kind, true)) AS k(kind, injured)
),
incidents AS (
    SELECT i.*, o.name AS organisation_name, o.email AS organisation_email, {_INJURED} AS injured, t.types_text
    FROM traffic_incident AS i
    LEFT JOIN accounts_organisation AS o ON o.id = i.organisation_id
    LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
    LEFT JOIN kinds AS t ON t.kind = i.kind AND t.injured = ({_INJURED})
    WHERE {{where}}
),
-- The texts are the same for both directions of an incident: written once per incident. A stretch in both
-- directions is two events: the first keeps the incident's id, the second gets a UUIDv5 ("backward"), and each
-- names the other; any other incident is one event.
texts AS (
    SELECT e.*,
           '","type":"Feature","properties":{{{{"core_details":' || left({doubled_braces(_CORE_DETAILS)}, -1) AS head,
           '}}}},' || substr({doubled_braces(_PROPERTIES)}, 2) || ',"geometry":' AS tail_start,
           CASE WHEN e.affected_line IS NOT NULL AND e.direction = %(both)s
                THEN uuid_generate_v5(e.id, 'backward')::text END AS backward_id
    FROM incidents AS e
),
events AS (
    SELECT n.*, travel.reversed,
           CASE WHEN travel.reversed AND n.backward_id IS NOT NULL THEN n.backward_id ELSE n.id::text END AS event_id,
           CASE WHEN n.backward_id IS NULL THEN NULL WHEN travel.reversed THEN ARRAY[n.id::text]
                ELSE ARRAY[n.backward_id] END AS others,
           CASE WHEN n.affected_line IS NULL THEN ST_Multi(ST_Transform(n.location, 4326))
                WHEN travel.reversed THEN ST_Reverse(ST_Transform(n.affected_line, 4326))
                ELSE ST_Transform(n.affected_line, 4326) END AS geom
    FROM texts AS n
    CROSS JOIN LATERAL (VALUES (false), (true)) AS travel(reversed)
    WHERE CASE WHEN n.affected_line IS NULL THEN NOT travel.reversed
               WHEN travel.reversed THEN n.direction IN (%(backward)s, %(both)s)
               ELSE n.direction <> %(backward)s END
),
features AS (
    SELECT e.occurred_at, e.id, e.reversed,
           concat('{{{{"id":"', e.event_id, e.head,
                  {doubled_braces(related_road_events_sql(related_links_sql("related-incident", "e.others")))},
                  e.tail_start, ST_AsGeoJSON(e.geom, 6), '}}}}') AS feature
    FROM events AS e
),
-- One source per organisation (and one for the incidents without), at its first incident in document order, with
-- the newest update of its incidents: every incident has an event (see events). Read again, narrow, rather than
-- from the incidents above, which would then be materialised with all their columns.
sources AS (
    SELECT DISTINCT ON (i.organisation_id) i.organisation_id, o.name AS organisation_name,
           o.email AS organisation_email, max(i.updated_at) OVER (PARTITION BY i.organisation_id) AS updated_at,
           i.occurred_at, i.id
    FROM traffic_incident AS i
    LEFT JOIN accounts_organisation AS o ON o.id = i.organisation_id
    WHERE {{where}}
    ORDER BY i.organisation_id, i.occurred_at DESC, i.id
)"""

_DOCUMENT_SQL = document_sql(
    ctes=_FEATURES,
    feature_order="f.occurred_at DESC, f.id, f.reversed",
    source_order="s.occurred_at DESC, s.id",
    version=TDX_VERSION,
)

_FINGERPRINT_SQL = """
SELECT count(*), max(i.updated_at), sum(i.xmin::text::bigint), sum(o.xmin::text::bigint), sum(a.xmin::text::bigint)
FROM traffic_incident AS i
LEFT JOIN accounts_organisation AS o ON o.id = i.organisation_id
LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
WHERE {where}
"""


def _where(filters: FeedFilters) -> tuple[str, dict[str, Any]]:
    extra, params = filters.sql("i", geometry="location")
    statuses = LOOK_BACK_STATUSES if filters.active_on else FEED_STATUSES
    params["statuses"] = list(statuses)
    return "i.status = ANY(%(statuses)s)" + extra, params


def incident_document(*, built_at: datetime, feed_info: Mapping[str, Any], filters: FeedFilters | None = None) -> bytes:
    """The RoadIncidentFeed document as UTF-8 bytes, written by PostgreSQL in one query (see wzdx.document_sql)."""
    where, params = _where(filters or FeedFilters())
    params.update(
        backward=IncidentDirection.BACKWARD,
        both=IncidentDirection.BOTH,
        unknown=IncidentDirection.UNKNOWN,
        publisher_id="publisher",
        labels=incident_labels(),
        types=json.dumps(TYPE_OF_INCIDENT),
        **document_params(built_at=built_at, feed_info=feed_info),
    )
    return fetch_document(_DOCUMENT_SQL.format(where=where), params)


def incident_fingerprint(*, filters: FeedFilters | None = None) -> str:
    """As the WZDx fingerprint: count, newest update and row versions of incidents, organisations and accidents."""
    where, params = _where(filters or FeedFilters())
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(where=where), params)
        count, last_update, *versions = cursor.fetchone()
    stamp = last_update.isoformat() if last_update else "-"
    return ":".join([str(count), stamp, *(str(v or 0) for v in versions)])


def build_now(filters: FeedFilters | None = None, *, now: datetime | None = None) -> bytes:
    return incident_document(built_at=now or timezone.now(), feed_info=feed_info_from_settings(), filters=filters)


@feed_view
def incident_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/tdx/v1.1/incidents.geojson[?bbox=...][&updated_since=...][&active_on=...]"""
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    feed_info = feed_info_from_settings()
    # The fingerprint is taken first (see serve_feed): the rows are read after it.
    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=lambda: incident_fingerprint(filters=filters),
        build=lambda built_at: incident_document(built_at=built_at, feed_info=feed_info, filters=filters),
        content_type=CONTENT_TYPE,
        variant={**filters.variant(), **{f"info.{k}": str(v) for k, v in feed_info.items()}},
    )


def validate(body: bytes) -> list[str]:
    from .validation import validate_tdx

    return validate_tdx(body)


FEED = register(
    Feed(
        key="tdx-incidents",
        title=_("Incidents (TDx)"),
        format="TDx 1.1 RoadIncidentFeed (GeoJSON)",
        url_name="feeds:tdx-incidents",
        content_type=CONTENT_TYPE,
        validate=validate,
        description=_("Accidents and other incidents on the road now, one road event per direction of travel."),
    )
)
