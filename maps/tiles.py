"""Mapbox Vector Tiles of the large layers (roadworks, incidents, accidents), built in PostGIS.

One tile is one statement: the layer's rows come from the same querysets as the GeoJSON map (maps.selectors:
map_roadworks, map_incidents, map_accidents, which carry the visibility rules), compiled to SQL and wrapped in
ST_AsMVTGeom/ST_AsMVT. The rows are found with `geometry && <tile envelope in the storage SRID>`, which the
GiST indexes answer; ST_AsMVTGeom then clips in Web Mercator, where the tile grid lives.

A tile's cache key holds a fingerprint of exactly the rows it shows (count, newest updated_at, the sum of their
xmin, the transaction ids that wrote them), taken with the tile's own WHERE clause: a change anywhere in the
city invalidates only the tiles it touches, a small tile's fingerprint costs as little as the tile is small,
and no invalidation can be forgotten.

Accidents are thinned to one point per square of four by four pixels of a 256-pixel tile (the most severe, then
the newest, accident of that square, with `count` telling how many it stands for): a million accidents in one
zoom-10 tile would be 16 MB that no browser can draw. The squares belong to the zoom's Web Mercator tile grid
(maps.accident_grid.square_sql). Up to ACCIDENT_GRID_MAX_ZOOM, unless filtered by kind or district, the tiles
read the squares pre-aggregated in maps.AccidentCell (maps/accident_grid.py), whole calendar years at a time;
above it they thin the accidents themselves.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db import connection, transaction
from django.db.models import Case, CharField, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from auman.geo import service_area_geometry
from roadworks.models import Impact, WorkKind
from traffic.models import AccidentCategory, AccidentKind, IncidentKind

from .accident_grid import SQUARES_PER_TILE, grid_years, square_sql
from .models import ACCIDENT_GRID_MAX_ZOOM, AccidentCell, District
from .selectors import (
    ACCIDENTS,
    INCIDENTS,
    PHASE_ACTIVE,
    PHASE_PLANNED,
    ROADWORKS,
    MapFilter,
    _impact_case,
    map_accidents,
    map_incidents,
    map_roadworks,
    map_visibility_class,
)

TILE_LAYERS = (ROADWORKS, INCIDENTS, ACCIDENTS)
MAX_ZOOM = 20
EXTENT = 4096  # MVT coordinate units per tile side, the usual value
BUFFER = 64  # units drawn beyond the tile edge, so lines and symbols are not cut at tile seams
# Accidents: one point per square of 1/64 of the tile side, four pixels of a 256-pixel tile, about a marker's
# width. Finer squares made tiles of a million accidents megabytes large (bench/map_tiles.py) for no visible gain.
ACCIDENT_GRID = SQUARES_PER_TILE
# The sort that thins accidents spills to disk with PostgreSQL's default 4 MB; a tile's statement gets more.
TILE_WORK_MEM = "64MB"
WEB_MERCATOR = 3857

# Which query parameters each layer understands; others (a cache buster such as _=...) are ignored.
LAYER_PARAMETERS: dict[str, tuple[str, ...]] = {
    ROADWORKS: ("on", "kind", "impact", "district"),
    INCIDENTS: ("on", "kind", "district"),
    ACCIDENTS: ("on", "kind", "category", "district"),
}
_ALL_PARAMETERS = ("on", "kind", "impact", "category", "district")
_KINDS: dict[str, tuple[str, ...]] = {
    ROADWORKS: tuple(WorkKind.values),
    INCIDENTS: tuple(IncidentKind.values),
    ACCIDENTS: tuple(str(value) for value in AccidentKind.values),
}
# Days further off than this are typing errors, and each would fill the cache with tiles nobody wants.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)

MSG_LAYER = _("There is no tile layer {layer!r}; the layers are: {layers}.")
MSG_ZOOM = _("The zoom level is a whole number from 0 to {max}.")
MSG_TILE_XY = _("At zoom {z}, x and y are whole numbers from 0 to {max}.")
MSG_DAY = _("on is a date as YYYY-MM-DD between {first} and {last}.")
MSG_CHOICES = _("{name} is a comma-separated list of: {choices}.")
MSG_NOT_FOR_LAYER = _("{name} does not apply to the {layer} layer; it understands: {names}.")
MSG_DISTRICT = _("district is the id of a district from /api/v1/districts/.")


class TileParameterError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True)
class TileRequest:
    layer: str
    z: int
    x: int
    y: int
    flt: MapFilter

    def variant(self) -> dict[str, str]:
        """The parameters as they shape the tile, canonical (sorted, defaults resolved) for cache keys."""
        flt = self.flt
        return {
            "on": flt.day.isoformat() if flt.day else "",
            "kind": ",".join(sorted(flt.kinds)),
            "impact": ",".join(sorted(flt.impacts)),
            "category": ",".join(str(c) for c in sorted(flt.categories)),
            "district": str(flt.district or ""),
        }


def _choices(name: str, raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not values or any(value not in allowed for value in values):
        raise TileParameterError({name: [str(MSG_CHOICES).format(name=name, choices=", ".join(allowed))]})
    return values


def parse_tile_request(layer: str, z: int, x: int, y: int, params: Mapping[str, str]) -> TileRequest:
    """Validate a tile request; TileParameterError names each bad parameter. An unknown layer is a KeyError."""
    if layer not in TILE_LAYERS:
        raise KeyError(layer)
    if not 0 <= z <= MAX_ZOOM:
        raise TileParameterError({"z": [str(MSG_ZOOM).format(max=MAX_ZOOM)]})
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise TileParameterError({"xy": [str(MSG_TILE_XY).format(z=z, max=2**z - 1)]})
    understood = LAYER_PARAMETERS[layer]
    for name in _ALL_PARAMETERS:
        if name in params and name not in understood:
            message = str(MSG_NOT_FOR_LAYER).format(name=name, layer=layer, names=", ".join(understood))
            raise TileParameterError({name: [message]})

    day = parse_day(params.get("on", "")) or timezone.localdate()
    kinds = _choices("kind", params["kind"], _KINDS[layer]) if params.get("kind", "").strip() else ()
    impacts = _choices("impact", params["impact"], tuple(Impact.values)) if params.get("impact", "").strip() else ()
    categories: tuple[int, ...] = ()
    if params.get("category", "").strip():
        allowed = tuple(str(value) for value in AccidentCategory.values)
        categories = tuple(int(value) for value in _choices("category", params["category"], allowed))
    district = parse_district(params.get("district", ""))
    flt = MapFilter(day=day, kinds=kinds, impacts=impacts, categories=categories, district=district)
    return TileRequest(layer=layer, z=z, x=x, y=y, flt=flt)


def parse_day(raw: str) -> date | None:
    """The ?on= day: None when empty, TileParameterError unless YYYY-MM-DD within EARLIEST_DAY..LATEST_DAY."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        day = None
    if day is None or len(raw) != 10 or not EARLIEST_DAY <= day <= LATEST_DAY:
        message = str(MSG_DAY).format(first=EARLIEST_DAY.isoformat(), last=LATEST_DAY.isoformat())
        raise TileParameterError({"on": [message]})
    return day


