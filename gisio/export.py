"""Files for GIS users: a layer as GeoPackage, zipped Shapefile, GeoJSON or CSV, written by GDAL through pyogrio.

Why pyogrio and not ogr2ogr reading from PostgreSQL: the rows must be exactly those the REST API shows this user,
which are defined by Django querysets (the apps' visibility selectors plus the map's filters). pyogrio writes from
the result of that one query, in the request's own database connection and transaction: no second connection with
credentials on a command line, no SQL re-assembled as text for another process, no subprocess to time out, and the
tests (which run inside a transaction) see what they created. PostGIS still does the geometry work (transform to
WGS84, WKB); GDAL does the file format. Coordinates are WGS84 (EPSG:4326) in every format.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.gis.gdal import SpatialReference
from django.db.models import QuerySet
from pyogrio.raw import write as ogr_write

from .layers import (
    BOOLEAN,
    DATETIME,
    GEOMETRY_COLUMN,
    GEOMETRY_TYPE_COLUMN,
    INTEGER,
    REAL,
    Column,
    Layer,
    column_values,
)


@dataclass(frozen=True)
class Format:
    name: str  # the URL suffix
    driver: str
    content_type: str
    extension: str  # of the download


GPKG = Format("gpkg", "GPKG", "application/geopackage+sqlite3", "gpkg")
SHAPEFILE = Format("shp.zip", "ESRI Shapefile", "application/zip", "shp.zip")
GEOJSON = Format("geojson", "GeoJSON", "application/geo+json", "geojson")
CSV = Format("csv", "CSV", "text/csv; charset=utf-8", "csv")
FORMATS: dict[str, Format] = {f.name: f for f in (GPKG, SHAPEFILE, GEOJSON, CSV)}

# GDAL's encoding of a time zone: 100 is UTC (then +1 per 15 minutes east).
GDAL_TZ_UTC = 100
# Shapefile (dBase) has dates without times, and text fields of at most 254 characters.
SHAPEFILE_TEXT_WIDTH = 254
# The geometry families a Shapefile must keep apart: one .shp per family, named <layer>_<suffix>.
SHAPEFILE_FAMILIES = {"Point": "points", "LineString": "lines", "Polygon": "areas"}


def _family(geometry_type: str) -> str:
    return geometry_type.removeprefix("Multi")


def _wgs84_wkt() -> str:
    return SpatialReference(4326).wkt


def _as_utc_naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _field(column: Column, values: list[Any], *, datetimes_as_text: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One column as a numpy array GDAL understands, and a mask of its nulls (None when there are none)."""
    mask = np.array([value is None for value in values], dtype=bool)
    if column.type == DATETIME and datetimes_as_text:
        array = np.array([_as_utc_naive(v).isoformat() + "Z" if v is not None else None for v in values], dtype=object)
        return array, None
    if column.type == DATETIME:
        array = np.array([_as_utc_naive(v) if v is not None else datetime(1970, 1, 1) for v in values])
        return array.astype("datetime64[ms]"), mask if mask.any() else None
    if column.type == INTEGER:
        return np.array([v if v is not None else 0 for v in values], dtype=np.int64), mask if mask.any() else None
    if column.type == REAL:
        return np.array([float(v) if v is not None else 0.0 for v in values], dtype=np.float64), (
            mask if mask.any() else None
        )
    if column.type == BOOLEAN:
        return np.array([bool(v) for v in values], dtype=bool), mask if mask.any() else None
    return np.array(list(values), dtype=object), None


