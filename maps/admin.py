"""Districts in the admin, to look at: they come from settings.AUMAN_DISTRICTS_FILE through `load_districts`,
which matches them by name, so a change belongs in that file (an edit here would be undone by the next load)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.http import HttpRequest

from .models import District


@admin.register(District)
class DistrictAdmin(GISModelAdmin):
    list_display = ["name", "number", "updated_at"]
    search_fields = ["name", "number"]
    ordering = ["name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: District | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: District | None = None) -> bool:
        return False