def parse_district(raw: str) -> int | None:
    """A district id from a query parameter: None when empty, TileParameterError when no such district."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18 or not District.objects.filter(pk=int(raw)).exists():
        raise TileParameterError({"district": [str(MSG_DISTRICT)]})
    return int(raw)


# --- Geometry of the tile grid -------------------------------------------------------------------------------


def tile_bounds_wgs84(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a tile of the Web Mercator grid, in degrees."""
    n = 2**z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


@lru_cache(maxsize=1)
def data_box_3857() -> tuple[float, float, float, float]:
    """Where data can lie, in Web Mercator: the service area's box, grown by a tenth on every side.

    Tile envelopes are clipped to it before they are transformed to the storage SRID: a low-zoom tile spans
    half the globe, and a UTM projection of that is nonsense (all four corners land on one line)."""
    area = service_area_geometry().transform(WEB_MERCATOR, clone=True)
    xmin, ymin, xmax, ymax = area.extent
    dx, dy = (xmax - xmin) / 10, (ymax - ymin) / 10
    return xmin - dx, ymin - dy, xmax + dx, ymax + dy


def tile_touches_data(z: int, x: int, y: int) -> bool:
    """Whether the tile (with its buffer) can hold anything: tiles elsewhere on the globe are empty without a
    query."""
    west, south, east, north = tile_bounds_wgs84(z, x, y)
    tile = Polygon.from_bbox((west, south, east, north))
    tile.srid = 4326
    tile.transform(WEB_MERCATOR)
    margin = (tile.extent[2] - tile.extent[0]) * BUFFER / EXTENT
    xmin, ymin, xmax, ymax = data_box_3857()
    txmin, tymin, txmax, tymax = tile.extent
    return txmin - margin < xmax and txmax + margin > xmin and tymin - margin < ymax and tymax + margin > ymin


