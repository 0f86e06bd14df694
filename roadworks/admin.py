"""Admin for roadworks and conflicts, with Leaflet map widgets (assets served from django-leaflet's static files).

Geometry is stored in settings.AUMAN_SRID; the Leaflet widget shows and edits it in WGS84 and
the form field transforms it back on save. The forms run the same geometry checks as the API
(auman.geo.clean_geometry), so the admin cannot store what the API would refuse.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.gis.geos import GEOSGeometry
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletAdminWidget, LeafletGeoAdmin

from auman.admin import ServiceAreaGeometryForm, format_period

from .models import LINE_AND_AREA_TYPES, Conflict, Impact, Roadwork
from .services import CONFLICT_RELEVANT_FIELDS, roadwork_detect_conflicts_on_commit


class RoadworkAdminForm(ServiceAreaGeometryForm):
    # No Meta: the admin builds the form for its model with the fields its fieldsets name.
    geometry_types = {"geometry": LINE_AND_AREA_TYPES}


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


@admin.register(Roadwork)
class RoadworkAdmin(LeafletGeoAdmin):
    form = RoadworkAdminForm
    list_display = ["reference", "title", "organisation", "status", "impact_display", "period_display"]
    list_filter = ["status", "work_kind", "traffic_management", "organisation"]
    search_fields = ["reference", "title", "street_names"]
    list_select_related = ["organisation"]
    readonly_fields = ["impact_display", "created_by", "created_at", "updated_at", "version"]
    fieldsets = (
        (None, {"fields": ("reference", "organisation", "title", "description", "street_names", "status")}),
        (_("Place and time"), {"fields": ("geometry", "period")}),
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
                    "contact",
                )
            },
        ),
        (_("Record"), {"fields": ("created_by", "created_at", "updated_at", "version")}),
    )

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
        if not change or any(name in form.changed_data for name in CONFLICT_RELEVANT_FIELDS):
            roadwork_detect_conflicts_on_commit(roadwork_id=obj.pk)


@admin.register(Conflict)
class ConflictAdmin(admin.ModelAdmin):
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
        "detected_at",
        "updated_at",
    ]

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
