"""Admin of the external sources (editable) and their items (read-only: a poll replaces them)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from leaflet.admin import LeafletGeoAdmin

from auman.admin import format_period

from . import services
from .models import ExternalItem, ExternalSource

MSG_POLLED = _("{name}: {status}, {items} items, {skipped} skipped.")
MSG_POLL_FAILED = _("{name}: the poll failed: {error}")


@admin.register(ExternalSource)
class ExternalSourceAdmin(admin.ModelAdmin):
    # A source URL typed without a scheme is https (Django 6's default; 5.2 still warns about assuming http).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "format",
        "enabled",
        "public",
        "include_in_city_feeds",
        "health_display",
        "last_success_at",
        "item_count",
        "skipped_count",
        "error_display",
    ]
    list_filter = ["format", "enabled", "public", "include_in_city_feeds"]
    search_fields = ["name", "url", "file_path"]
    actions = ["poll_now"]
    readonly_fields = [
        "last_attempt_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "item_count",
        "skipped_count",
        "skipped_display",
        "etag",
        "last_modified",
    ]
    fieldsets = [
        (None, {"fields": ["name", "format", "url", "file_path", "roads", "poll_interval", "enabled"]}),
        (_("Visibility"), {"fields": ["public", "include_in_city_feeds"]}),
        (
            _("Health"),
            {
                "fields": [
                    "last_attempt_at",
                    "last_success_at",
                    "last_error",
                    "last_error_at",
                    "item_count",
                    "skipped_count",
                    "skipped_display",
                    "etag",
                    "last_modified",
                ]
            },
        ),
    ]

    @admin.display(description=_("health"), boolean=True)
    def health_display(self, obj: ExternalSource) -> bool | None:
        if obj.last_attempt_at is None:
            return None
        return obj.healthy

    @admin.display(description=_("last error"))
    def error_display(self, obj: ExternalSource) -> str:
        if not obj.last_error or obj.healthy:
            return "–"
        return obj.last_error[:120]

    @admin.display(description=_("skipped records"))
    def skipped_display(self, obj: ExternalSource) -> SafeString:
        if not obj.skipped:
            return format_html("{}", "–")
        rows = ((entry.get("record", ""), entry.get("reason", "")) for entry in obj.skipped)
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows))

    def save_model(self, request: HttpRequest, obj: ExternalSource, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        # Enabling or disabling a source adds or takes away its items' conflicts (rule C9 skips disabled sources).
        if change and "enabled" in form.changed_data:
            services.external_conflicts_on_commit(source_id=obj.pk)

    def delete_model(self, request: HttpRequest, obj: ExternalSource) -> None:
        super().delete_model(request, obj)
        services.external_conflicts_on_commit(source_id=None)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        super().delete_queryset(request, queryset)
        services.external_conflicts_on_commit(source_id=None)

    @admin.action(description=_("Poll the selected sources now"))
    def poll_now(self, request: HttpRequest, queryset) -> None:
        for source in queryset:
            result = services.source_poll(source_id=source.pk, force=True)
            if result.status == "error":
                self.message_user(
                    request, str(MSG_POLL_FAILED).format(name=source.name, error=result.error), messages.ERROR
                )
            else:
                text = str(MSG_POLLED).format(
                    name=source.name, status=result.status, items=result.items, skipped=len(result.skipped)
                )
                self.message_user(request, text, messages.SUCCESS)


@admin.register(ExternalItem)
class ExternalItemAdmin(LeafletGeoAdmin):
    list_display = ["title", "source", "kind", "restriction", "period_display", "updated_at"]
    list_filter = ["source", "kind", "restriction"]
    search_fields = ["title", "description", "source_item_id"]
    list_select_related = ["source"]

    @admin.display(description=_("period"), ordering="period")
    def period_display(self, obj: ExternalItem) -> str:
        return format_period(obj.period)

    # A poll replaces the items: editing them here would be undone at the next poll.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
