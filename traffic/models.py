"""Traffic incidents. Accident classification (issue 4) hangs off Incident in its own model.

There are deliberately no fields for names, plates or other personal data.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from auman.db import TsTzRange


class IncidentKind(models.TextChoices):
    ACCIDENT = "accident", _("Accident")
    BREAKDOWN = "breakdown", _("Breakdown")
    OBSTRUCTION = "obstruction", _("Obstruction or object on the road")
    SPILL = "spill", _("Spill")
    HAZARD = "hazard", _("Hazard")
    POLICE_OPERATION = "police_operation", _("Police operation or closure")
    OTHER = "other", _("Other")


class IncidentStatus(models.TextChoices):
    REPORTED = "reported", _("Reported")
    CONFIRMED = "confirmed", _("Confirmed")
    CLEARED = "cleared", _("Cleared")
    CANCELLED = "cancelled", _("Cancelled (false report)")


ACTIVE_INCIDENT_STATUSES = (IncidentStatus.REPORTED, IncidentStatus.CONFIRMED)


class IncidentDirection(models.TextChoices):
    BOTH = "both", _("Both directions")
    FORWARD = "forward", _("In digitising direction")
    BACKWARD = "backward", _("Against digitising direction")
    UNKNOWN = "unknown", _("Unknown")


class Incident(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=32, choices=IncidentKind.choices)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    street_name = models.CharField(_("street name"), max_length=200, blank=True)
    location = models.PointField(_("location"), srid=settings.AUMAN_SRID, spatial_index=False)
    affected_line = models.LineStringField(_("affected stretch"), srid=settings.AUMAN_SRID, null=True, blank=True)
    lanes_blocked = models.PositiveSmallIntegerField(_("lanes blocked"), null=True, blank=True)
    direction = models.CharField(
        _("direction"), max_length=16, choices=IncidentDirection.choices, default=IncidentDirection.UNKNOWN
    )
    status = models.CharField(
        _("status"), max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.REPORTED
    )
    occurred_at = models.DateTimeField(_("occurred"))
    reported_at = models.DateTimeField(_("reported"))
    confirmed_at = models.DateTimeField(_("confirmed"), null=True, blank=True)
    cleared_at = models.DateTimeField(_("cleared"), null=True, blank=True)
    expected_clearance_at = models.DateTimeField(_("expected clearance"), null=True, blank=True)
    # When the incident affects traffic: from occurrence until cleared (open while not cleared).
    period = models.GeneratedField(
        expression=TsTzRange(F("occurred_at"), F("cleared_at")),
        output_field=DateTimeRangeField(),
        db_persist=True,
        verbose_name=_("period"),
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
    )
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reported by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-occurred_at"]
        indexes = [
            GistIndex(fields=["location", "period"], name="incident_geom_period_gist"),
            models.Index(fields=["status"], name="incident_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(cleared_at__isnull=True) | Q(cleared_at__gte=F("occurred_at")),
                name="incident_cleared_after_occurred",
                violation_error_message=_("An incident cannot be cleared before it occurred."),
            ),
            models.CheckConstraint(
                condition=Q(expected_clearance_at__isnull=True) | Q(expected_clearance_at__gte=F("occurred_at")),
                name="incident_expected_clearance_after_occurred",
                violation_error_message=_("The expected clearance cannot lie before the incident occurred."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.street_name}".strip()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_INCIDENT_STATUSES
