"""Writes of the street network: OpenStreetMap ways into StreetSegment rows.

Two sources feed the same path: an OSM file read with pyosmium (import_osm) and the small GeoJSON of demo streets
(load_demo_streets). Either way the rows are filtered by the service area with Shapely, vectorised per batch,
streamed into a temporary table with COPY as WGS84 WKB, and then transformed to the storage SRID and upserted by
OSM way id in one SQL statement, so no geometry is transformed row by row in Python.

Which ways count as streets:
- highway values that carry traffic people name a place by (ROAD_CLASSES): the road hierarchy with its links,
  living streets, pedestrian zones (the Planken are one), bus roads, and service roads and cycleways, both only
  when named (every street needs a name anyway). Footways, paths, tracks, steps and ways under construction are
  left out: named footways through parks would otherwise win "nearest street" next to real roads.
- a name: the name tag; motorways and trunk roads usually carry none and are known by their ref (A 656, B 38),
  which then serves as the name, because that is what the police write down for an accident there.
- within the service area: ways that lie in it or cross its edge are kept whole, not clipped. A street that
  crosses the boundary is still that street on both sides, clipped pieces would make multi-part lines, and a
  point just inside the boundary must still find it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import osmium
import shapely
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from auman.geo import WGS84, service_area_geometry

ROAD_CLASSES: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "road",
    "pedestrian",
    "busway",
    "service",
    "cycleway",
)
# Classes whose ways are known by their ref when they have no name.
REF_NAMED_CLASSES = frozenset({"motorway", "trunk"})

DEFAULT_LOCATION_INDEX = "flex_mem"
NAME_MAX_LENGTH = 255
# Rows per Shapely batch: large enough that the vectorised test dominates, small enough to keep memory flat.
BATCH_SIZE = 5000
# One import at a time: two concurrent --replace runs would each delete what the other just wrote.
_IMPORT_LOCK_KEY = 0x5374726565747300  # "Streets\0"

MSG_FILE_MISSING = _("There is no file at {path}.")
MSG_FILE_UNREADABLE = _("The OSM file {path} cannot be read: {detail}")
MSG_LOCATION_INDEX = _(
    "Unknown node location index {index!r}; use flex_mem (the default, in memory) or sparse_file_array,<file> "
    "(on disk, for large extracts on a machine with little memory)."
)
MSG_GEOJSON_UNREADABLE = _("The street file {path} is not a GeoJSON FeatureCollection of named LineStrings: {detail}")
MSG_NOTHING_TO_REPLACE = _(
    "The file holds no streets in the service area ({city}), so nothing was replaced. Is it the right file?"
)


@dataclass
class StreetImportResult:
    """What an import did. read counts the ways of a road class; the others split them up."""

    read: int = 0
    unnamed: int = 0  # no name (and no ref where a ref serves)
    invalid: int = 0  # no line could be built: nodes missing from the extract, or fewer than two distinct nodes
    outside: int = 0  # neither in the service area nor crossing it
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # only with replace: rows whose way is no longer in the file (or no longer in the area)

    @property
    def kept(self) -> int:
        return self.created + self.updated + self.unchanged

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "kept": self.kept}


# (osm_way_id, name, highway, hex WKB of a WGS84 LineString)
Row = tuple[int, str, str, str]


def street_name(tags: osmium.osm.TagList | dict[str, str], highway: str) -> str | None:
    """The name a way is known by, or None when it has none."""
    name = (tags.get("name") or "").strip()
    if not name and highway in REF_NAMED_CLASSES:
        # "A 6;A 656" on a shared stretch reads better with a separator people use.
        name = " / ".join(part.strip() for part in (tags.get("ref") or "").split(";") if part.strip())
    return name[:NAME_MAX_LENGTH] or None


def _osm_rows(path: Path, *, location_index: str, result: StreetImportResult) -> Iterator[Row]:
    """The named road ways of an OSM file (.osm.pbf, .osm, .opl) with their lines, as hex WKB in WGS84."""
    wkb = osmium.geom.WKBFactory()
    try:
        processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations(location_index)
    except RuntimeError as exc:
        raise ValidationError(str(MSG_LOCATION_INDEX).format(index=location_index)) from exc
    # The filters run in C++ after the location cache has seen every node: Python only meets road ways.
    processor = processor.with_filter(osmium.filter.EntityFilter(osmium.osm.WAY)).with_filter(
        osmium.filter.TagFilter(*(("highway", value) for value in ROAD_CLASSES))
    )
    objects = iter(processor)
    while True:
        try:
            way = next(objects)
        except StopIteration:
            return
        except RuntimeError as exc:  # libosmium: unreadable, truncated or not an OSM file
            raise ValidationError(str(MSG_FILE_UNREADABLE).format(path=path, detail=exc)) from exc
        result.read += 1
        highway = way.tags.get("highway")
        name = street_name(way.tags, highway)
        if name is None:
            result.unnamed += 1
            continue
        try:
            line = wkb.create_linestring(way)
        except (osmium.InvalidLocationError, RuntimeError):
            # An extract cuts ways at its edge (nodes missing), and broken ways repeat one node: neither is a line.
            result.invalid += 1
            continue
        yield way.id, name, highway, line


def _geojson_rows(path: Path, *, result: StreetImportResult) -> Iterator[Row]:
    """Rows from a FeatureCollection whose features carry osm_way_id, name and highway (the demo file's shape)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        features = data["features"]
        for feature in features:
            properties = feature["properties"]
            geometry = shapely.geometry.shape(feature["geometry"])
            if geometry.geom_type != "LineString":
                raise ValueError(f"feature {properties.get('osm_way_id')} is a {geometry.geom_type}")
            result.read += 1
            name = street_name(properties, properties["highway"])
            if name is None:
                result.unnamed += 1
                continue
            yield int(properties["osm_way_id"]), name, str(properties["highway"]), geometry.wkb_hex
    except (OSError, ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise ValidationError(str(MSG_GEOJSON_UNREADABLE).format(path=path, detail=exc)) from exc


def _service_area_wgs84() -> shapely.Geometry:
    """The service area (with its tolerance) in WGS84 as a prepared Shapely geometry, for the vectorised test.

    The ways arrive in WGS84, so the area is transformed once instead of every way.
    """
    area = service_area_geometry().transform(WGS84, clone=True)
    polygon = shapely.from_wkb(bytes(area.wkb))
    shapely.prepare(polygon)
    return polygon


def _batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_CREATE_STAGING_SQL = """
    CREATE TEMPORARY TABLE street_import (
        osm_way_id bigint NOT NULL, name text NOT NULL, highway text NOT NULL, geom geometry NOT NULL
    ) ON COMMIT DROP
"""

# DISTINCT ON: merged extracts can hold a way twice. Only rows that differ are rewritten, so a re-import of the
# same file touches nothing and the counts say what changed. xmax = 0 marks a row this statement inserted.
_UPSERT_SQL = """
    WITH src AS (
        SELECT DISTINCT ON (osm_way_id) osm_way_id, name, highway,
               ST_Transform(ST_SetSRID(geom, %(wgs84)s), %(srid)s) AS geometry
        FROM street_import
        ORDER BY osm_way_id
    ), written AS (
        INSERT INTO maps_streetsegment AS s (osm_way_id, name, highway, geometry, updated_at)
        SELECT osm_way_id, name, highway, geometry, now() FROM src
        ON CONFLICT (osm_way_id) DO UPDATE
            SET name = EXCLUDED.name, highway = EXCLUDED.highway, geometry = EXCLUDED.geometry,
                updated_at = EXCLUDED.updated_at
            WHERE (s.name, s.highway) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.highway)
               OR NOT ST_OrderingEquals(s.geometry, EXCLUDED.geometry)
        RETURNING xmax = 0 AS created
    )
    SELECT (SELECT count(DISTINCT osm_way_id) FROM street_import),
           count(*) FILTER (WHERE created),
           count(*) FILTER (WHERE NOT created)
    FROM written
"""

_DELETE_MISSING_SQL = """
    DELETE FROM maps_streetsegment AS s
    WHERE NOT EXISTS (SELECT 1 FROM street_import AS i WHERE i.osm_way_id = s.osm_way_id)
"""


def _import_rows(rows: Iterable[Row], *, replace: bool, result: StreetImportResult) -> StreetImportResult:
    area = _service_area_wgs84()
    with transaction.atomic(), connection.cursor() as cursor:
        # Everything in one transaction: readers see the old network until the new one is complete.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_IMPORT_LOCK_KEY])
        # ON COMMIT DROP alone is not enough when the caller's transaction goes on (load_demo, tests).
        cursor.execute("DROP TABLE IF EXISTS pg_temp.street_import")
        cursor.execute(_CREATE_STAGING_SQL)
        with cursor.copy("COPY street_import (osm_way_id, name, highway, geom) FROM STDIN") as copy:
            for batch in _batches(rows, BATCH_SIZE):
                lines = shapely.from_wkb([row[3] for row in batch])
                inside = shapely.intersects(area, lines)
                for row, keep in zip(batch, inside, strict=True):
                    if keep:
                        copy.write_row(row)
                    else:
                        result.outside += 1
        cursor.execute("CREATE INDEX ON street_import (osm_way_id)")
        # Temporary tables are never auto-analysed; without statistics the anti-join below may loop.
        cursor.execute("ANALYZE street_import")
        cursor.execute(_UPSERT_SQL, {"wgs84": WGS84, "srid": settings.AUMAN_SRID})
        staged, result.created, result.updated = cursor.fetchone()
        result.unchanged = staged - result.created - result.updated
        if replace:
            if staged == 0:
                # Almost certainly the wrong file or the wrong service area: never empty the table for it.
                raise ValidationError(str(MSG_NOTHING_TO_REPLACE).format(city=settings.AUMAN_CITY_NAME))
            cursor.execute(_DELETE_MISSING_SQL)
            result.deleted = cursor.rowcount
        cursor.execute("DROP TABLE street_import")
        # Fresh statistics at once, so the planner picks the indexes right after a first import.
        cursor.execute("ANALYZE maps_streetsegment")
    return result


def streets_import_osm(
    *, path: Path | str, replace: bool = False, location_index: str = DEFAULT_LOCATION_INDEX
) -> StreetImportResult:
    """Load the named road ways of an OSM file that lie in or cross the service area, one row per way.

    Rows are matched by OSM way id: a second run updates what changed. With replace, rows whose way is not in
    the file's result (gone from OSM, or now outside the area) are deleted. Raises ValidationError for a missing
    or unreadable file, and for a replace that would empty the table; then nothing is changed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(str(MSG_FILE_MISSING).format(path=path))
    result = StreetImportResult()
    return _import_rows(_osm_rows(path, location_index=location_index, result=result), replace=replace, result=result)


def streets_load_geojson(*, path: Path | str, replace: bool = False) -> StreetImportResult:
    """Load street segments from a GeoJSON FeatureCollection (WGS84) with osm_way_id, name and highway properties.

    The same rules as the OSM import apply: matched by way id, filtered by the service area.
    """
    path = Path(path)
    if not path.is_file():
        raise ValidationError(str(MSG_FILE_MISSING).format(path=path))
    result = StreetImportResult()
    return _import_rows(_geojson_rows(path, result=result), replace=replace, result=result)
