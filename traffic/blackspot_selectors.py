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


_GEOJSON_SQL = """
    SELECT json_build_object(
        'type', 'FeatureCollection',
        'features', COALESCE(json_agg(json_build_object(
            'type', 'Feature',
            'id', b.id,
            'geometry', ST_AsGeoJSON(ST_Transform(b.area, 4326), %(precision)s)::json,
            'properties', json_build_object(
                'layer', 'black_spots',
                'id', b.id,
                'key', b.key,
                'rule', b.rule,
                'rule_label', COALESCE(%(rule_labels)s::jsonb ->> b.rule, b.rule),
                'accident_type', b.accident_type,
                'accident_type_label', %(type_labels)s::jsonb ->> b.accident_type::text,
                'accident_count', b.accident_count,
                'score', b.score,
                'period', json_build_object('lower', lower(b.period), 'upper', upper(b.period)),
                'centre', json_build_array(
                    round(ST_X(ST_Transform(b.location, 4326))::numeric, %(precision)s),
                    round(ST_Y(ST_Transform(b.location, 4326))::numeric, %(precision)s)),
                'statistics', b.statistics
            )
        ) ORDER BY b.score DESC NULLS LAST, b.accident_count DESC, b.key), '[]'::json)
    )::text
    FROM traffic_blackspot b
    {where}
"""


def black_spots_geojson(*, bbox: Polygon | None = None) -> bytes:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84) of the black spots whose area meets `bbox`, built in PostGIS.

    bbox is in WGS84 as auman.filters.parse_bbox returns it; None means all. Each feature's geometry is the black
    spot's area; its centre is a [lon, lat] property. Labels are in the active language. For the map layer.
    """
    params: dict[str, object] = {
        "precision": GEOJSON_PRECISION,
        "rule_labels": json.dumps(rule_labels()),
        "type_labels": json.dumps(_type_labels()),
    }
    where = ""
    if bbox is not None:
        where = "WHERE ST_Intersects(b.area, ST_Transform(ST_GeomFromEWKB(%(bbox)s), %(srid)s))"
        params.update(bbox=bytes(bbox.ewkb), srid=settings.AUMAN_SRID)
    with connection.cursor() as cursor:
        cursor.execute(_GEOJSON_SQL.format(where=where), params)
        (text,) = cursor.fetchone()
    return text.encode()
