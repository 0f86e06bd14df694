"""A plain GeoJSON FeatureCollection (RFC 7946) of everything public, for GIS tools (QGIS, ArcGIS, Leaflet).

Unlike WZDx and TDx it keeps every geometry as drawn (polygons, multi-lines, points) and flat properties that a
GIS table shows as columns. With them, the items of external sources marked include_in_city_feeds (item
"external", the source named). What is in it is what the public map shows: roadworks as roadworks.selectors'
``public_roadworks_q`` has them (approved, running, and completed ones for ``AUMAN_PUBLIC_COMPLETED_DAYS``) and
incidents on the road now. With ``active_on`` it looks back or ahead: public works and (not cancelled)
incidents in effect then.

PostgreSQL writes the whole document: each feature's properties with json_build_object, the feature around them
and ST_AsGeoJSON's text with concat (a json_build_object around the geometry would parse that text again, as
json, for nothing), joined with string_agg; Python adds nothing but the bytes' encoding.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from roadworks.models import IMPACT_BY_TRAFFIC_MANAGEMENT, RoadworkStatus
from traffic.models import ACTIVE_INCIDENT_STATUSES, IncidentStatus

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .sql import fetch_document, utc_sql

CONTENT_TYPE = "application/geo+json"
FEED_NAME = "geojson-public"

RUNNING_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)
LOOK_BACK_INCIDENT_STATUSES = (*ACTIVE_INCIDENT_STATUSES, IncidentStatus.CLEARED)


# Roadworks: running and coming ones, and completed ones ending after %(completed_since)s (the public map's rule).
_ROADWORKS_WHERE = (
    "(r.status = ANY(%(running)s) OR (r.status = %(completed)s AND upper(r.period) >= %(completed_since)s))"
)
_INCIDENTS_WHERE = "i.status = ANY(%(incident_statuses)s)"
# External items: only of enabled sources the city republishes; without active_on, those not ended yet.
_EXTERNAL_WHERE = "s.enabled AND s.include_in_city_feeds"
_EXTERNAL_CURRENT = " AND (upper(x.period) IS NULL OR upper(x.period) >= %(now)s)"

_DOCUMENT_SQL = f"""
WITH features AS (
    SELECT lower(r.period) AS start, r.id::text AS id, concat(
        '{{{{"type" : "Feature", "id" : "', r.id, '", "geometry" : ', ST_AsGeoJSON(ST_Transform(r.geometry, 4326), 6),
        ', "properties" : ', json_build_object(
            'item', 'roadwork',
            'reference', r.reference,
            'title', r.title,
            'description', r.description,
            'street_names', array_to_string(r.street_names, ', '),
            'organisation', o.name,
            'status', r.status,
            'start', {utc_sql("lower(r.period)")},
            'end', {utc_sql("upper(r.period)")},
            'daily_start', to_char(r.daily_start, 'HH24:MI'),
            'daily_end', to_char(r.daily_end, 'HH24:MI'),
            'weekdays', r.weekdays,
            'work_kind', r.work_kind,
            'traffic_management', r.traffic_management,
            'impact', %(impact)s::jsonb ->> r.traffic_management,
            'direction', r.direction,
            'lanes_affected', r.lanes_affected,
            'max_width_m', r.max_width_m,
            'max_height_m', r.max_height_m,
            'max_weight_t', r.max_weight_t,
            'speed_limit_kmh', r.speed_limit_kmh,
            'detours', coalesce(detours.n, 0),
            'updated', {utc_sql("r.updated_at")}
        ), '}}}}'
    ) AS feature
    FROM roadworks_roadwork AS r
    JOIN accounts_organisation AS o ON o.id = r.organisation_id
    -- One grouped pass over the detours rather than a look-up per work.
    LEFT JOIN (SELECT d.roadwork_id, count(*) AS n FROM roadworks_detour AS d GROUP BY d.roadwork_id) AS detours
           ON detours.roadwork_id = r.id
    WHERE {{roadworks_where}}
    UNION ALL
    SELECT i.occurred_at, i.id::text, concat(
        '{{{{"type" : "Feature", "id" : "', i.id, '", "geometry" : ',
        ST_AsGeoJSON(ST_Transform(coalesce(i.affected_line, i.location), 4326), 6),
        ', "properties" : ', json_build_object(
            'item', 'incident',
            'kind', i.kind,
            'description', i.description,
            'street_names', i.street_name,
            'status', i.status,
            'start', {utc_sql("i.occurred_at")},
            'end', {utc_sql("coalesce(i.cleared_at, i.expected_clearance_at)")},
            'direction', i.direction,
            'lanes_blocked', i.lanes_blocked,
            'updated', {utc_sql("i.updated_at")}
        ), '}}}}'
    )
    FROM traffic_incident AS i
    WHERE {{incidents_where}}
    UNION ALL
    -- Items of external sources the city republishes (interop: enabled and include_in_city_feeds), marked as such.
    SELECT lower(x.period), concat('ext-', x.source_id, '-', x.source_item_id), concat(
        '{{{{"type" : "Feature", "id" : ', to_json(concat('ext-', x.source_id, '-', x.source_item_id))::text,
        ', "geometry" : ', ST_AsGeoJSON(ST_Transform(x.geometry, 4326), 6),
        ', "properties" : ', json_build_object(
            'item', 'external',
            'source', s.name,
            'source_item_id', x.source_item_id,
            'kind', x.kind,
            'title', x.title,
            'description', x.description,
            'restriction', x.restriction,
            'start', {utc_sql("lower(x.period)")},
            'end', {utc_sql("upper(x.period)")},
            'updated', {utc_sql("x.updated_at")}
        ), '}}}}'
    )
    FROM interop_externalitem AS x
    JOIN interop_externalsource AS s ON s.id = x.source_id
    WHERE {{external_where}}
)
SELECT '{{{{"type":"FeatureCollection","features":[' || coalesce(string_agg(feature, ',' ORDER BY start, id), '')
       || ']}}}}'
