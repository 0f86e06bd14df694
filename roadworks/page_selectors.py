"""Reads for the roadworks pages: the coordinator's lists, conflicts with their sides, layer items, the timeline.

Scoping stays with selectors.py (roadworks_visible_to, conflicts_visible_to); these functions narrow and order
what those return.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, TextField, Value, When

from accounts.models import User
from auman.geo import WGS84
from maps.models import normalise_street_name, normalised_name_expression

from . import selectors, workflow
from .models import CONFLICTING_STATUSES, Conflict, ConflictLayer, ConflictStatus, Roadwork, RoadworkStatus, Severity

# Conflicts people still have to look at: new ones and those acknowledged but not yet decided.
UNSETTLED_CONFLICT_STATUSES = (ConflictStatus.OPEN, ConflictStatus.ACKNOWLEDGED)
# The timeline shows works that take up (or will take up) road space, and finished ones for the record.
TIMELINE_STATUSES = (*CONFLICTING_STATUSES, RoadworkStatus.COMPLETED)
TIMELINE_MAX_ROWS = 300
DASHBOARD_MAX_CONFLICTS = 200

SEVERITY_RANK = Case(
    When(severity=Severity.ERROR, then=Value(0)),
    When(severity=Severity.WARNING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


# --- The coordinator's dashboard ----------------------------------------------------------------------------


def roadworks_awaiting_decision(*, today: date) -> QuerySet[Roadwork]:
    """Applications and emergency works the authority still has to decide, not yet overdue; due first."""
    return (
        Roadwork.objects.filter(workflow.awaiting_decision_q())
        .exclude(workflow.overdue_q(today))
        .select_related("organisation")
        .order_by(F("decision_due").asc(nulls_last=True), "submitted_at")
    )


def roadworks_overdue_for_dashboard(*, today: date) -> QuerySet[Roadwork]:
    return (
        selectors.roadworks_overdue(today=today).select_related("organisation").order_by("decision_due", "submitted_at")
    )


def conflicts_unsettled(user: User) -> QuerySet[Conflict]:
    """Open and acknowledged conflicts this user may see: errors first, then the newest."""
    return (
        selectors.conflicts_visible_to(user)
        .filter(status__in=UNSETTLED_CONFLICT_STATUSES)
        .select_related("roadwork_a__organisation", "roadwork_b__organisation")
        .annotate(severity_rank=SEVERITY_RANK)
        .order_by("severity_rank", "-detected_at", "-id")
    )


def dashboard_counts(*, user: User, today: date) -> dict[str, Any]:
    conflicts = selectors.conflicts_visible_to(user).filter(status__in=UNSETTLED_CONFLICT_STATUSES)
    by_severity = dict.fromkeys(Severity.values, 0)
    for row in conflicts.values("severity").order_by().annotate(n=Count("id")):
        by_severity[row["severity"]] = row["n"]
    return {
        "awaiting": Roadwork.objects.filter(workflow.awaiting_decision_q()).count(),
        "overdue": selectors.roadworks_overdue(today=today).count(),
        "running": Roadwork.objects.filter(status=RoadworkStatus.IN_PROGRESS).count(),
        "conflicts": by_severity,
        "conflicts_total": sum(by_severity.values()),
    }


# --- Conflicts touching a work, and the other side --------------------------------------------------------------


def conflicts_of_roadwork(user: User | None, roadwork: Roadwork) -> QuerySet[Conflict]:
    return (
        selectors.conflicts_visible_to(user)
        .filter(Q(roadwork_a_id=roadwork.pk) | Q(roadwork_b_id=roadwork.pk))
        .select_related("roadwork_a__organisation", "roadwork_b__organisation")
        .annotate(severity_rank=SEVERITY_RANK)
        .order_by("severity_rank", "status", "-detected_at", "-id")
    )


@dataclass(frozen=True)
class LayerItem:
    """The second side of a conflict with a rule layer: what it is called and where it is (if known)."""

    layer: str
    layer_label: str
    object_id: str
    name: str
    geometry: GEOSGeometry | None


# Where each layer's items live, as "app_label.Model". Looked up lazily: a layer whose model does not exist (yet)
# still shows, by its id. Names are taken from `name`, `title` or `key`, geometries from the first geometry field
# (areas before points).
LAYER_MODELS = {
    ConflictLayer.BLACK_SPOT: "traffic.BlackSpot",
    ConflictLayer.MORATORIUM: "roadworks.MoratoriumArea",
    ConflictLayer.EVENT: "roadworks.Event",
    ConflictLayer.CORRIDOR: "roadworks.Corridor",
    ConflictLayer.PUBLIC_TRANSPORT: "roadworks.NetworkFeature",
    ConflictLayer.EMERGENCY_ROUTE: "roadworks.NetworkFeature",
    ConflictLayer.INCIDENT: "traffic.Incident",
}
_NAME_ATTRIBUTES = ("name", "title", "key", "street_name")
_GEOMETRY_PREFERENCE = ("area", "geometry", "affected_line", "location")


def _geometry_of(obj: Any) -> GEOSGeometry | None:
    fields = [field.name for field in obj._meta.get_fields() if isinstance(field, GeometryField)]
    ordered = [name for name in _GEOMETRY_PREFERENCE if name in fields] + [
        name for name in fields if name not in _GEOMETRY_PREFERENCE
    ]
    for name in ordered:
        value = getattr(obj, name, None)
        if isinstance(value, GEOSGeometry):
            return value
    return None


def _layer_label(layer: str) -> str:
    return str(ConflictLayer(layer).label) if layer in ConflictLayer.values else layer


def _name_of(obj: Any) -> str:
    return next((str(getattr(obj, a)) for a in _NAME_ATTRIBUTES if getattr(obj, a, None) not in (None, "")), str(obj))


def layer_items(keys: set[tuple[str, str]], *, with_geometry: bool = False) -> dict[tuple[str, str], LayerItem]:
    """The layer items named by (layer, object id) pairs, one query per layer. Items whose model or row is missing
    (a layer not built yet, an item deleted since detection) come back named by their id."""
    result = {
        (layer, object_id): LayerItem(layer, _layer_label(layer), object_id, name=object_id, geometry=None)
        for layer, object_id in keys
    }
    by_layer: dict[str, set[str]] = {}
    for layer, object_id in keys:
        by_layer.setdefault(layer, set()).add(object_id)
    for layer, object_ids in by_layer.items():
        try:
            model = apps.get_model(LAYER_MODELS[layer])
        except (KeyError, LookupError):
            continue
        # The stored id is text; the model's key may be a UUID or a number: compare in the model's terms.
        asked: dict[Any, list[str]] = {}
        for object_id in object_ids:
            try:
                asked.setdefault(model._meta.pk.to_python(object_id), []).append(object_id)
            except ValidationError:
                continue  # an id of another kind (a number where a UUID is expected): shown by its id
        for obj in model._default_manager.filter(pk__in=list(asked)):
            geometry = _geometry_of(obj) if with_geometry else None
            for object_id in asked.get(obj.pk, []):
                result[(layer, object_id)] = LayerItem(
                    layer, _layer_label(layer), object_id, name=_name_of(obj), geometry=geometry
                )
    return result


def layer_item(layer: str, object_id: str) -> LayerItem:
    return layer_items({(layer, object_id)}, with_geometry=True)[(layer, object_id)]


def visible_roadwork_ids(user: User | None, ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these works the user may open (the other side of a conflict may be another organisation's draft)."""
    if not ids:
        return set()
    return set(selectors.roadworks_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))


