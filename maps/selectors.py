"""What the map shows, built as GeoJSON bytes in PostGIS.

The visibility rules stay in roadworks_visible_to / incidents_visible_to: their querysets are narrowed to what
belongs on a map right now, compiled to SQL and wrapped in json_build_object/json_agg, so PostgreSQL does the
transformation to WGS84 and the serialisation in one round trip instead of a Python loop over objects.
Black spots come from traffic.blackspot_selectors, which defines their JSON once; who may see them is
traffic.permissions' decision, applied here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.contrib.gis.geos import Polygon
from django.db import connection
from django.db.models import Case, CharField, IntegerField, Q, QuerySet, Subquery, Value, When
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from auman.geo import WGS84
from roadworks.models import IMPACT_BY_TRAFFIC_MANAGEMENT, Detour, Impact, RoadworkStatus, TrafficManagement
from roadworks.selectors import roadworks_visible_to
from traffic.blackspot_selectors import black_spot_features_sql
from traffic.models import ACTIVE_INCIDENT_STATUSES, Accident, IncidentKind, IncidentStatus
from traffic.permissions import can_see_accident_details, can_use_accident_commission_pages, can_view_black_spots
from traffic.selectors import accidents_for_statistics, incidents_visible_to

from .models import District

ROADWORKS = "roadworks"
INCIDENTS = "incidents"
# Only as a vector tile layer (maps/tiles.py): a million points do not belong in one GeoJSON answer.
ACCIDENTS = "accidents"
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


@dataclass(frozen=True)
class MapFilter:
    """What the map, the vector tiles and the subscriptions may narrow a layer to; empty means no narrowing.

    day: the local day shown (the date slider); kinds: codes of the layer's own kind (WorkKind, IncidentKind or
    AccidentKind); impacts: roadworks only; categories: accidents only (Unfallkategorie); district: a District id.
    """

    day: date | None = None
    kinds: tuple[str, ...] = ()
    impacts: tuple[str, ...] = ()
    categories: tuple[int, ...] = ()
    district: int | None = None


NO_FILTER = MapFilter()


def local_day_range(day: date) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of `day` in the service's time zone (a DST day has 23 or 25 hours)."""
    zone = ZoneInfo(settings.TIME_ZONE)
    return datetime.combine(day, time(), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


def _district_area(district: int) -> Subquery:
    # A subquery rather than the geometry as a parameter: the statement stays small and one round trip.
    return Subquery(District.objects.filter(pk=district).values("geometry")[:1])


def map_roadworks(user: User | None, *, flt: MapFilter = NO_FILTER, now: datetime | None = None) -> QuerySet:
    """The roadworks `user` sees on the map: roadworks_visible_to decides whose (the public gets approved and
    running works, staff also those under review, applicants also their own), MAP_ROADWORK_STATUSES which of them
    belong on a map. Without a day: everything now or coming; with one: what takes up road space that day."""
    now = now or timezone.now()
    qs: QuerySet = roadworks_visible_to(user).filter(status__in=MAP_ROADWORK_STATUSES)
    when = Q(period__endswith__gt=now) if flt.day is None else Q(period__overlap=local_day_range(flt.day))
    qs = qs.filter(when)
    if flt.kinds:
        qs = qs.filter(work_kind__in=flt.kinds)
    if flt.impacts:
        managements = [tm for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items() if impact in flt.impacts]
        qs = qs.filter(traffic_management__in=managements)
    if flt.district is not None:
        qs = qs.filter(geometry__intersects=_district_area(flt.district))
    return qs.order_by()


def map_incidents(user: User | None, *, flt: MapFilter = NO_FILTER) -> QuerySet:
    """The incidents `user` sees on the map: active ones (incidents_visible_to decides the rest); with a day,
    those that had occurred by its end (an active incident's period runs on until it is cleared)."""
    qs: QuerySet = incidents_visible_to(user).filter(status__in=ACTIVE_INCIDENT_STATUSES)
    if flt.day is not None:
        qs = qs.filter(period__overlap=local_day_range(flt.day))
    if flt.kinds:
        qs = qs.filter(kind__in=flt.kinds)
    if flt.district is not None:
        qs = qs.filter(location__intersects=_district_area(flt.district))
    return qs.order_by()


def map_accidents(user: User | None, *, flt: MapFilter = NO_FILTER) -> QuerySet[Accident]:
    """Accidents as the statistics count them (accidents_for_statistics), for those who may see their
    classification (traffic.permissions.can_see_accident_details); nobody else gets any. With a day (default
    today): those of the AUMAN_TILE_ACCIDENT_YEARS years up to its end."""
    if user is None or not can_see_accident_details(user):
        return Accident.objects.none()
    day = flt.day or timezone.localdate()
    after = day + timedelta(days=1)
    try:
        first = after.replace(year=after.year - settings.AUMAN_TILE_ACCIDENT_YEARS)
    except ValueError:  # 29 February, years before a non-leap year
        first = after.replace(year=after.year - settings.AUMAN_TILE_ACCIDENT_YEARS, day=28)
    start, _ = local_day_range(first)
    _, end = local_day_range(day)
    qs = accidents_for_statistics().filter(occurred_at__gte=start, occurred_at__lt=end)
    if flt.kinds:
        qs = qs.filter(kind__in=[int(kind) for kind in flt.kinds])
    if flt.categories:
        qs = qs.filter(category__in=flt.categories)
    if flt.district is not None:
        qs = qs.filter(location__intersects=_district_area(flt.district))
    return qs.order_by()


def map_visibility_class(user: User | None, layer: str) -> str:
    """Which set of rows of `layer` this user's visibility allows, as a short name for cache keys: users of one
    class see the same rows. Mirrors roadworks_visible_to / incidents_visible_to / map_accidents; "none" means
    the layer is empty for this user."""
    staff = user is not None and user.is_authenticated and user.is_staff_viewer
    if layer == ROADWORKS:
        if staff:
            return "staff"
        if user is not None and user.is_authenticated and user.is_applicant:
            return f"org:{user.organisation_id}"
        return "public"
    if layer == ACCIDENTS:
        return "staff" if user is not None and can_see_accident_details(user) else "none"
    return "staff" if staff else "public"


def map_layers_for(user: User | None) -> tuple[str, ...]:
    """The layers `user` may see, in MAP_LAYERS order: black spots only for the accident commission, or for everyone
    where the city publishes them."""
    user = user if user is not None else AnonymousUser()
    return tuple(name for name in MAP_LAYERS if name != BLACK_SPOTS or can_view_black_spots(user))


def _detours_json(roadwork_id_sql: str) -> str:
    """A correlated subquery: the roadwork's detours as a JSON array (WGS84 geometry), [] when it has none.

    They travel with their roadwork rather than as a layer of their own: a detour means nothing without its work,
    and it then follows the work's visibility and bbox without a second set of rules.
    """
    return f"""COALESCE((
        SELECT json_agg(json_build_object(
            'id', d.id,
            'name', d.name,
            'description', d.description,
            'geometry', ST_AsGeoJSON(ST_Transform(d.geometry, {WGS84}), {GEOJSON_PRECISION})::json,
            'period', CASE WHEN d.period IS NULL THEN NULL
                      ELSE json_build_object('lower', lower(d.period), 'upper', upper(d.period)) END
        ) ORDER BY d.id)
        FROM {Detour._meta.db_table} AS d WHERE d.roadwork_id = {roadwork_id_sql}
    ), '[]'::json)"""


def _roadworks_sql(user: User | None, bbox: Polygon | None, now: datetime, flt: MapFilter) -> tuple[str, tuple]:
    qs: QuerySet = map_roadworks(user, flt=flt, now=now)
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
                'phase', r.phase,
                'detours', {_detours_json("r.id")}
            )
        ) AS feature
        FROM ({inner}) AS r
    """
    return sql, tuple(params)


def _incidents_sql(user: User | None, bbox: Polygon | None, flt: MapFilter) -> tuple[str, tuple]:
    qs: QuerySet = map_incidents(user, flt=flt)
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
    *,
    user: User | None,
    bbox: Polygon | None,
    layers: Collection[str],
    now: datetime | None = None,
    flt: MapFilter = NO_FILTER,
) -> bytes:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84) of what `user` may see on the map inside `bbox`.

    bbox is in WGS84 (as parse_bbox returns it); None means the whole service area, which needs no filter
    because every stored geometry was checked to lie inside it. Labels are in the active language.
    Timestamps are ISO 8601 with offset (UTC, the connection's time zone). A layer that `user` may not see
    (map_layers_for) is left out without a word, as if it were empty: the answer does not tell what it holds.
    An incident's affected stretch, if recorded, is the LineString property affected_line beside its point.
    `flt` narrows roadworks and incidents by day and district (map_roadworks, map_incidents); black spots
    are not narrowed.
    """
    now = now or timezone.now()
    layers = set(layers) & set(map_layers_for(user))
    parts: list[str] = []
    params: list = []
    if ROADWORKS in layers:
        sql, part_params = _roadworks_sql(user, bbox, now, flt)
        parts.append(sql)
        params.extend(part_params)
    if INCIDENTS in layers:
        sql, part_params = _incidents_sql(user, bbox, flt)
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


