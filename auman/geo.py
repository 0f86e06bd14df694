"""Geometry at the edges: parsing GeoJSON (WGS84), checking it, and the service area.

Storage is in settings.AUMAN_SRID (metric); everything outside speaks WGS84.
The checks live here once, so the API, the admin and imports reject the same things
with the same messages.
"""

from __future__ import annotations

import json
from functools import lru_cache

from django.conf import settings
from django.contrib.gis.gdal.error import GDALException
from django.contrib.gis.geos import GEOSException, GEOSGeometry
from django.contrib.gis.geos.prepared import PreparedGeometry
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

WGS84 = 4326

MSG_GEOJSON_MALFORMED = _("This is not a valid GeoJSON geometry: {detail}")
MSG_GEOMETRY_TYPE = _("Geometry type {given} is not allowed here; use one of: {allowed}.")
MSG_GEOMETRY_EMPTY = _("The geometry is empty.")
MSG_GEOMETRY_INVALID = _("The geometry is invalid: {reason}.")
MSG_GEOMETRY_TOO_MANY_VERTICES = _("The geometry has {count} vertices; at most {limit} are allowed.")
MSG_GEOMETRY_OUTSIDE = _("The geometry lies outside the service area ({city}).")
MSG_COORDINATES_RANGE = _("Coordinates must be longitude -180..180 and latitude -90..90 (WGS84, lon/lat order).")
MSG_GEOMETRY_CRS = _("Only WGS84 (EPSG:4326) coordinates are accepted; remove the 'crs' member.")
MSG_GEOMETRY_TOO_LARGE = _(
    "The area covers {area} km²; at most {limit} km² are allowed. Draw the affected streets only."
)


def _fail(message, **kwargs) -> None:
    raise ValidationError(str(message).format(**kwargs))


def parse_geojson_geometry(value: object) -> GEOSGeometry:
    """Parse a GeoJSON geometry object (dict or string) in WGS84 into a GEOS geometry with SRID 4326."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            _fail(MSG_GEOJSON_MALFORMED, detail=exc)
    if not isinstance(value, dict):
        _fail(MSG_GEOJSON_MALFORMED, detail=_("expected an object with 'type' and 'coordinates'"))
    if "crs" in value:
        _fail(MSG_GEOMETRY_CRS)
    gtype = value.get("type")
    if not isinstance(gtype, str):
        _fail(MSG_GEOJSON_MALFORMED, detail=_("'type' is missing"))
    if gtype != "GeometryCollection" and not isinstance(value.get("coordinates"), list):
        _fail(MSG_GEOJSON_MALFORMED, detail=_("'coordinates' must be an array"))
    try:
        geom = GEOSGeometry(json.dumps(value))
    except (GEOSException, GDALException, ValueError, TypeError) as exc:
        _fail(MSG_GEOJSON_MALFORMED, detail=exc)
    geom.srid = WGS84
    if not geom.empty:
        xmin, ymin, xmax, ymax = geom.extent
        if xmin < -180 or xmax > 180 or ymin < -90 or ymax > 90:
            _fail(MSG_COORDINATES_RANGE)
    return geom


@lru_cache(maxsize=1)
def service_area() -> PreparedGeometry:
    """The service area in the storage SRID, grown by the tolerance, prepared for fast tests."""
    return service_area_geometry().prepared


@lru_cache(maxsize=1)
def service_area_geometry() -> GEOSGeometry:
    """The service area as a plain geometry (storage SRID, grown by the tolerance), for checks done in bulk
    inside PostGIS, such as imports that pass it once as a query parameter."""
    with open(settings.AUMAN_SERVICE_AREA_FILE, encoding="utf-8") as fh:
        data = json.load(fh)
    features = data["features"] if data.get("type") == "FeatureCollection" else [data]
    area = None
    for feature in features:
        geometry = feature.get("geometry", feature)
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        part = GEOSGeometry(json.dumps(geometry), srid=WGS84)
        area = part if area is None else area.union(part)
    if area is None:
        raise ValueError(f"{settings.AUMAN_SERVICE_AREA_FILE} holds no polygon")
    area.transform(settings.AUMAN_SRID)
    return area.buffer(settings.AUMAN_SERVICE_AREA_TOLERANCE_M)


def clean_geometry(geom: GEOSGeometry, *, allowed_types: tuple[str, ...]) -> GEOSGeometry:
    """Check a geometry and return it in the storage SRID. Raises ValidationError with one clear message."""
    if geom.geom_type not in allowed_types:
        _fail(MSG_GEOMETRY_TYPE, given=geom.geom_type, allowed=", ".join(allowed_types))
    if geom.empty:
        _fail(MSG_GEOMETRY_EMPTY)
    if geom.num_coords > settings.AUMAN_MAX_VERTICES:
        _fail(MSG_GEOMETRY_TOO_MANY_VERTICES, count=geom.num_coords, limit=settings.AUMAN_MAX_VERTICES)
    if not geom.valid:
        _fail(MSG_GEOMETRY_INVALID, reason=geom.valid_reason)
    if geom.srid is None:
        geom.srid = WGS84
    if geom.srid != settings.AUMAN_SRID:
        geom = geom.transform(settings.AUMAN_SRID, clone=True)
    # In the metric storage SRID, area is in m². Checked before the service area: a huge polygon is the
    # clearer mistake to name.
    if geom.dims == 2 and geom.area > settings.AUMAN_MAX_AREA_KM2 * 1_000_000:
        _fail(MSG_GEOMETRY_TOO_LARGE, area=f"{geom.area / 1_000_000:.1f}", limit=f"{settings.AUMAN_MAX_AREA_KM2:g}")
    if not service_area().covers(geom):
        _fail(MSG_GEOMETRY_OUTSIDE, city=settings.AUMAN_CITY_NAME)
    return geom
