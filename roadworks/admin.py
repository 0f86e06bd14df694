"""Admin for roadworks and conflicts, with Leaflet map widgets (assets served from django-leaflet's static files).

Geometry is stored in settings.AUMAN_SRID; the Leaflet widget shows and edits it in WGS84 and
the form field transforms it back on save. The forms run the same geometry checks as the API
(auman.geo.clean_geometry), so the admin cannot store what the API would refuse.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletAdminWidget, LeafletGeoAdmin

from auman.admin import ServiceAreaGeometryForm, format_period

from . import workflow
from .models import (
    LINE_AND_AREA_TYPES,
    NETWORK_GEOMETRY_TYPES,
    PEDESTRIAN_ROUTE_TYPES,
    Conflict,
    Corridor,
    Event,
    Impact,
    MoratoriumArea,
    NetworkFeature,
    Roadwork,
    RuleState,
)
from .services import (
    CONFLICT_RELEVANT_FIELDS,
    LAYER_RULES,
    record_admin_creation,
    roadwork_detect_conflicts_on_commit,
    rule_sweep_on_commit,
)


class RoadworkAdminForm(ServiceAreaGeometryForm):
    # No Meta: the admin builds the form for its model with the fields its fieldsets name.
    geometry_types = {"geometry": LINE_AND_AREA_TYPES, "pedestrian_route": PEDESTRIAN_ROUTE_TYPES}


class ReadOnlyMapWidget(LeafletAdminWidget):
    """The admin's Leaflet widget, for showing a geometry that must not be edited (a conflict's place)."""

    template_name = "leaflet/admin/widget.html"
    modifiable = False
    geom_type = "GEOMETRY"


def read_only_map(name: str, geometry: GEOSGeometry | None) -> SafeString:
    if geometry is None:
        return format_html("{}", "–")
    # The widget carries a hidden textarea named "<name>_map"; no form field has that name,
    # so whatever a browser posts back from it is ignored and the geometry stays as detected.
    return ReadOnlyMapWidget().render(f"{name}_map", geometry, attrs={"id": f"id_{name}_map"})


def html_table(headers: list[str], rows: list[list[object]]) -> SafeString:
    """A small read-only table for the change page (no formset: nothing of it is posted back)."""
    if not rows:
        return format_html("{}", "–")
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


@admin.register(Roadwork)
class RoadworkAdmin(LeafletGeoAdmin):
    form = RoadworkAdminForm
    list_display = ["reference", "title", "organisation", "status", "category", "impact_display", "period_display"]
    list_filter = ["status", "category", "is_emergency", "work_kind", "traffic_management", "organisation"]
    search_fields = ["reference", "title", "street_names"]
    list_select_related = ["organisation"]
    # The status changes through the workflow (API /transition/), never by editing the field.
    readonly_fields = [
        "status",
        "is_emergency",
        "category",
        "submitted_at",
        "decision_due",
        "decided_at",
        "actual_start",
        "actual_end",
        "impact_display",
        "created_by",
        "created_at",
        "updated_at",
        "version",
        "detours_display",
        "attachments_display",
        "history_display",
    ]
    fieldsets = (
        (
            None,
            {"fields": ("reference", "organisation", "title", "description", "purpose", "street_names")},
        ),
        (_("Place and time"), {"fields": ("geometry", "period", ("daily_start", "daily_end"), "weekdays")}),
        (
            _("Works and traffic"),
            {
                "fields": (
                    "work_kind",
                    "traffic_management",
                    "impact_display",
                    "direction",
                    "lanes_affected",
                    "excavation",
                    ("max_width_m", "max_height_m", "max_weight_t"),
                    "speed_limit_kmh",
                    "pedestrian_route",
                )
            },
        ),
        (_("Contact"), {"fields": ("contact_name", "contact_phone", "contact_email")}),
        (
            _("Workflow"),
            {
                "fields": (
                    "status",
                    "is_emergency",
                    "category",
                    ("submitted_at", "decision_due", "decided_at"),
                    ("actual_start", "actual_end"),
                )
            },
        ),
        # Detours, files and steps are changed through the API (nested detours, uploads, /transition/).
        (_("Detours and files"), {"fields": ("detours_display", "attachments_display")}),
        (_("History"), {"fields": ("history_display",)}),
        (_("Record"), {"fields": ("created_by", "created_at", "updated_at", "version")}),
    )

    @admin.display(description=_("detours"))
    def detours_display(self, obj: Roadwork) -> SafeString:
        if obj.pk is None:
            return html_table([], [])
        rows = [
            [d.name, d.description, format_period(d.period) if d.period else _("the whole period")]
            for d in obj.detours.all()
        ]
        return html_table([_("name"), _("description"), _("period")], rows)

    @admin.display(description=_("attachments"))
    def attachments_display(self, obj: Roadwork) -> SafeString:
        if obj.pk is None:
            return html_table([], [])
        rows = [
            [a.original_name, a.get_kind_display(), a.content_type, a.size, a.uploaded_by or "–"]
            for a in obj.attachments.select_related("uploaded_by")
        ]
        return html_table([_("file"), _("kind"), _("content type"), _("size (bytes)"), _("uploaded by")], rows)

    @admin.display(description=_("history"))
    def history_display(self, obj: Roadwork) -> SafeString:
        if obj.pk is None:
            return html_table([], [])
        rows = [
            [
                timezone.localtime(t.at).strftime("%d.%m.%Y %H:%M"),
                workflow.label_of(t.action),
                t.get_from_status_display() or "–",
                t.get_to_status_display(),
                t.by or _("system"),
                t.comment,
            ]
            for t in obj.transitions.select_related("by")
        ]
        return html_table([_("at"), _("action"), _("from"), _("to"), _("by"), _("comment")], rows)

    @admin.display(description=_("impact"))
    def impact_display(self, obj: Roadwork) -> str:
        if not obj.traffic_management:
            return "–"  # an unsaved add form
        return str(Impact(obj.impact).label)

    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: Roadwork) -> str:
        return format_period(obj.period)

    def save_model(self, request: HttpRequest, obj: Roadwork, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        else:
            # Every write bumps the version, so an API client holding an older one is refused.
            obj.version += 1
        super().save_model(request, obj, form, change)
        if not change:
            record_admin_creation(roadwork=obj, user=request.user)
        if not change or any(name in form.changed_data for name in CONFLICT_RELEVANT_FIELDS):
            roadwork_detect_conflicts_on_commit(roadwork_id=obj.pk)


class ConflictAdminForm(forms.ModelForm):
    """The status follows the same rules as the API (workflow.resolve_conflict)."""

    user = None  # set by ConflictAdmin.get_form

    class Meta:
        model = Conflict
        fields = ["status", "reason"]

    def clean(self) -> dict:
        cleaned = super().clean()
        status = cleaned.get("status")
        if status and "status" in self.changed_data:
            before = Conflict.objects.select_related("roadwork_a", "roadwork_b").get(pk=self.instance.pk)
            try:
                workflow.resolve_conflict(user=self.user, conflict=before, to=status, reason=cleaned.get("reason", ""))
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, messages)
            except (workflow.TransitionError, PermissionDenied) as exc:
                self.add_error("status", str(exc))
        return cleaned


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
    form = ConflictAdminForm
    list_display = ["__str__", "rule", "severity", "roadwork_a", "roadwork_b", "overlap_display", "status"]
    list_filter = ["rule", "severity", "status"]
    search_fields = ["roadwork_a__reference", "roadwork_a__title", "roadwork_b__reference", "roadwork_b__title"]
    list_select_related = ["roadwork_a", "roadwork_b"]
    # Detection owns these: a hand edit would be overwritten by the next sweep anyway.
    readonly_fields = [
        "rule",
        "severity",
        "roadwork_a",
        "roadwork_b",
        "overlap_display",
        "place_map",
        "status_changed_at",
        "status_changed_by",
        "detected_at",
        "updated_at",
    ]
    fields = [
        "rule",
        "severity",
        "roadwork_a",
        "roadwork_b",
        "overlap_display",
        "place_map",
        "status",
        "reason",
        "status_changed_at",
        "status_changed_by",
        "detected_at",
        "updated_at",
    ]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.user = request.user
        return form

    def save_model(self, request: HttpRequest, obj: Conflict, form: forms.ModelForm, change: bool) -> None:
        if "status" in form.changed_data:
            obj.status_changed_at = timezone.now()
            obj.status_changed_by = request.user
        super().save_model(request, obj, form, change)

    @property
    def media(self) -> forms.Media:
        # The read-only map needs Leaflet on the page, which no editable field brings here.
        return super().media + ReadOnlyMapWidget().media

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conflicts come from detection only

    @admin.display(description=_("overlap period"), ordering="overlap_period")
    def overlap_display(self, obj: Conflict) -> str:
        return format_period(obj.overlap_period)

    @admin.display(description=_("place"))
    def place_map(self, obj: Conflict) -> SafeString:
        return read_only_map("place", obj.place)


# --- Rule layers -------------------------------------------------------------------------------------------------
# The authority records corridors, moratoria and events here or through the API; network layers come from GeoJSON
# files (load_network_layer) and may be corrected here. Every change re-runs the layer's rule after it commits.


class LayerAdmin(LeafletGeoAdmin):
    def save_model(self, request: HttpRequest, obj, form: forms.ModelForm, change: bool) -> None:
        if change and hasattr(obj, "version"):
            obj.version += 1  # as in the API: a client holding an older version is refused
        super().save_model(request, obj, form, change)
        rule_sweep_on_commit(code=LAYER_RULES[type(obj)])

    def delete_model(self, request: HttpRequest, obj) -> None:
        super().delete_model(request, obj)
        rule_sweep_on_commit(code=LAYER_RULES[type(obj)])

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        super().delete_queryset(request, queryset)
        rule_sweep_on_commit(code=LAYER_RULES[queryset.model])


class CorridorAdminForm(ServiceAreaGeometryForm):
    geometry_types = {"geometry": ("MultiLineString",)}


@admin.register(Corridor)
class CorridorAdmin(LayerAdmin):
    form = CorridorAdminForm
    list_display = ["name", "max_simultaneous", "active", "updated_at"]
    list_filter = ["active"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at", "version"]


class MoratoriumAdminForm(ServiceAreaGeometryForm):
    geometry_types = {"geometry": ("MultiPolygon",)}


@admin.register(MoratoriumArea)
class MoratoriumAreaAdmin(LayerAdmin):
    form = MoratoriumAdminForm
    list_display = ["name", "resurfaced_on", "years", "ends_on"]
    search_fields = ["name", "reason"]
    readonly_fields = ["created_at", "updated_at", "version"]


class EventAdminForm(ServiceAreaGeometryForm):
    geometry_types = {"area": ("MultiPolygon",)}


@admin.register(Event)
class EventAdmin(LayerAdmin):
    form = EventAdminForm
    list_display = ["name", "period_display", "expected_visitors"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at", "version"]

    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: Event) -> str:
        return format_period(obj.period)


class NetworkFeatureAdminForm(ServiceAreaGeometryForm):
    geometry_types = {"geometry": tuple(sorted({t for types in NETWORK_GEOMETRY_TYPES.values() for t in types}))}

    def clean(self) -> dict:
        cleaned = super().clean()
        kind, geometry = cleaned.get("kind"), cleaned.get("geometry")
        if kind in NETWORK_GEOMETRY_TYPES and geometry is not None and not self.has_error("geometry"):
            allowed = NETWORK_GEOMETRY_TYPES[kind]
            if geometry.geom_type not in allowed:
                self.add_error(
                    "geometry",
                    _("A {kind} needs a geometry of type {allowed}.").format(kind=kind, allowed=", ".join(allowed)),
                )
        return cleaned


@admin.register(NetworkFeature)
class NetworkFeatureAdmin(LayerAdmin):
    form = NetworkFeatureAdminForm
    list_display = ["name", "kind", "ref", "source_id", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["name", "ref", "source_id"]
    readonly_fields = ["updated_at"]


@admin.register(RuleState)
class RuleStateAdmin(admin.ModelAdmin):
    """What each rule last ran with over all works: read-only, written by the sweeps."""

    list_display = ["code", "swept_at", "fingerprint"]
    readonly_fields = ["code", "fingerprint", "parameters", "swept_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