# --- Districts -------------------------------------------------------------------------------------------------

# Districts are for choosing and outlining, not surveying: 5 m of simplification makes the collection a fraction
# of the file's size, and 5 decimals (about 1 m) are precise enough after it.
DISTRICT_SIMPLIFY_M = 5
DISTRICT_PRECISION = 5

_DISTRICTS_SQL = f"""
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', COALESCE(json_agg(json_build_object(
            'type', 'Feature',
            'id', d.id,
            'geometry', ST_AsGeoJSON(
                ST_Transform(ST_Multi(ST_SimplifyPreserveTopology(d.geometry, {DISTRICT_SIMPLIFY_M})), {WGS84}),
                {DISTRICT_PRECISION}
            )::json,
            'properties', json_build_object('id', d.id, 'name', d.name, 'number', d.number)
        ) ORDER BY d.name, d.id), '[]'::json)
    )::text
    FROM maps_district AS d
"""


def districts_fingerprint() -> str:
    """Changes when a district is added, changed or removed (the loader writes only what changed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), max(updated_at), sum(xmin::text::bigint) FROM maps_district")
        count, last_update, versions = cursor.fetchone()
    return f"{count}:{last_update.isoformat() if last_update else '-'}:{versions or 0}"


def districts_geojson() -> bytes:
    """All districts as a GeoJSON FeatureCollection (WGS84, simplified), ordered by name; feature id = District id,
    the value the map's, the tiles' and the subscriptions' `district` parameter takes."""
    with connection.cursor() as cursor:
        cursor.execute(_DISTRICTS_SQL)
        (text,) = cursor.fetchone()
    return text.encode()
