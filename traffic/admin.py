"""Admin for incidents, with Leaflet map widgets for the location and the affected stretch.

The geometry checks and the period display are the roadworks admin's, so both admins refuse and
show the same things.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletGeoAdmin

from auman.admin import ServiceAreaGeometryForm, format_period

from .models import Incident, IncidentTransition


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
    # The status and its times change only through traffic.services.incident_transition, which keeps the history.
    readonly_fields = [
        "status",
        "confirmed_at",
        "cleared_at",
        "period_display",
        "reported_by",
        "created_at",
        "updated_at",
        "version",
        "history_display",
    ]
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
        (_("Record"), {"fields": ("reported_by", "created_at", "updated_at", "version", "history_display")}),
    )

    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: Incident) -> str:
        return format_period(obj.period) if obj.pk else "–"

    @admin.display(description=_("status history"))
    def history_display(self, obj: Incident) -> str:
        # Read only and not an inline: steps are taken through the API (traffic.workflow), never edited here.
        if not obj.pk:
            return "–"
        rows = obj.transitions.select_related("by").order_by("at", "id")
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} → {} · {} {}",
            (
                (
                    date_format(timezone.localtime(row.at), "SHORT_DATETIME_FORMAT"),
                    row.get_from_status_display() or "–",
                    row.get_to_status_display(),
                    row.by.get_username() if row.by else "–",
                    row.comment,
                )
                for row in rows
            ),
        )

    def save_model(self, request: HttpRequest, obj: Incident, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.reported_by = request.user
        else:
            # Every write bumps the version, so an API client holding an older one is refused.
            obj.version += 1
        super().save_model(request, obj, form, change)
        if not change:
            # Like traffic.services.incident_create: every incident's history starts with its report.
            IncidentTransition.objects.create(
                incident=obj, from_status="", to_status=obj.status, at=obj.reported_at, by=request.user
            )
