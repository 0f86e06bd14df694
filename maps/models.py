"""The street network: named road segments from OpenStreetMap, for naming places and finding streets.

One row per OSM way. Rows are written by the OSM import (maps/osm.py) and read by maps/streets.py.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.db.models import F, Func, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Lower, Replace
from django.utils.translation import gettext_lazy as _

# How a street name is folded for search, applied in this order after lower-casing. The same table builds the
# SQL expression of the stored column and the Python function that folds a query, so both always agree.
# ß → ss makes "strasse" find "Straße"; the umlaut folds make "moehl" find "Möhlstraße" as a German writes it
# on a keyboard without umlauts.
NAME_FOLDS: tuple[tuple[str, str], ...] = (
    ("ß", "ss"),
    ("ä", "ae"),
    ("ö", "oe"),
    ("ü", "ue"),
    # The usual abbreviation: "Bismarckstr." is how people type Bismarckstraße.
    ("str.", "strasse"),
)
# Dropped entirely, so "Reichskanzler Müller" finds "Reichskanzler-Müller-Straße" and "Seckenheimerstr" finds
# "Seckenheimer Straße".
NAME_DROPPED_CHARACTERS = " -.'’"


def normalise_street_name(text: str) -> str:
    """A street name or a search query folded for comparison: lower case, ß/umlauts spelled out, no separators."""
    folded = text.lower()
    for old, new in NAME_FOLDS:
        folded = folded.replace(old, new)
    return folded.translate({ord(character): None for character in NAME_DROPPED_CHARACTERS})


def normalised_name_expression(field: str) -> Combinable:
    """normalise_street_name in SQL; only immutable functions, so it can be a stored generated column."""
    expression: Combinable = Lower(F(field))
    for old, new in NAME_FOLDS:
        expression = Replace(expression, Value(old), Value(new))
    return Func(
        expression, Value(NAME_DROPPED_CHARACTERS), Value(""), function="translate", output_field=models.TextField()
    )


class StreetSegment(models.Model):
    """A named road as one OpenStreetMap way, in the storage SRID."""

    osm_way_id = models.BigIntegerField(_("OSM way id"), unique=True)
    name = models.CharField(_("name"), max_length=255)
    # Kept by PostgreSQL itself, so every way of writing rows (import, admin, tests) gets the same search key.
    name_normalised = models.GeneratedField(
        expression=normalised_name_expression("name"), output_field=models.TextField(), db_persist=True
    )
    highway = models.CharField(_("road class"), max_length=32, help_text=_("The OpenStreetMap highway value."))
    geometry = models.LineStringField(_("geometry"), srid=settings.AUMAN_SRID, spatial_index=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("street segment")
        verbose_name_plural = _("street segments")
        indexes = [
            # Nearest street: KNN (ORDER BY geometry <-> point) and ST_DWithin both walk this index.
            GistIndex(fields=["geometry"], name="street_geometry_gist"),
            # Search by any part of the name (contains, not only prefix): a trigram GIN index serves LIKE '%q%',
            # which a btree on lower(name) cannot; it needs pg_trgm, a trusted extension.
            GinIndex(fields=["name_normalised"], opclasses=["gin_trgm_ops"], name="street_name_trgm"),
            # Collecting all segments of the names a search found.
            models.Index(fields=["name"], name="street_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (way {self.osm_way_id})"


class District(models.Model):
    """A district of the city (in Mannheim, a Stadtteil), loaded from settings.AUMAN_DISTRICTS_FILE by
    `manage.py load_districts`. Filters the map, the tiles and the calendar subscriptions."""

    # The loader matches rows by name, so a reload keeps ids stable and subscription links keep working.
    name = models.CharField(_("name"), max_length=200, unique=True)
    # The official number where the file has one (Mannheim: "011" Innenstadt); text, as leading zeros count.
    number = models.CharField(_("number"), max_length=32, blank=True)
    geometry = models.MultiPolygonField(_("area"), srid=settings.AUMAN_SRID, spatial_index=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")
        ordering = ["name"]
        indexes = [GistIndex(fields=["geometry"], name="district_geometry_gist")]

    def __str__(self) -> str:
        return f"{self.number} {self.name}".strip()


# The accident grid serves the accident tiles of zoom 0 to this; higher zooms thin the accidents themselves.
ACCIDENT_GRID_MAX_ZOOM = 13


class AccidentCell(models.Model):
    """One square of the accident tiles' thinning grid, pre-aggregated (maps/accident_grid.py builds them all).

    A square is 1/64 of a tile side of its zoom's Web Mercator tile grid (4×4 pixels of a 256-pixel tile), as
    the tiles thin accidents. One row per (zoom, square, calendar year, accident category) that holds accidents:
    the tile combines the years of its time window and the categories asked for, summing `count` and keeping
    the first representative (most severe category, then the newest). Derived data: rebuilt as a whole."""

    zoom = models.PositiveSmallIntegerField()
    cx = models.IntegerField()  # the square's column from the grid's west edge
    cy = models.IntegerField()  # the square's row from the grid's north edge
    year = models.PositiveSmallIntegerField()  # the calendar year in settings.TIME_ZONE
    category = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()
    # The representative: the newest accident of the square, year and category (ties: the smallest id).
    accident_id = models.UUIDField()
    kind = models.PositiveSmallIntegerField()
    type = models.PositiveSmallIntegerField()
    occurred_at = models.DateTimeField()
    # Its place, already in Web Mercator (where the tiles are cut), so a tile transforms nothing.
    location = models.PointField(srid=3857, spatial_index=False)
    built_at = models.DateTimeField()  # when the rebuild that wrote the row began; the same for all rows

    # One partial GiST index on location per zoom (WHERE zoom = z), made by SQL in the migration: a tile asks for one
    # zoom, and a single index over all zooms would hand a zoom-10 tile the (many more) squares of zooms 11 to 13
    # in the same place to filter out. Not in Meta.indexes: the PostGIS schema editor drops an index's condition.
