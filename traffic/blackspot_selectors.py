"""Reads on black spots: the accident commission's list and CSV, the API, and GeoJSON bytes for the map.

Who may see them is decided by traffic.permissions (can_view_black_spots, can_use_accident_commission_pages);
the selectors here do not filter by user.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.gis.db.models.functions import Transform
from django.contrib.gis.geos import Polygon
from django.db import connection
from django.db.models import F, QuerySet

from auman.geo import WGS84

from .blackspots import rule_labels
from .models import AccidentType, BlackSpot

# sort parameter -> ordering; the key last, so equal rows keep a stable order.
SORTS: dict[str, tuple] = {
    "-score": (F("score").desc(nulls_last=True), "-accident_count"),
    "score": (F("score").asc(nulls_first=True), "accident_count"),
    "-count": ("-accident_count", F("score").desc(nulls_last=True)),
    "count": ("accident_count", F("score").asc(nulls_first=True)),
}
DEFAULT_SORT = "-score"

# Coordinates with 6 decimals are about 0.1 m: plenty for a map.
GEOJSON_PRECISION = 6


def black_spots_list(*, rule: str | None = None, sort: str = DEFAULT_SORT) -> QuerySet[BlackSpot]:
    """Black spots, optionally of one rule, sorted by score or accident count; with the centre in WGS84."""
    qs = BlackSpot.objects.annotate(centre_wgs84=Transform("location", WGS84))
    if rule:
        qs = qs.filter(rule=rule)
    return qs.order_by(*SORTS[sort], "key")


def _type_labels() -> dict[str, str]:
    return {str(choice.value): str(choice.label) for choice in AccidentType}


# The one definition of a black spot as a GeoJSON Feature: black_spots_geojson aggregates it, and the map
# (maps.selectors) puts it into the UNION that builds its FeatureCollection in the same query as the other layers.
# Positional parameters, because the map joins it with SQL that Django compiled with positional ones.
_FEATURES_SQL = """
    SELECT json_build_object(
        'type', 'Feature',
        'id', b.id,
        'geometry', ST_AsGeoJSON(ST_Transform(b.area, 4326), %s)::json,
        'properties', json_build_object(
            'layer', 'black_spots',
            'id', b.id,
            'key', b.key,
            'rule', b.rule,
            'rule_label', COALESCE(%s::jsonb ->> b.rule, b.rule),
            'accident_type', b.accident_type,
            'accident_type_label', %s::jsonb ->> b.accident_type::text,
            'accident_count', b.accident_count,
            'score', b.score,
            'period', json_build_object('lower', lower(b.period), 'upper', upper(b.period)),
            'centre', json_build_array(
                round(ST_X(ST_Transform(b.location, 4326))::numeric, %s),
                round(ST_Y(ST_Transform(b.location, 4326))::numeric, %s)),
            'statistics', b.statistics,
            'list_url', %s::text || '#' || %s::text || b.id::text
        )
    ) AS feature, b.score, b.accident_count, b.key
    FROM traffic_blackspot b
    {where}
"""

# The commission's list marks each row with this id prefix and the black spot's id, so a link can point at it.
LIST_ENTRY_ID_PREFIX = "black-spot-"


def black_spot_features_sql(*, bbox: Polygon | None = None, list_url: str | None = None) -> tuple[str, list]:
    """SQL and parameters for one row per black spot whose area meets `bbox`: the GeoJSON Feature (column
    `feature`) and the columns to order by (score, accident_count, key).

    bbox is in WGS84 as auman.filters.parse_bbox returns it; None means all. list_url is the commission's list: each
    feature links to its entry there (property list_url); None gives null, for those who may not open the list.
    Labels are in the active language.
    """
    params: list[object] = [
        GEOJSON_PRECISION,
        json.dumps(rule_labels()),
        json.dumps(_type_labels()),
        GEOJSON_PRECISION,
        GEOJSON_PRECISION,
        list_url,
        LIST_ENTRY_ID_PREFIX,
    ]
    where = ""
    if bbox is not None:
        # The area's GiST index answers this; the bbox is transformed once, not every area.
        where = "WHERE ST_Intersects(b.area, ST_Transform(ST_GeomFromEWKB(%s), %s))"
        params += [bytes(bbox.ewkb), settings.AUMAN_SRID]
    return _FEATURES_SQL.format(where=where), params


def black_spots_geojson(*, bbox: Polygon | None = None, list_url: str | None = None) -> bytes:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84) of the black spots whose area meets `bbox`, built in PostGIS.

    bbox is in WGS84 as auman.filters.parse_bbox returns it; None means all. Each feature's geometry is the black
    spot's area; its centre is a [lon, lat] property. Labels are in the active language. Highest score first.
    """
    features, params = black_spot_features_sql(bbox=bbox, list_url=list_url)
    query = f"""
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'features', COALESCE(
                json_agg(s.feature ORDER BY s.score DESC NULLS LAST, s.accident_count DESC, s.key), '[]'::json)
        )::text
        FROM ({features}) AS s
    """
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        (text,) = cursor.fetchone()
    return text.encode()