def _write(
    path: str,
    *,
    layer: Layer,
    name: str,
    rows: list[dict[str, Any]],
    fmt: Format,
    geometry_type: str,
) -> None:
    datetimes_as_text = fmt in (SHAPEFILE, CSV)
    fields, data, masks = [], [], []
    tz_offsets: dict[str, np.ndarray] = {}
    for column in layer.columns:
        array, mask = _field(column, [row[f"c_{column.name}"] for row in rows], datetimes_as_text=datetimes_as_text)
        fields.append(column.name)
        data.append(array)
        masks.append(mask)
        if column.type == DATETIME and not datetimes_as_text:
            tz_offsets[column.name] = np.full(len(rows), GDAL_TZ_UTC, dtype=np.int32)
    geometry = np.array([bytes(row[GEOMETRY_COLUMN]) for row in rows], dtype=object)
    layer_options: dict[str, str] = {}
    dataset_options: dict[str, str] = {}
    if fmt is GPKG:
        # GeoPackage 1.2: what QGIS and the GDAL of Debian stable read without warnings (1.4 is newer than they are).
        dataset_options = {"VERSION": "1.2"}
    elif fmt is CSV:
        layer_options = {"GEOMETRY": "AS_WKT", "CREATE_CSVT": "NO"}
    elif fmt is GEOJSON:
        # RFC 7946: WGS84, 7 decimals (about 1 cm), as the REST API writes them.
        layer_options = {"RFC7946": "YES", "COORDINATE_PRECISION": "7", "WRITE_NAME": "NO"}
    elif fmt is SHAPEFILE:
        layer_options = {"ENCODING": "UTF-8"}
    ogr_write(
        path,
        geometry,
        data,
        fields,
        field_mask=masks if any(mask is not None for mask in masks) else None,
        layer=name,
        driver=fmt.driver,
        geometry_type=geometry_type,
        crs=_wgs84_wkt(),
        # A Shapefile of lines or areas holds simple and multi parts alike; points stay points.
        promote_to_multi=(fmt is SHAPEFILE and geometry_type != "Point") or None,
        layer_options=layer_options or None,
        dataset_options=dataset_options or None,
        gdal_tz_offsets=tz_offsets or None,
    )


def _geometry_type(types: Iterable[str]) -> str:
    types = set(types)
    if len(types) == 1:
        return types.pop()
    families = {_family(t) for t in types}
    if len(families) == 1:
        return f"Multi{families.pop()}"
    return "Unknown"


def _geometry_types(rows: list[dict[str, Any]]) -> list[str]:
    # ST_GeometryType answers "ST_LineString"; OGR and GEOS say "LineString".
    return [row[GEOMETRY_TYPE_COLUMN].removeprefix("ST_") for row in rows]


def export_layer(*, layer: Layer, qs: QuerySet, fmt: Format) -> bytes:
    """`qs` (rows of `layer`, already scoped to the user and filtered) as a file of format `fmt`, in memory."""
    rows = list(column_values(layer, qs))
    types = _geometry_types(rows)
    with tempfile.TemporaryDirectory(prefix="auman-export-") as directory:
        if fmt is SHAPEFILE:
            return _shapefile_zip(Path(directory), layer=layer, rows=rows, types=types)
        path = str(Path(directory) / f"{layer.name}.{fmt.extension}")
        # An empty layer still needs a geometry type; the layer's first family is what QGIS expects there.
        geometry_type = _geometry_type(types) if rows else layer.geometry_types[0]
        if fmt is CSV and not rows:
            # GDAL's CSV driver writes no header for an empty layer; a header alone tells the columns.
            return (",".join(["WKT", *[column.name for column in layer.columns]]) + "\n").encode()
        _write(path, layer=layer, name=layer.name, rows=rows, fmt=fmt, geometry_type=geometry_type)
        return Path(path).read_bytes()


def _shapefile_zip(directory: Path, *, layer: Layer, rows: list[dict[str, Any]], types: list[str]) -> bytes:
    """One Shapefile per geometry family (a .shp holds points, lines or areas, never a mix), zipped flat."""
    by_family: dict[str, list[dict[str, Any]]] = {}
    for row, geometry_type in zip(rows, types, strict=True):
        by_family.setdefault(_family(geometry_type), []).append(row)
    if not by_family:
        by_family[_family(layer.geometry_types[0])] = []
    for family, family_rows in by_family.items():
        name = f"{layer.name}_{SHAPEFILE_FAMILIES[family]}" if len(by_family) > 1 else layer.name
        _write(
            str(directory / f"{name}.shp"),
            layer=layer,
            name=name,
            rows=family_rows,
            fmt=SHAPEFILE,
            geometry_type=f"Multi{family}" if family != "Point" else "Point",
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(directory.iterdir()):
            archive.write(file, arcname=file.name)
    return buffer.getvalue()


def export_filename(*, layer: Layer, fmt: Format, now: datetime) -> str:
    return f"auman-{layer.name}-{now:%Y%m%d-%H%M}.{fmt.extension}"