def _envelope_sql() -> tuple[str, list]:
    """The tile's envelope in the storage SRID (grown by the buffer, clipped to the data box), for &&."""
    xmin, ymin, xmax, ymax = data_box_3857()
    sql = (
        "ST_Transform(ST_ClipByBox2D(ST_TileEnvelope(%s, %s, %s, margin => %s), "
        f"ST_MakeEnvelope(%s, %s, %s, %s, {WEB_MERCATOR})), %s)"
    )
    return sql, [BUFFER / EXTENT, xmin, ymin, xmax, ymax, settings.AUMAN_SRID]


# --- The layers' rows ----------------------------------------------------------------------------------------


def _iso_utc(column: str) -> str:
    # ISO 8601 with offset, as the API writes times; MVT values are plain strings.
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""


# The accident tiles' properties, the same from the grid and from the accidents (one %s: the time zone).
_ACCIDENT_PROPERTIES = """r.id::text AS id, r.category, r.kind, r.type,
    to_char(r.occurred_at AT TIME ZONE %s, 'YYYY-MM-DD') AS occurred, r.count"""


@dataclass(frozen=True)
class _Layer:
    queryset: QuerySet
    geometry: str  # the geometry column of the rows
    properties: str  # SELECT list of the MVT properties over the rows, aliased r
    active_column: bool = False  # roadworks: a row's phase changes with the clock, so it enters the fingerprint


def _row_version(model) -> RawSQL:
    # xmin is the id of the transaction that wrote this row version: any write changes it, even an UPDATE that
    # leaves updated_at alone. Qualified, because accidents are joined to their incident.
    return RawSQL(f'"{model._meta.db_table}".xmin::text::bigint', ())  # noqa: S611 - a model's table, no input


def _layer(layer: str, user: User | None, flt: MapFilter, now: datetime) -> _Layer:
    if layer == ROADWORKS:
        qs = map_roadworks(user, flt=flt, now=now)
        qs = qs.annotate(
            impact_code=_impact_case(),
            phase=Case(
                When(period__startswith__lte=now, then=Value(PHASE_ACTIVE)),
                default=Value(PHASE_PLANNED),
                output_field=CharField(),
            ),
            row_version=_row_version(qs.model),
        ).values(
            "id", "title", "status", "work_kind", "traffic_management", "period", "geometry", "updated_at",
            "impact_code", "phase", "row_version",
        )  # fmt: skip
        properties = f"""r.id::text AS id, r.title, r.impact_code AS impact, r.status, r.phase,
            r.work_kind AS kind_of_works, r.traffic_management,
            {_iso_utc("lower(r.period)")} AS starts, {_iso_utc("upper(r.period)")} AS ends"""
        return _Layer(qs, "geometry", properties, active_column=True)
    if layer == INCIDENTS:
        qs = map_incidents(user, flt=flt)
        qs = qs.annotate(row_version=_row_version(qs.model)).values(
            "id", "kind", "status", "street_name", "occurred_at", "expected_clearance_at", "location", "updated_at",
            "row_version",
        )  # fmt: skip
        properties = f"""r.id::text AS id, r.kind, r.status, r.street_name,
            {_iso_utc("r.occurred_at")} AS occurred, {_iso_utc("r.expected_clearance_at")} AS expected_clearance"""
        return _Layer(qs, "location", properties)
    qs = map_accidents(user, flt=flt)
    qs = qs.annotate(row_version=_row_version(qs.model)).values(
        "id", "category", "kind", "type", "occurred_at", "location", "updated_at", "row_version"
    )
    return _Layer(qs, "location", _ACCIDENT_PROPERTIES)


@dataclass(frozen=True)
class TileRows:
    """The layer's rows in the tile, compiled once per request for both the fingerprint and the build."""

    layer: _Layer | None  # None: the accident grid's squares (grid is True)
    sql: str
    params: list
    grid: bool = False


