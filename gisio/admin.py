from django.contrib import admin

from .models import ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    """Read-only: operators see which imports ran, for whom, and why one failed; only the worker changes a job.
    The stored file is not shown (it is emptied once the job has run)."""

    list_display = ["id", "user", "organisation", "file_name", "feature_count", "dry_run", "status", "created_at"]
    list_filter = ["status", "dry_run"]
    search_fields = ["file_name", "user__username"]
    exclude = ["data"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