FROM features
"""

_FINGERPRINT_SQL = """
SELECT (SELECT concat_ws(':', count(*), max(r.updated_at), sum(r.xmin::text::bigint), sum(o.xmin::text::bigint),
                         sum((SELECT count(*) FROM roadworks_detour AS d WHERE d.roadwork_id = r.id)))
        FROM roadworks_roadwork AS r JOIN accounts_organisation AS o ON o.id = r.organisation_id
        WHERE {roadworks_where}),
       (SELECT concat_ws(':', count(*), max(i.updated_at), sum(i.xmin::text::bigint))
        FROM traffic_incident AS i WHERE {incidents_where}),
       (SELECT concat_ws(':', count(*), max(x.updated_at), sum(x.xmin::text::bigint), sum(s.xmin::text::bigint))
        FROM interop_externalitem AS x JOIN interop_externalsource AS s ON s.id = x.source_id
        WHERE {external_where})
"""


def _where(now: datetime, filters: FeedFilters) -> tuple[dict[str, str], dict[str, Any]]:
    roadworks_extra, params = filters.sql("r")
    external_extra, external_params = filters.sql("x")
    params.update(external_params)
    incidents_extra, incident_params = filters.sql("i", geometry="location")
    params.update(incident_params)
    params.update(
        running=list(RUNNING_STATUSES),
        completed=RoadworkStatus.COMPLETED,
        # Looking back, any completed work of that time; else the map's few days after the end.
        completed_since=(now - timedelta(days=settings.AUMAN_PUBLIC_COMPLETED_DAYS)) if not filters.active_on else None,
        incident_statuses=list(LOOK_BACK_INCIDENT_STATUSES if filters.active_on else ACTIVE_INCIDENT_STATUSES),
    )
    roadworks_where = _ROADWORKS_WHERE + roadworks_extra
    if filters.active_on:
        roadworks_where = "r.status = ANY(%(all_public)s)" + roadworks_extra
        params["all_public"] = [*RUNNING_STATUSES, RoadworkStatus.COMPLETED]
    external_where = _EXTERNAL_WHERE + external_extra + ("" if filters.active_on else _EXTERNAL_CURRENT)
    params["now"] = now
    return {
        "roadworks_where": roadworks_where,
        "incidents_where": _INCIDENTS_WHERE + incidents_extra,
        "external_where": external_where,
    }, params


def document(*, now: datetime, filters: FeedFilters | None = None) -> bytes:
    """The whole FeatureCollection, written by PostgreSQL in one query."""
    where, params = _where(now, filters or FeedFilters())
    params["impact"] = json.dumps(IMPACT_BY_TRAFFIC_MANAGEMENT)
    return fetch_document(_DOCUMENT_SQL.format(**where), params)


def fingerprint(*, now: datetime, filters: FeedFilters | None = None) -> str:
    where, params = _where(now, filters or FeedFilters())
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL.format(**where), params)
        return "|".join(str(part) for part in cursor.fetchone())


def build_now(filters: FeedFilters | None = None, *, now: datetime | None = None) -> bytes:
    return document(now=now or timezone.now(), filters=filters)


@feed_view
def public_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/geojson/public.geojson[?bbox=...][&updated_since=...][&active_on=...]"""
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    now = timezone.now()
    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=lambda: fingerprint(now=now, filters=filters),
        build=lambda built_at: document(now=now, filters=filters),
        content_type=CONTENT_TYPE,
        variant=filters.variant(),
    )


def validate(body: bytes) -> list[str]:
    from .validation import validate_geojson

    return validate_geojson(body)


FEED = register(
    Feed(
        key="geojson-public",
        title=_("Roadworks and incidents (GeoJSON)"),
        format="GeoJSON (RFC 7946) FeatureCollection",
        url_name="feeds:geojson-public",
        content_type=CONTENT_TYPE,
        validate=validate,
        description=_("Everything the public map shows, with its geometry as drawn, for GIS tools."),
    )
)
