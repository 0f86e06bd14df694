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
from auman.history import tracked


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


@tracked(exclude=["period"])  # period is generated from occurred_at and cleared_at
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


# --- Accident classification (EUSKA / Destatis Unfallatlas) ---------------------------------------
# Codes as German police record them; the labels are the official German wording, translatable.


class AccidentCategory(models.IntegerChoices):
    """Unfallkategorie: the most severe consequence."""

    KILLED = 1, _("Accident with persons killed")
    SERIOUSLY_INJURED = 2, _("Accident with seriously injured persons")
    SLIGHTLY_INJURED = 3, _("Accident with slightly injured persons")
    SERIOUS_PROPERTY_DAMAGE = 4, _("Serious accident with property damage only")
    OTHER_PROPERTY_DAMAGE = 5, _("Other accident with property damage only")
    INTOXICATED_OTHER = 6, _("Other accident under the influence of intoxicants")


class AccidentKind(models.IntegerChoices):
    """Unfallart: how the collision happened."""

    OTHER = 0, _("Accident of another kind")
    STARTING_STOPPING_PARKED = 1, _("Collision with a vehicle starting, stopping or stationary")
    AHEAD_WAITING = 2, _("Collision with a vehicle ahead or waiting")
    SIDEWAYS_SAME_DIRECTION = 3, _("Collision with a vehicle moving sideways in the same direction")
    ONCOMING = 4, _("Collision with an oncoming vehicle")
    TURNING_CROSSING = 5, _("Collision with a vehicle turning into or crossing")
    PEDESTRIAN = 6, _("Collision between vehicle and pedestrian")
    OBSTACLE = 7, _("Impact with an obstacle on the carriageway")
    LEFT_ROAD_RIGHT = 8, _("Leaving the carriageway to the right")
    LEFT_ROAD_LEFT = 9, _("Leaving the carriageway to the left")


class AccidentType(models.IntegerChoices):
    """Unfalltyp: the conflict situation that led to the accident."""

    DRIVING = 1, _("Driving accident")
    TURNING = 2, _("Turning accident")
    TURNING_IN_CROSSING = 3, _("Turning-in / crossing accident")
    PEDESTRIAN_CROSSING = 4, _("Pedestrian crossing accident")
    STATIONARY_TRAFFIC = 5, _("Accident involving stationary traffic")
    LONGITUDINAL_TRAFFIC = 6, _("Accident in longitudinal traffic")
    OTHER = 7, _("Other accident")


class LightCondition(models.IntegerChoices):
    DAYLIGHT = 0, _("Daylight")
    TWILIGHT = 1, _("Twilight")
    DARKNESS = 2, _("Darkness")


class RoadCondition(models.IntegerChoices):
    DRY = 0, _("Dry")
    WET = 1, _("Wet, damp or slippery")
    WINTRY = 2, _("Wintry slippery")


class AccidentSource(models.TextChoices):
    POLICE = "police", _("Logged by the police in AUMAn")
    UNFALLATLAS = "unfallatlas", _("Destatis Unfallatlas import")


class TimePrecision(models.TextChoices):
    EXACT = "exact", _("Exact time")
    HOUR_IN_MONTH = "hour_in_month", _("Hour, weekday and month only (Unfallatlas)")


