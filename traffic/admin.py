"""Admin for incidents, with Leaflet map widgets for the location and the affected stretch.

The geometry checks and the period display are the roadworks admin's, so both admins refuse and
show the same things.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletGeoAdmin

from auman.admin import ServiceAreaGeometryForm, format_period

from .models import Incident


class IncidentAdminForm(ServiceAreaGeometryForm):
    # No Meta: the admin builds the form for its model with the fields its fieldsets name.
    geometry_types = {"location": ("Point",), "affected_line": ("LineString",)}


@admin.register(Incident)
class IncidentAdmin(LeafletGeoAdmin):
    form = IncidentAdminForm
    list_display = ["__str__", "kind", "street_name", "status", "occurred_at", "cleared_at", "organisation"]
    list_filter = ["kind", "status", "direction", "organisation"]
    search_fields = ["street_name", "description"]
    list_select_related = ["organisation"]
    # period is computed by the database from occurred_at and cleared_at.
    readonly_fields = ["period_display", "reported_by", "created_at", "updated_at", "version"]
    fieldsets = (
        (None, {"fields": ("kind", "status", "street_name", "description", "organisation")}),
        (_("Place"), {"fields": ("location", "affected_line", "lanes_blocked", "direction")}),
        (
            _("Times"),
            {
                "fields": (
                    "occurred_at",
                    "reported_at",
                    "confirmed_at",
                    "cleared_at",
                    "expected_clearance_at",
                    "period_display",
                )
            },
        ),
        (_("Record"), {"fields": ("reported_by", "created_at", "updated_at", "version")}),
    )

    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: Incident) -> str:
        return format_period(obj.period) if obj.pk else "–"

    def save_model(self, request: HttpRequest, obj: Incident, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.reported_by = request.user
        else:
            # Every write bumps the version, so an API client holding an older one is refused.
            obj.version += 1
        super().save_model(request, obj, form, change)
