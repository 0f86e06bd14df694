"""Writes of the maps app: loading the city's districts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

MSG_DISTRICTS_FILE_MISSING = _("The districts file {path} does not exist.")
MSG_DISTRICTS_FILE_INVALID = _("The districts file {path} is not a GeoJSON FeatureCollection: {error}")
MSG_DISTRICTS_NONE = _("The districts file {path} holds no polygon with a name in the property {property!r}.")


@dataclass(frozen=True)
class DistrictsLoadResult:
    created: int
    updated: int
    unchanged: int
    deleted: int


# One statement does the geometry work in PostGIS: parse, transform to the storage SRID, repair, and merge the
# parts of a district the file lists more than once. A row whose number and area are unchanged is not written, so
# a reload keeps updated_at (and with it the districts' ETag) as it was.
_UPSERT_SQL = """
WITH given AS (
    SELECT f.name, max(f.number) AS number,
           ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Union(
               ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(f.geometry), 4326), %(srid)s)
           )), 3)) AS geometry
    FROM jsonb_to_recordset(%(features)s::jsonb) AS f(name text, number text, geometry text)
    GROUP BY f.name
),
upserted AS (
    INSERT INTO maps_district AS d (name, number, geometry, updated_at)
    SELECT name, number, geometry, now() FROM given
    ON CONFLICT (name) DO UPDATE SET number = EXCLUDED.number, geometry = EXCLUDED.geometry, updated_at = now()
    WHERE d.number IS DISTINCT FROM EXCLUDED.number OR NOT ST_Equals(d.geometry, EXCLUDED.geometry)
    RETURNING (xmax = 0) AS inserted
),
deleted AS (
    DELETE FROM maps_district WHERE name NOT IN (SELECT name FROM given) RETURNING 1
)
SELECT (SELECT count(*) FROM given),
       (SELECT count(*) FILTER (WHERE inserted) FROM upserted),
       (SELECT count(*) FILTER (WHERE NOT inserted) FROM upserted),
       (SELECT count(*) FROM deleted)
"""


def _read_features(path: Path, *, name_property: str, number_property: str) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValidationError(MSG_DISTRICTS_FILE_MISSING.format(path=path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        features = data["features"]
        if not isinstance(features, list):
            raise TypeError("features is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(MSG_DISTRICTS_FILE_INVALID.format(path=path, error=exc)) from exc
    rows = []
    for feature in features:
        properties = feature.get("properties") or {}
        geometry = feature.get("geometry") or {}
        name = str(properties.get(name_property) or "").strip()
        if not name or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        number = str(properties.get(number_property) or "").strip() if number_property else ""
        # Only type and coordinates: a "crs" member would make ST_GeomFromGeoJSON pick that SRID.
        shape = {"type": geometry["type"], "coordinates": geometry["coordinates"]}
        rows.append({"name": name, "number": number, "geometry": json.dumps(shape)})
    if not rows:
        raise ValidationError(MSG_DISTRICTS_NONE.format(path=path, property=name_property))
    return rows


def districts_load(
    *, path: Path | str | None = None, name_property: str | None = None, number_property: str | None = None
) -> DistrictsLoadResult:
    """Make the District table hold exactly the districts of the GeoJSON file (default: the settings' file).

    Idempotent: districts are matched by name, so their ids survive a reload and links that name a district
    (calendar subscriptions, map URLs) keep working; districts gone from the file are deleted. The file is in
    WGS84 as GeoJSON says; a "crs" member naming CRS84 means the same and is ignored.
    """
    path = Path(path or settings.AUMAN_DISTRICTS_FILE)
    name_property = name_property or settings.AUMAN_DISTRICTS_NAME_PROPERTY
    if number_property is None:
        number_property = settings.AUMAN_DISTRICTS_NUMBER_PROPERTY
    rows = _read_features(path, name_property=name_property, number_property=number_property)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_UPSERT_SQL, {"srid": settings.AUMAN_SRID, "features": json.dumps(rows)})
        given, created, updated, deleted = cursor.fetchone()
    return DistrictsLoadResult(created=created, updated=updated, unchanged=given - created - updated, deleted=deleted)