def uses_accident_grid(request: TileRequest) -> bool:
    """Whether the accident tile reads the pre-aggregated grid: low zooms, and no filter the grid does not hold
    (kind of accident, district); the category is in the grid."""
    return (
        request.layer == ACCIDENTS
        and request.z <= ACCIDENT_GRID_MAX_ZOOM
        and not request.flt.kinds
        and request.flt.district is None
    )


def _grid_rows(request: TileRequest, user: User | None) -> TileRows:
    """The grid squares of the tile's zoom, years and categories under the tile (with its buffer): their xmin
    and built_at stand in for the rows' version in the fingerprint, so a rebuild makes new keys."""
    table = AccidentCell._meta.db_table
    first, last = grid_years(request.flt.day or timezone.localdate())
    visible = map_visibility_class(user, ACCIDENTS) != "none"
    # The zoom as a literal: the GiST index of each zoom is partial (WHERE zoom = z), and only a literal lets
    # every plan use it. z is a validated int.
    sql = f"""SELECT c.*, c.built_at AS updated_at, c.xmin::text::bigint AS row_version FROM {table} AS c
        WHERE %s AND c.zoom = {int(request.z)} AND c.year BETWEEN %s AND %s
          AND (cardinality(%s::int[]) = 0 OR c.category = ANY(%s::int[]))
          AND c.location && ST_TileEnvelope(%s, %s, %s, margin => %s)"""
    categories = list(request.flt.categories)
    params = [visible, first, last, categories, categories, request.z, request.x, request.y, BUFFER / EXTENT]
    return TileRows(None, sql, params, grid=True)


def tile_rows(request: TileRequest, user: User | None, *, now: datetime, direct: bool = False) -> TileRows:
    """`SELECT r.* FROM (<the layer's queryset>) r WHERE r.<geometry> && <tile envelope>`, or the accident grid's
    squares (uses_accident_grid); direct=True never reads the grid (the benchmark and tests compare the two)."""
    if not direct and uses_accident_grid(request):
        return _grid_rows(request, user)
    layer = _layer(request.layer, user, request.flt, now)
    inner, inner_params = layer.queryset.query.sql_with_params()
    envelope, envelope_params = _envelope_sql()
    sql = f"SELECT r.* FROM ({inner}) AS r WHERE r.{layer.geometry} && {envelope}"
    return TileRows(layer, sql, [*inner_params, request.z, request.x, request.y, *envelope_params])


def tile_fingerprint(request: TileRequest, user: User | None, *, now: datetime, rows: TileRows | None = None) -> str:
    """A short string that changes whenever a row the tile shows changes, appears or disappears."""
    rows = rows or tile_rows(request, user, now=now)
    layer, params = rows.layer, rows.params
    active = "count(*) FILTER (WHERE t.phase = 'active')" if layer is not None and layer.active_column else "0"
    sql = f"SELECT count(*), max(t.updated_at), sum(t.row_version), {active} FROM ({rows.sql}) AS t"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        count, last_update, versions, active_count = cursor.fetchone()
    return f"{count}:{last_update.isoformat() if last_update else '-'}:{versions or 0}:{active_count}"


