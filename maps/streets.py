"""Reads of the street network: the street nearest a point, and streets by name.

Both are single indexed queries: the nearest street walks the GiST index in distance order (KNN), the name
search uses the trigram index on the folded name (see maps/models.py for how names are folded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection

from auman.geo import WGS84

from .models import normalise_street_name

# Further than this from any street centre line, a point is not "on" a street. Wide roads with two
# carriageways and a tram reservation measure 40-50 m across, and a phone's position is off by 10-30 m.
NEAREST_DEFAULT_MAX_DISTANCE_M = 100.0
NEAREST_MAX_DISTANCE_LIMIT_M = 1000.0
SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50
# Coordinates with 6 decimals are about 0.1 m, as on the map.
GEOJSON_PRECISION = 6


class NearestStreet(NamedTuple):
    name: str
    distance_m: float


@dataclass(frozen=True)
class StreetMatch:
    """One street name found by a search, with where it is: enough to zoom a map to it."""

    name: str
    geometry: dict[str, Any]  # GeoJSON (WGS84) of all its segments, merged where they join
    bbox: tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
    point: tuple[float, float]  # lon, lat of a point on the street, for a marker


# ST_DWithin bounds the search, ORDER BY <-> walks the GiST index nearest first (exact distances for
# geometries since PostGIS 2.2), so the query reads a handful of index entries whatever the table's size.
_NEAREST_SQL = """
    SELECT name, ST_Distance(geometry, %(point)s::geometry) AS distance
    FROM maps_streetsegment
    WHERE ST_DWithin(geometry, %(point)s::geometry, %(max_distance)s)
    ORDER BY geometry <-> %(point)s::geometry
    LIMIT 1
"""


def street_nearest(
    *, point_wgs84: Point | tuple[float, float], max_distance_m: float = NEAREST_DEFAULT_MAX_DISTANCE_M
) -> NearestStreet | None:
    """The street whose centre line is nearest to a WGS84 point (lon, lat), if one lies within max_distance_m."""
    if not isinstance(point_wgs84, Point):
        point_wgs84 = Point(*point_wgs84, srid=WGS84)
    if point_wgs84.srid in (None, WGS84):
        point = Point(point_wgs84.x, point_wgs84.y, srid=WGS84).transform(settings.AUMAN_SRID, clone=True)
    else:
        point = point_wgs84.transform(settings.AUMAN_SRID, clone=True)
    with connection.cursor() as cursor:
        # The point goes in as EWKB in the storage SRID: a constant the planner can hand to the index.
        cursor.execute(_NEAREST_SQL, {"point": point.hexewkb.decode(), "max_distance": max_distance_m})
        row = cursor.fetchone()
    if row is None:
        return None
    return NearestStreet(name=row[0], distance_m=float(row[1]))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# First the names (cheap: index scan, group by name, limit), then the geometry of only those names. Names that
# start with the query rank before names that merely contain it; within a rank, alphabetically by folded name,
# which puts Ä with A instead of after Z.
_SEARCH_SQL = """
    WITH found AS (
        SELECT name,
               min(CASE WHEN name_normalised LIKE %(prefix)s THEN 0 ELSE 1 END) AS rank,
               min(name_normalised) AS sort_key
        FROM maps_streetsegment
        WHERE name_normalised LIKE %(contains)s
        GROUP BY name
        ORDER BY rank, sort_key, name
        LIMIT %(limit)s
    ), merged AS (
        SELECT f.name, f.rank, f.sort_key,
               ST_Transform(ST_LineMerge(ST_Collect(s.geometry)), %(wgs84)s) AS geom
        FROM found AS f
        JOIN maps_streetsegment AS s ON s.name = f.name
        GROUP BY f.name, f.rank, f.sort_key
    )
    SELECT name,
           ST_AsGeoJSON(geom, %(precision)s),
           ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom),
           ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))
    FROM merged
    ORDER BY rank, sort_key, name
"""


def streets_search(*, query: str, limit: int = SEARCH_DEFAULT_LIMIT) -> list[StreetMatch]:
    """Distinct street names containing the query, prefix matches first, case- and spelling-tolerant.

    "kaiser" finds Kaiserring, "strasse" finds every Straße, "moehl" and "möhl" find Möhlstraße,
    "Bismarckstr." finds Bismarckstraße. A query that folds to nothing finds nothing.
    """
    folded = normalise_street_name(query)
    if not folded:
        return []
    escaped = _like_escape(folded)
    params = {
        "prefix": f"{escaped}%",
        "contains": f"%{escaped}%",
        "limit": limit,
        "wgs84": WGS84,
        "precision": GEOJSON_PRECISION,
    }
    with connection.cursor() as cursor:
        cursor.execute(_SEARCH_SQL, params)
        rows = cursor.fetchall()
    return [
        StreetMatch(
            name=name,
            geometry=json.loads(geojson),
            bbox=(round(xmin, 7), round(ymin, 7), round(xmax, 7), round(ymax, 7)),
            point=(round(x, 7), round(y, 7)),
        )
        for name, geojson, xmin, ymin, xmax, ymax, x, y in rows
    ]


# Snapping a roadwork to the streets it lies on. A street counts when this much of its centre line, beyond what
# any street crossing the works would show, lies within SNAP_TOLERANCE_M of the works: a street crossed at right
# angles shows 2 x tolerance there, one the works run along shows their length plus that.
SNAP_TOLERANCE_M = 15.0
SNAP_MIN_ALONG_M = 5.0
SNAP_MAX_STREETS = 20

# The works' geometry is buffered once; ST_DWithin walks the GiST index; the length inside the buffer is measured
# per segment and summed per name, longest first (the street the works mainly lie on leads).
_ALONG_SQL = """
    WITH works AS (SELECT ST_Buffer(%(geometry)s::geometry, %(tolerance)s) AS area)
    SELECT s.name, sum(ST_Length(ST_Intersection(s.geometry, works.area))) AS along
    FROM maps_streetsegment AS s, works
    WHERE ST_DWithin(s.geometry, %(geometry)s::geometry, %(tolerance)s)
    GROUP BY s.name
    HAVING sum(ST_Length(ST_Intersection(s.geometry, works.area))) > %(min_along)s
    ORDER BY along DESC, s.name
    LIMIT %(limit)s
"""


def streets_along(*, geometry, tolerance_m: float = SNAP_TOLERANCE_M) -> list[str]:
    """Names of the streets a roadwork lies on (a line along them or an area over them), the main one first.

    `geometry` is a GEOS geometry in the storage SRID (or with another SRID, then transformed). Streets that the
    works merely cross or touch at an end are left out. Empty when no street network is loaded nearby.
    """
    if geometry is None or geometry.empty:
        return []
    if geometry.srid not in (None, settings.AUMAN_SRID):
        geometry = geometry.transform(settings.AUMAN_SRID, clone=True)
    elif geometry.srid is None:
        geometry = geometry.clone()
        geometry.srid = settings.AUMAN_SRID
    params = {
        "geometry": geometry.hexewkb.decode(),
        "tolerance": tolerance_m,
        "min_along": 2 * tolerance_m + SNAP_MIN_ALONG_M,
        "limit": SNAP_MAX_STREETS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_ALONG_SQL, params)
        return [name for name, _along in cursor.fetchall()]
