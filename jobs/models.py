"""The transactional outbox: follow-up work is written in the same transaction as the change that needs it.

A row exists exactly when its change committed, so no broker outage can lose it; jobs.outbox relays pending rows
to Celery (right after the commit, and again from every worker until the broker took them)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _


class OutboxMessage(models.Model):
    task = models.CharField(_("task"), max_length=200)
    args = models.JSONField(_("arguments"), default=list)
    created_at = models.DateTimeField(_("created"), db_default=Now())
    sent_at = models.DateTimeField(_("handed to the broker"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            # The relay's only question: what is still pending, oldest first.
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="jobs_outbox_pending"),
            models.Index(fields=["sent_at"], condition=models.Q(sent_at__isnull=False), name="jobs_outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)}"