# --- Districts --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def districts() -> dict[str, GEOSGeometry]:
    """The city's districts by name, in the storage SRID, read once from settings.AUMAN_DISTRICTS_FILE.

    No file configured (or none there): no district filter, rather than an error on every page."""
    path = getattr(settings, "AUMAN_DISTRICTS_FILE", None)
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    name_property = getattr(settings, "AUMAN_DISTRICTS_NAME_PROPERTY", "name")
    result: dict[str, GEOSGeometry] = {}
    for feature in data.get("features", []):
        name = str((feature.get("properties") or {}).get(name_property) or "").strip()
        geometry = feature.get("geometry")
        if not name or not geometry or geometry.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        # The file's "crs" member, if any, names CRS84 (lon/lat): that is what GeoJSON means anyway.
        geom = GEOSGeometry(json.dumps({"type": geometry["type"], "coordinates": geometry["coordinates"]}), srid=WGS84)
        geom.transform(settings.AUMAN_SRID)
        result[name] = geom if name not in result else result[name].union(geom)
    return dict(sorted(result.items(), key=lambda item: normalise_street_name(item[0])))


def with_folded_streets(qs: QuerySet[Roadwork]) -> QuerySet[Roadwork]:
    """Annotates `streets_folded`: a work's street names, one per line, folded like the street search (Straße/str.,
    ß/ss, umlauts, spaces and hyphens); filter it with `streets_folded__contains=normalise_street_name(query)`."""
    joined = Func(F("street_names"), Value("\n"), function="array_to_string", output_field=TextField())
    return qs.annotate(streets_joined=joined).annotate(streets_folded=normalised_name_expression("streets_joined"))


# --- The timeline ----------------------------------------------------------------------------------------------


def roadworks_timeline(
    *,
    user: User | None,
    start: datetime,
    end: datetime,
    street: str = "",
    district: GEOSGeometry | None = None,
) -> QuerySet[Roadwork]:
    """Works visible to this user that take up road space between start and end, on a street or in a district.

    The street matches any of a work's street names, folded like the street search (Straße/str., ß/ss, umlauts,
    spaces and hyphens); the district is an ST_Intersects test in PostGIS, on the GiST index."""
    qs = selectors.roadworks_visible_to(user).filter(status__in=TIMELINE_STATUSES, period__overlap=(start, end))
    folded = normalise_street_name(street)
    if folded:
        qs = with_folded_streets(qs).filter(streets_folded__contains=folded)
    if district is not None:
        qs = qs.filter(geometry__intersects=district)
    return qs.order_by("period__startswith", "reference")


# --- The list of applications ---------------------------------------------------------------------------------

APPLICATIONS_PER_PAGE = 50


def applications_for(user: User, *, status: str | None = None, text: str | None = None) -> QuerySet[Roadwork]:
    """The applications a user works on: an applicant's organisation's, everybody's for the authority; the latest
    change first, each with the number of its unsettled conflicts."""
    qs = Roadwork.objects.select_related("organisation")
    if not user.is_authority:
        qs = qs.filter(organisation_id=user.organisation_id)
    if status:
        qs = qs.filter(status=status)
    if text:
        qs = with_folded_streets(qs).filter(
            Q(reference__icontains=text)
            | Q(title__icontains=text)
            | Q(streets_folded__contains=normalise_street_name(text) or text)
        )
    unsettled = (
        Conflict.objects.filter(status__in=UNSETTLED_CONFLICT_STATUSES)
        .filter(Q(roadwork_a=OuterRef("pk")) | Q(roadwork_b=OuterRef("pk")))
        .order_by()
        .annotate(n=Func(F("id"), function="COUNT"))
        .values("n")
    )
    return qs.annotate(unsettled_conflicts=Subquery(unsettled, output_field=IntegerField())).order_by("-updated_at")
