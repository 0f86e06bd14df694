"""A large bulk import that runs in a Celery worker instead of the web request (gisio.services.import_job_run)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class ImportJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs", verbose_name=_("started by")
    )
    # The organisation the works are for, as resolved when the job was accepted; NULL: the user's own.
    organisation = models.ForeignKey(
        "accounts.Organisation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("organisation"),
    )
    dry_run = models.BooleanField(_("dry run"), default=False)
    # The uploaded file itself: workers may run on other hosts than the web, and MEDIA_ROOT is not shared.
    # Emptied once the job has run, so the table stays small.
    data = models.BinaryField(_("file"), default=bytes)
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    feature_count = models.PositiveIntegerField(_("features"))
    # The language of the request that started it: the report speaks it, as the synchronous answer would.
    language = models.CharField(_("language"), max_length=10, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ImportJobStatus, default=ImportJobStatus.QUEUED)
    report = models.JSONField(_("report"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name or self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportJobStatus.DONE, ImportJobStatus.FAILED)
