"""The layers GIS users get: roadworks, incidents, conflicts and black spots, with stable English column names.

One definition per layer serves the file export (gisio/export.py) and the OGC API - Features endpoint
(gisio/ogcapi.py). Rows come from the apps' own visibility selectors (roadworks_visible_to, incidents_visible_to,
conflicts_visible_to, traffic.permissions for black spots), narrowed by the map's filters, so an export never shows
more than the REST API would. Column names have at most 10 characters, because Shapefile (dBase) cuts longer ones.
Geometry leaves PostGIS as WKB in WGS84 (EPSG:4326); storage stays in settings.AUMAN_SRID.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.contrib.gis.db.models.functions import AsWKB, Transform
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Case, CharField, DateTimeField, Expression, F, Func, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.models import User
from auman.api import parse_date_or_datetime
from auman.filters import parse_bbox
from auman.geo import WGS84
from roadworks.models import (
    IMPACT_BY_TRAFFIC_MANAGEMENT,
    ConflictStatus,
    Impact,
    RoadworkStatus,
    WorkKind,
)
from roadworks.selectors import conflicts_visible_to, roadworks_visible_to
from traffic.models import BlackSpot, IncidentKind, IncidentStatus
from traffic.permissions import can_view_black_spots
from traffic.selectors import incidents_visible_to

MSG_UNKNOWN_LAYER = _("Unknown layer. Use one of: {layers}.")
MSG_LAYER_NOT_ALLOWED = _("You may not see this layer.")
MSG_CHOICE = _("'{value}' is not valid here. Use one of: {choices}.")

# Column types: how they are written to files (gisio/export.py) and described in OGC API schemas.
STRING, INTEGER, REAL, BOOLEAN, DATETIME = "string", "integer", "real", "boolean", "datetime"


@dataclass(frozen=True)
class Column:
    name: str  # at most 10 characters: Shapefile's limit
    type: str
    expression: Expression | str
    title: Any = ""


@dataclass(frozen=True)
class ChoiceFilter:
    """A query parameter that takes comma-separated values of one field, such as status=approved,in_progress."""

    field: str
    choices: tuple[str, ...]
    # impact is derived, not stored: it filters through a lookup of its own.
    to_q: Callable[[list[str]], Q] | None = None


@dataclass(frozen=True)
class Layer:
    name: str
    title: Any
    description: Any
    geometry_field: str
    geometry_types: tuple[str, ...]  # the OGC/GDAL families a row may have
    period_field: str | None
    columns: tuple[Column, ...]
    rows: Callable[[User | None], QuerySet]
    may_see: Callable[[User | None], bool]
    filters: dict[str, ChoiceFilter] = field(default_factory=dict)
    id_column: str = "id"


def _lower(name: str) -> Func:
    return Func(F(name), function="lower", output_field=DateTimeField())


def _upper(name: str) -> Func:
    return Func(F(name), function="upper", output_field=DateTimeField())


def _impact_case() -> Case:
    # Generated from IMPACT_BY_TRAFFIC_MANAGEMENT, so the mapping lives in one place (as in maps/selectors.py).
    whens = [
        When(traffic_management=tm, then=Value(impact.value)) for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items()
    ]
    return Case(*whens, default=Value(None), output_field=CharField())


def _impact_q(values: list[str]) -> Q:
    managements = [tm for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items() if impact in values]
    return Q(traffic_management__in=managements)


def _joined(name: str) -> Func:
    # Street names are an array; one text column reads well in every GIS and in CSV.
    return Func(F(name), Value("; "), function="array_to_string", output_field=CharField())


def _text(name: str) -> Cast:
    return Cast(F(name), output_field=CharField())


def _is_user(user: User | None) -> bool:
    return user is not None and user.is_authenticated


ROADWORKS = Layer(
    name="roadworks",
    title=_("Roadworks"),
    description=_("Roadworks and their permits, as the REST API shows them to you."),
    geometry_field="geometry",
    geometry_types=("LineString", "Polygon"),
    period_field="period",
    columns=(
        Column("id", STRING, _text("id"), _("id")),
        Column("reference", STRING, F("reference"), _("reference")),
        Column("title", STRING, F("title"), _("title")),
        Column("streets", STRING, _joined("street_names"), _("street names")),
        Column("status", STRING, F("status"), _("status")),
        Column("work_kind", STRING, F("work_kind"), _("kind of works")),
        Column("traffic", STRING, F("traffic_management"), _("traffic management")),
        Column("impact", STRING, _impact_case(), _("impact")),
        Column("category", STRING, F("category"), _("category")),
        Column("emergency", BOOLEAN, F("is_emergency"), _("emergency works")),
        Column("org", STRING, F("organisation__name"), _("organisation")),
        Column("starts_at", DATETIME, _lower("period"), _("start")),
        Column("ends_at", DATETIME, _upper("period"), _("end")),
        Column("lanes", INTEGER, F("lanes_affected"), _("lanes affected")),
        Column("speed_kmh", INTEGER, F("speed_limit_kmh"), _("speed limit (km/h)")),
        Column("updated_at", DATETIME, F("updated_at"), _("updated")),
    ),
    rows=roadworks_visible_to,
    may_see=lambda user: True,
    filters={
        "status": ChoiceFilter("status", tuple(RoadworkStatus.values)),
        "kind": ChoiceFilter("work_kind", tuple(WorkKind.values)),
        "impact": ChoiceFilter("traffic_management", tuple(Impact.values), to_q=_impact_q),
    },
)

INCIDENTS = Layer(
    name="incidents",
    title=_("Incidents"),
    description=_("Accidents, breakdowns, hazards and other incidents; the public sees active ones only."),
    geometry_field="location",
    geometry_types=("Point",),
    period_field="period",
    columns=(
        Column("id", STRING, _text("id"), _("id")),
        Column("kind", STRING, F("kind"), _("kind")),
        Column("status", STRING, F("status"), _("status")),
        Column("street", STRING, F("street_name"), _("street name")),
        Column("lanes", INTEGER, F("lanes_blocked"), _("lanes blocked")),
        Column("direction", STRING, F("direction"), _("direction")),
        Column("occurred", DATETIME, F("occurred_at"), _("occurred")),
        Column("reported", DATETIME, F("reported_at"), _("reported")),
        Column("cleared", DATETIME, F("cleared_at"), _("cleared")),
        Column("expected", DATETIME, F("expected_clearance_at"), _("expected clearance")),
        Column("updated_at", DATETIME, F("updated_at"), _("updated")),
    ),
    rows=incidents_visible_to,
    may_see=lambda user: True,
    filters={
        "status": ChoiceFilter("status", tuple(IncidentStatus.values)),
        "kind": ChoiceFilter("kind", tuple(IncidentKind.values)),
    },
)

CONFLICTS = Layer(
    name="conflicts",
    title=_("Conflicts"),
    description=_("Where and when roadworks collide with each other or with a rule layer."),
    geometry_field="place",
    geometry_types=("Polygon", "LineString", "Point"),
    period_field="overlap_period",
    columns=(
        Column("id", INTEGER, F("id"), _("id")),
        Column("rule", STRING, F("rule"), _("rule")),
        Column("severity", STRING, F("severity"), _("severity")),
        Column("status", STRING, F("status"), _("status")),
        Column("roadwork_a", STRING, F("roadwork_a__reference"), _("roadwork A")),
        Column("roadwork_b", STRING, F("roadwork_b__reference"), _("roadwork B")),
        Column("layer", STRING, F("layer"), _("layer")),
        Column("layer_item", STRING, F("layer_object_id"), _("layer item")),
        Column("starts_at", DATETIME, _lower("overlap_period"), _("start")),
        Column("ends_at", DATETIME, _upper("overlap_period"), _("end")),
        Column("updated_at", DATETIME, F("updated_at"), _("updated")),
    ),
    rows=conflicts_visible_to,
    # Conflicts concern the authority and the applicants whose works they touch; the API shows nobody else any.
    may_see=lambda user: _is_user(user) and (user.is_staff_viewer or user.is_applicant),
    filters={
        "status": ChoiceFilter("status", tuple(ConflictStatus.values)),
        "kind": ChoiceFilter("rule", ()),
    },
)

BLACK_SPOTS = Layer(
    name="black_spots",
    title=_("Accident black spots"),
    description=_("Places where accidents cluster, as the accident commission's analysis found them."),
    geometry_field="area",
    geometry_types=("Polygon",),
    period_field="period",
    columns=(
        Column("id", STRING, _text("id"), _("id")),
        Column("key", STRING, F("key"), _("key")),
        Column("rule", STRING, F("rule"), _("rule")),
        Column("acc_type", INTEGER, F("accident_type"), _("accident type")),
        Column("accidents", INTEGER, F("accident_count"), _("accidents")),
        Column("score", INTEGER, F("score"), _("score")),
        Column("starts_at", DATETIME, _lower("period"), _("start")),
        Column("ends_at", DATETIME, _upper("period"), _("end")),
        Column("computed", DATETIME, F("computed_at"), _("computed")),
    ),
    rows=lambda user: BlackSpot.objects.all(),
    may_see=lambda user: can_view_black_spots(user if user is not None else AnonymousUser()),
    filters={"kind": ChoiceFilter("rule", ())},
)

LAYERS: dict[str, Layer] = {layer.name: layer for layer in (ROADWORKS, INCIDENTS, CONFLICTS, BLACK_SPOTS)}
GEOMETRY_COLUMN = "geom_wkb"
GEOMETRY_TYPE_COLUMN = "geom_type"


def layers_for(user: User | None) -> list[Layer]:
    return [layer for layer in LAYERS.values() if layer.may_see(user)]


def _choice_values(name: str, raw: str, choice_filter: ChoiceFilter) -> list[str]:
    values = [part.strip() for part in raw.split(",") if part.strip()]
    if choice_filter.choices:
        wrong = [value for value in values if value not in choice_filter.choices]
        if wrong:
            message = str(MSG_CHOICE).format(value=wrong[0], choices=", ".join(choice_filter.choices))
            raise serializers.ValidationError({name: [message]})
    return values


def filtered_rows(layer: Layer, *, user: User | None, params: dict[str, str]) -> QuerySet:
    """The layer's rows that `user` may see, narrowed by the map's filters: bbox (WGS84), active_on (a date: that local
    day; a date and time: that instant; `on` is a synonym), status, kind and, for roadworks, impact (comma-separated).

    Raises serializers.ValidationError (a 400 at the API edge) for a bad value; unknown parameters are the caller's.
    """
    qs = layer.rows(user)
    raw_bbox = (params.get("bbox") or "").strip()
    if raw_bbox:
        try:
            polygon = parse_bbox(raw_bbox)
        except Exception as exc:  # django ValidationError, with its messages
            raise serializers.ValidationError({"bbox": list(getattr(exc, "messages", [str(exc)]))}) from exc
        qs = qs.filter(**{f"{layer.geometry_field}__intersects": polygon})
    raw_on = (params.get("active_on") or params.get("on") or "").strip()
    if raw_on and layer.period_field:
        try:
            start, end = parse_date_or_datetime(raw_on)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"active_on": exc.detail}) from exc
        if start == end:
            qs = qs.filter(**{f"{layer.period_field}__contains": start})
        else:
            qs = qs.filter(**{f"{layer.period_field}__overlap": DateTimeTZRange(start, end, "[)")})
    for name, choice_filter in layer.filters.items():
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        values = _choice_values(name, raw, choice_filter)
        if choice_filter.to_q is not None:
            qs = qs.filter(choice_filter.to_q(values))
        else:
            qs = qs.filter(**{f"{choice_filter.field}__in": values})
    return qs


FILTER_PARAMETERS = ("bbox", "active_on", "on", "status", "kind", "impact")


def column_values(layer: Layer, qs: QuerySet, *, with_geometry: bool = True) -> QuerySet:
    """`qs` as dictionaries of the layer's columns (prefixed c_, so they never clash with model fields) and the
    geometry as WKB in WGS84, ordered by id: one query, PostGIS transforms."""
    expressions: dict[str, Any] = {f"c_{column.name}": column.expression for column in layer.columns}
    if with_geometry:
        expressions[GEOMETRY_COLUMN] = AsWKB(Transform(layer.geometry_field, WGS84))
        # PostGIS names the type (LineString, MultiPolygon, ...): cheaper than parsing every WKB in Python.
        expressions[GEOMETRY_TYPE_COLUMN] = Func(
            F(layer.geometry_field), function="ST_GeometryType", output_field=CharField()
        )
    return qs.order_by().values(**expressions).order_by(f"c_{layer.id_column}")