def tile_sql(
    request: TileRequest, user: User | None, *, now: datetime, rows: TileRows | None = None
) -> tuple[str, list]:
    """The one statement that builds the tile (bytea). Public for the benchmark, which times it bare."""
    compiled = rows or tile_rows(request, user, now=now)
    layer, rows_sql, params = compiled.layer, compiled.sql, compiled.params
    tile_envelope = "ST_TileEnvelope(%s, %s, %s)"
    if compiled.grid:
        # The squares of the years and categories asked for, combined as the direct path below thins: the first
        # in (category, newest, id) order represents the square, count is the sum.
        rows_sql = f"""
            SELECT DISTINCT ON (g.cx, g.cy) g.accident_id AS id, g.category, g.kind, g.type, g.occurred_at,
                   g.location, sum(g.count) OVER (PARTITION BY g.cx, g.cy) AS count
            FROM ({rows_sql}) AS g
            ORDER BY g.cx, g.cy, g.category, g.occurred_at DESC, g.accident_id
        """
        point, properties = "r.location", _ACCIDENT_PROPERTIES  # already in Web Mercator
        properties_params: list = [settings.TIME_ZONE]
    elif request.layer == ACCIDENTS:
        cx, cy = square_sql("a.m", request.z)
        # The window is ordered like DISTINCT ON (over the whole square, so count is the square's total), which
        # lets one sort serve both: for a zoom-10 tile of a million accidents that sort is most of the work.
        # DISTINCT ON keeps the first row of each grid square in ORDER BY order: the most severe category (1 =
        # persons killed), then the newest. The squares are those of the grid (maps.accident_grid), so the two
        # paths agree.
        rows_sql = f"""
            SELECT DISTINCT ON (g.cx, g.cy) g.*, count(*) OVER (
                       PARTITION BY g.cx, g.cy ORDER BY g.category, g.occurred_at DESC, g.id
                       ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS count
            FROM (SELECT a.*, {cx} AS cx, {cy} AS cy
                  FROM (SELECT r.*, ST_Transform(r.location, {WEB_MERCATOR}) AS m FROM ({rows_sql}) AS r) AS a) AS g
            ORDER BY g.cx, g.cy, g.category, g.occurred_at DESC, g.id
        """
        point, properties = "r.m", _ACCIDENT_PROPERTIES
        properties_params = [settings.TIME_ZONE]
    else:
        assert layer is not None
        point, properties = f"ST_Transform(r.{layer.geometry}, {WEB_MERCATOR})", layer.properties
        properties_params = []
    sql = f"""
        SELECT ST_AsMVT(m, %s, {EXTENT}, 'geom') FROM (
            SELECT ST_AsMVTGeom({point}, {tile_envelope}, {EXTENT}, {BUFFER}, true) AS geom,
                   {properties}
            FROM ({rows_sql}) AS r
        ) AS m
        WHERE m.geom IS NOT NULL
    """
    return sql, [request.layer, request.z, request.x, request.y, *properties_params, *params]


def tile_build(request: TileRequest, user: User | None, *, now: datetime, rows: TileRows | None = None) -> bytes:
    sql, params = tile_sql(request, user, now=now, rows=rows)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{TILE_WORK_MEM}'")
        cursor.execute(sql, params)
        (body,) = cursor.fetchone()
        # The statement only reads: rolling back costs nothing and takes the SET LOCAL with it, also where this
        # runs inside an outer transaction (a savepoint), so no other statement gets the larger work_mem.
        transaction.set_rollback(True)
    return bytes(body or b"")


def tile_cache_key(request: TileRequest, visibility: str, fingerprint: str) -> str:
    variant = request.variant()
    material = "\x1f".join(
        [request.layer, f"{request.z}/{request.x}/{request.y}", visibility, fingerprint]
        + [f"{name}={variant[name]}" for name in sorted(variant)]
    )
    return f"tile:{hashlib.sha256(material.encode()).hexdigest()}"


@dataclass(frozen=True)
class TileAnswer:
    cache_key: str  # also the ETag's material: equal keys mean equal tiles
    visibility: str
    fingerprint: str
    rows: TileRows | None  # None for a tile that is empty without asking


def tile_answer_key(request: TileRequest, user: User | None, *, now: datetime) -> TileAnswer:
    """What identifies the tile's content, found without building it (one small query, none for empty tiles)."""
    visibility = map_visibility_class(user, request.layer)
    if visibility == "none" or not tile_touches_data(request.z, request.x, request.y):
        return TileAnswer(tile_cache_key(request, visibility, "empty"), visibility, "empty", None)
    rows = tile_rows(request, user, now=now)
    fingerprint = tile_fingerprint(request, user, now=now, rows=rows)
    return TileAnswer(tile_cache_key(request, visibility, fingerprint), visibility, fingerprint, rows)


# --- For the map page ------------------------------------------------------------------------------------------

_SENTINELS = (990000001, 990000002, 990000003)


def tile_url_template(layer: str) -> str:
    """The layer's tile URL as Leaflet wants it, /tiles/<layer>/{z}/{x}/{y}.mvt, from the URL pattern maps:tile
    (so a changed prefix is followed), for map.js to add its query parameters to."""
    from django.urls import reverse

    z, x, y = _SENTINELS
    url = reverse("maps:tile", kwargs={"layer": layer, "z": z, "x": x, "y": y})
    return url.replace(str(z), "{z}").replace(str(x), "{x}").replace(str(y), "{y}")


def tile_layers_for(user: User | None) -> tuple[str, ...]:
    """The tile layers worth drawing for `user`: accidents only for those who may see them (others would get
    empty tiles)."""
    return tuple(layer for layer in TILE_LAYERS if map_visibility_class(user, layer) != "none")