@tracked()
class Accident(models.Model):
    """An accident as a statistical record: classification, place and time, and no personal data.

    Accidents the police log in AUMAn are also live incidents (`incident`); imported ones from the
    Unfallatlas are records only. Black spots are computed over this table.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    incident = models.OneToOneField(
        Incident, verbose_name=_("incident"), null=True, blank=True, on_delete=models.SET_NULL, related_name="accident"
    )
    location = models.PointField(_("location"), srid=settings.AUMAN_SRID)
    occurred_at = models.DateTimeField(_("occurred"), db_index=True)
    time_precision = models.CharField(
        _("time precision"), max_length=16, choices=TimePrecision.choices, default=TimePrecision.EXACT
    )
    category = models.PositiveSmallIntegerField(_("accident category"), choices=AccidentCategory.choices)
    kind = models.PositiveSmallIntegerField(_("kind of accident"), choices=AccidentKind.choices)
    type = models.PositiveSmallIntegerField(_("type of accident"), choices=AccidentType.choices)
    light_condition = models.PositiveSmallIntegerField(
        _("light condition"), choices=LightCondition.choices, null=True, blank=True
    )
    road_condition = models.PositiveSmallIntegerField(
        _("road condition"), choices=RoadCondition.choices, null=True, blank=True
    )
    involves_bicycle = models.BooleanField(_("bicycle involved"), default=False)
    involves_car = models.BooleanField(_("car involved"), default=False)
    involves_pedestrian = models.BooleanField(_("pedestrian involved"), default=False)
    involves_motorcycle = models.BooleanField(_("motorcycle involved"), default=False)
    involves_goods_vehicle = models.BooleanField(_("goods vehicle involved"), default=False)
    involves_other = models.BooleanField(_("other road user involved"), default=False)
    killed = models.PositiveSmallIntegerField(_("killed"), null=True, blank=True)
    seriously_injured = models.PositiveSmallIntegerField(_("seriously injured"), null=True, blank=True)
    slightly_injured = models.PositiveSmallIntegerField(_("slightly injured"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=AccidentSource.choices, default=AccidentSource.POLICE)
    # The source's own key (Unfallatlas: OBJECTID or UIDENTSTLAE with the year), so a re-import adds nothing.
    source_key = models.CharField(_("source key"), max_length=64, blank=True)
    region_code = models.CharField(_("municipality key (AGS)"), max_length=8, blank=True)
    # Set by work-zone crash detection: the active roadwork the accident happened in or next to.
    work_zone = models.ForeignKey(
        "roadworks.Roadwork",
        verbose_name=_("work zone"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accidents",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("accident")
        verbose_name_plural = _("accidents")
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["category", "type"], name="accident_category_type_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "source_key"],
                condition=~Q(source_key=""),
                name="accident_unique_source_key",
            ),
            models.CheckConstraint(condition=Q(category__gte=1, category__lte=6), name="accident_category_range"),
            models.CheckConstraint(condition=Q(kind__gte=0, kind__lte=9), name="accident_kind_range"),
            models.CheckConstraint(condition=Q(type__gte=1, type__lte=7), name="accident_type_range"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} ({self.occurred_at:%Y-%m-%d})"


@tracked()
class IncidentTransition(models.Model):
    """One step of an incident's lifecycle: who took it, when, and why. Written by traffic.services only."""

    incident = models.ForeignKey(
        Incident, verbose_name=_("incident"), on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(_("from"), max_length=16, choices=IncidentStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=16, choices=IncidentStatus.choices)
    at = models.DateTimeField(_("at"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    comment = models.CharField(_("comment"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("incident status change")
        verbose_name_plural = _("incident status changes")
        ordering = ["incident", "at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '–'} → {self.to_status}"


class BlackSpot(models.Model):
    """An accident black spot (Unfallhäufungsstelle) found by one rule over one period.

    `key` is stable across recomputations (rule + period + the cluster's member accidents), so a black
    spot that still holds keeps its id, and conflicts that name it stay valid.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(_("key"), max_length=64, unique=True)
    rule = models.CharField(_("rule"), max_length=32)
    period = DateTimeRangeField(_("period"))
    location = models.PointField(_("centre"), srid=settings.AUMAN_SRID)
    area = models.PolygonField(_("area"), srid=settings.AUMAN_SRID)
    accident_count = models.PositiveIntegerField(_("accidents"))
    score = models.PositiveIntegerField(_("score"), null=True, blank=True)
    accident_type = models.PositiveSmallIntegerField(
        _("type of accident"), choices=AccidentType.choices, null=True, blank=True
    )
    statistics = models.JSONField(_("statistics"), default=dict, blank=True)
    accidents = models.ManyToManyField(Accident, verbose_name=_("accidents"), related_name="black_spots")
    computed_at = models.DateTimeField(_("computed"), auto_now=True)

    class Meta:
        verbose_name = _("black spot")
        verbose_name_plural = _("black spots")
        ordering = ["-accident_count"]

    def __str__(self) -> str:
        return f"{self.rule}: {self.accident_count}"
