"""What the map shows, built as GeoJSON bytes in PostGIS.

The visibility rules stay in roadworks_visible_to / incidents_visible_to: their querysets are narrowed to what
belongs on a map right now, compiled to SQL and wrapped in json_build_object/json_agg, so PostgreSQL does the
transformation to WGS84 and the serialisation in one round trip instead of a Python loop over objects.
Black spots come from traffic.blackspot_selectors, which defines their JSON once; who may see them is
traffic.permissions' decision, applied here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.contrib.auth.models import AnonymousUser
from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.contrib.gis.geos import Polygon
from django.db import connection
from django.db.models import Case, CharField, IntegerField, Q, QuerySet, Value, When
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from auman.geo import WGS84
from roadworks.models import IMPACT_BY_TRAFFIC_MANAGEMENT, Impact, RoadworkStatus, TrafficManagement
from roadworks.selectors import roadworks_visible_to
from traffic.blackspot_selectors import black_spot_features_sql
from traffic.models import ACTIVE_INCIDENT_STATUSES, IncidentKind, IncidentStatus
from traffic.permissions import can_use_accident_commission_pages, can_view_black_spots
from traffic.selectors import incidents_visible_to

ROADWORKS = "roadworks"
INCIDENTS = "incidents"
BLACK_SPOTS = "black_spots"
MAP_LAYERS = (ROADWORKS, INCIDENTS, BLACK_SPOTS)

# Works on the road now or coming. Which of them a user actually sees is decided by roadworks_visible_to:
# the public gets approved and running works, staff also those under review, applicants also their own.
MAP_ROADWORK_STATUSES = (
    RoadworkStatus.APPROVED,
    RoadworkStatus.IN_PROGRESS,
    RoadworkStatus.SUBMITTED,
    RoadworkStatus.MODIFICATION_REQUESTED,
)

PHASE_ACTIVE = "active"
PHASE_PLANNED = "planned"

# Coordinates with 6 decimals are about 0.1 m: plenty for a map, and a third smaller than full precision.
GEOJSON_PRECISION = 6

# Most severe last, so closures are drawn on top of lesser restrictions at the same place.
_IMPACT_DRAW_RANK = {impact: rank for rank, impact in enumerate(reversed(Impact))}


def _impact_case() -> Case:
    """impact from traffic_management, generated from IMPACT_BY_TRAFFIC_MANAGEMENT so the mapping lives once."""
    whens = [
        When(traffic_management=tm, then=Value(impact.value)) for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items()
    ]
    return Case(*whens, default=Value(None), output_field=CharField())


def _impact_rank_case() -> Case:
    whens = [
        When(traffic_management=tm, then=Value(_IMPACT_DRAW_RANK[impact]))
        for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items()
    ]
    return Case(*whens, default=Value(0), output_field=IntegerField())


def _label_case(field: str, choices: list[tuple[str, str]]) -> Case:
    """The display label of a choice field in the active language, as a CASE whose labels are query parameters.

    Cheaper than a pass over the rows in Python, and the JSON leaves PostgreSQL finished.
    """
    whens = [When(**{field: value}, then=Value(str(label))) for value, label in choices]
    return Case(*whens, default=Value(""), output_field=CharField())


def map_layers_for(user: User | None) -> tuple[str, ...]:
    """The layers `user` may see, in MAP_LAYERS order: black spots only for the accident commission, or for everyone
    where the city publishes them."""
    user = user if user is not None else AnonymousUser()
    return tuple(name for name in MAP_LAYERS if name != BLACK_SPOTS or can_view_black_spots(user))


def _roadworks_sql(user: User | None, bbox: Polygon | None, now: datetime) -> tuple[str, tuple]:
    qs: QuerySet = roadworks_visible_to(user).filter(status__in=MAP_ROADWORK_STATUSES, period__endswith__gt=now)
    if bbox is not None:
        qs = qs.filter(geometry__intersects=bbox)
    qs = qs.order_by().annotate(
        geojson=AsGeoJSON(Transform("geometry", WGS84), precision=GEOJSON_PRECISION),
        impact_code=_impact_case(),
        impact_rank=_impact_rank_case(),
        phase=Case(
            When(period__startswith__lte=now, then=Value(PHASE_ACTIVE)),
            default=Value(PHASE_PLANNED),
            output_field=CharField(),
        ),
        status_label=_label_case("status", RoadworkStatus.choices),
        traffic_management_label=_label_case("traffic_management", TrafficManagement.choices),
    )
    inner, params = qs.values(
        "id",
        "reference",
        "title",
        "street_names",
        "period",
        "status",
        "traffic_management",
        "geojson",
        "impact_code",
        "impact_rank",
        "phase",
        "status_label",
        "traffic_management_label",
    ).query.sql_with_params()
    sql = f"""
        SELECT 0 AS layer_rank, r.impact_rank AS draw_rank, r.id::text AS sort_key, json_build_object(
            'type', 'Feature',
            'id', r.id,
            'geometry', r.geojson::json,
            'properties', json_build_object(
                'layer', '{ROADWORKS}',
                'id', r.id,
                'reference', r.reference,
                'title', r.title,
                'street_names', r.street_names,
                'period', json_build_object('lower', lower(r.period), 'upper', upper(r.period)),
                'status', r.status,
                'status_label', r.status_label,
                'impact', r.impact_code,
                'traffic_management', r.traffic_management,
                'traffic_management_label', r.traffic_management_label,
                'phase', r.phase
            )
        ) AS feature
        FROM ({inner}) AS r
    """
    return sql, tuple(params)


def _incidents_sql(user: User | None, bbox: Polygon | None) -> tuple[str, tuple]:
    qs: QuerySet = incidents_visible_to(user).filter(status__in=ACTIVE_INCIDENT_STATUSES)
    if bbox is not None:
        # An incident whose stretch reaches into the view belongs there even when its point lies outside.
        qs = qs.filter(Q(location__intersects=bbox) | Q(affected_line__intersects=bbox))
    qs = qs.order_by().annotate(
        geojson=AsGeoJSON(Transform("location", WGS84), precision=GEOJSON_PRECISION),
        line_geojson=AsGeoJSON(Transform("affected_line", WGS84), precision=GEOJSON_PRECISION),
        kind_label=_label_case("kind", IncidentKind.choices),
        status_label=_label_case("status", IncidentStatus.choices),
    )
    inner, params = qs.values(
        "id",
        "kind",
        "street_name",
        "occurred_at",
        "expected_clearance_at",
        "lanes_blocked",
        "status",
        "geojson",
        "line_geojson",
        "kind_label",
        "status_label",
    ).query.sql_with_params()
    sql = f"""
        SELECT 1 AS layer_rank, 0 AS draw_rank, i.id::text AS sort_key, json_build_object(
            'type', 'Feature',
            'id', i.id,
            'geometry', i.geojson::json,
            'properties', json_build_object(
                'layer', '{INCIDENTS}',
                'id', i.id,
                'kind', i.kind,
                'kind_label', i.kind_label,
                'street_name', i.street_name,
                'occurred_at', i.occurred_at,
                'expected_clearance_at', i.expected_clearance_at,
                'lanes_blocked', i.lanes_blocked,
                'status', i.status,
                'status_label', i.status_label,
                'affected_line', i.line_geojson::json
            )
        ) AS feature
        FROM ({inner}) AS i
    """
    return sql, tuple(params)


def _black_spots_sql(user: User | None, bbox: Polygon | None) -> tuple[str, tuple]:
    # Only the commission can open its list; where black spots are public, everyone else gets no link.
    list_url = reverse("blackspots:list") if user is not None and can_use_accident_commission_pages(user) else None
    features, params = black_spot_features_sql(bbox=bbox, list_url=list_url)
    # Below the roadworks and incidents in the list, as on the map (map.js draws them in a pane underneath).
    sql = f"SELECT 2 AS layer_rank, 0 AS draw_rank, s.key::text AS sort_key, s.feature FROM ({features}) AS s"
    return sql, tuple(params)


def map_features(
    *, user: User | None, bbox: Polygon | None, layers: Collection[str], now: datetime | None = None
) -> bytes:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84) of what `user` may see on the map inside `bbox`.

    bbox is in WGS84 (as parse_bbox returns it); None means the whole service area, which needs no filter
    because every stored geometry was checked to lie inside it. Labels are in the active language.
    Timestamps are ISO 8601 with offset (UTC, the connection's time zone). A layer that `user` may not see
    (map_layers_for) is left out without a word, as if it were empty: the answer does not tell what it holds.
    An incident's affected stretch, if recorded, is the LineString property affected_line beside its point.
    """
    now = now or timezone.now()
    layers = set(layers) & set(map_layers_for(user))
    parts: list[str] = []
    params: list = []
    if ROADWORKS in layers:
        sql, part_params = _roadworks_sql(user, bbox, now)
        parts.append(sql)
        params.extend(part_params)
    if INCIDENTS in layers:
        sql, part_params = _incidents_sql(user, bbox)
        parts.append(sql)
        params.extend(part_params)
    if BLACK_SPOTS in layers:
        sql, part_params = _black_spots_sql(user, bbox)
        parts.append(sql)
        params.extend(part_params)
    if not parts:
        return b'{"type": "FeatureCollection", "features": []}'
    union = " UNION ALL ".join(parts)
    # Explicit ORDER BY inside json_agg: stable output keeps ETags stable, and the drawing order is part of it.
    query = f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', COALESCE(json_agg(u.feature ORDER BY u.layer_rank, u.draw_rank, u.sort_key), '[]'::json)
        )::text
        FROM ({union}) AS u
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        (text,) = cursor.fetchone()
    return text.encode()
