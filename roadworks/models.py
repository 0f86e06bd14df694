"""Roadworks and the conflicts between them.

The permit workflow (issue 3) extends Roadwork with daily windows, detours and the
state machine; the fields here are the ones every later part relies on.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation

LINE_AND_AREA_TYPES = ("LineString", "MultiLineString", "Polygon", "MultiPolygon")


class RoadworkStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted")
    MODIFICATION_REQUESTED = "modification_requested", _("Modification requested")
    APPROVED = "approved", _("Approved")
    REFUSED = "refused", _("Refused")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    REVOKED = "revoked", _("Revoked")


# Works that take up road space (or will) and so can conflict with others.
CONFLICTING_STATUSES = (
    RoadworkStatus.SUBMITTED,
    RoadworkStatus.MODIFICATION_REQUESTED,
    RoadworkStatus.APPROVED,
    RoadworkStatus.IN_PROGRESS,
)
# What the public, the map for everyone and the feeds show.
PUBLIC_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS, RoadworkStatus.COMPLETED)


class WorkKind(models.TextChoices):
    GAS = "gas", _("Gas")
    WATER = "water", _("Water")
    DISTRICT_HEATING = "district_heating", _("District heating")
    ELECTRICITY = "electricity", _("Electricity")
    TELECOM = "telecom", _("Telecommunications")
    SEWER = "sewer", _("Sewer")
    TRAM = "tram", _("Tram tracks")
    ROAD_RESURFACING = "road_resurfacing", _("Road resurfacing")
    ROAD_CONSTRUCTION = "road_construction", _("Road construction")
    BUILDING_SITE = "building_site", _("Building site")
    OTHER = "other", _("Other")


class TrafficManagement(models.TextChoices):
    FULL_CLOSURE = "full_closure", _("Full closure")
    LANE_CLOSURE = "lane_closure", _("Lane closure")
    ALTERNATING_ONE_WAY = "alternating_one_way", _("Alternating one-way traffic with signals")
    ONE_WAY = "one_way", _("One-way traffic")
    FOOTWAY_CLOSURE = "footway_closure", _("Footway closure")
    CYCLE_LANE_CLOSURE = "cycle_lane_closure", _("Cycle lane closure")
    NO_CARRIAGEWAY_INCURSION = "no_carriageway_incursion", _("No carriageway incursion")


class Impact(models.TextChoices):
    """How much a work hinders traffic; derived from traffic management for map colours and feeds."""

    CLOSURE = "closure", _("Full closure")
    RESTRICTION = "restriction", _("Restriction")
    MINOR = "minor", _("Minor")


IMPACT_BY_TRAFFIC_MANAGEMENT = {
    TrafficManagement.FULL_CLOSURE: Impact.CLOSURE,
    TrafficManagement.LANE_CLOSURE: Impact.RESTRICTION,
    TrafficManagement.ALTERNATING_ONE_WAY: Impact.RESTRICTION,
    TrafficManagement.ONE_WAY: Impact.RESTRICTION,
    TrafficManagement.FOOTWAY_CLOSURE: Impact.MINOR,
    TrafficManagement.CYCLE_LANE_CLOSURE: Impact.MINOR,
    TrafficManagement.NO_CARRIAGEWAY_INCURSION: Impact.MINOR,
}


class Direction(models.TextChoices):
    BOTH = "both", _("Both directions")
    FORWARD = "forward", _("In digitising direction")
    BACKWARD = "backward", _("Against digitising direction")


class Roadwork(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("applicant organisation"), on_delete=models.PROTECT, related_name="roadworks"
    )
    reference = models.CharField(_("reference"), max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True, max_length=5000)
    street_names = ArrayField(
        models.CharField(max_length=200), verbose_name=_("street names"), default=list, blank=True, size=20
    )
    # Indexed by the GiST index on (geometry, period) below, not by a separate one.
    geometry = models.GeometryField(_("geometry"), srid=settings.AUMAN_SRID, spatial_index=False)
    period = DateTimeRangeField(_("period"))
    work_kind = models.CharField(_("kind of works"), max_length=32, choices=WorkKind.choices, default=WorkKind.OTHER)
    traffic_management = models.CharField(
        _("traffic management"),
        max_length=32,
        choices=TrafficManagement.choices,
        default=TrafficManagement.LANE_CLOSURE,
    )
    direction = models.CharField(
        _("direction affected"), max_length=16, choices=Direction.choices, default=Direction.BOTH
    )
    lanes_affected = models.PositiveSmallIntegerField(_("lanes affected"), null=True, blank=True)
    excavation = models.BooleanField(_("excavation"), default=False)
    max_width_m = models.DecimalField(_("width limit (m)"), max_digits=4, decimal_places=2, null=True, blank=True)
    max_height_m = models.DecimalField(_("height limit (m)"), max_digits=4, decimal_places=2, null=True, blank=True)
    max_weight_t = models.DecimalField(_("weight limit (t)"), max_digits=5, decimal_places=2, null=True, blank=True)
    speed_limit_kmh = models.PositiveSmallIntegerField(_("speed limit (km/h)"), null=True, blank=True)
    contact = models.CharField(_("contact (office, phone)"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=32, choices=RoadworkStatus.choices, default=RoadworkStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)
    # Optimistic concurrency: every write increments it; a write based on an older version is refused.
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("roadwork")
        verbose_name_plural = _("roadworks")
        ordering = ["-updated_at"]
        indexes = [
            GistIndex(fields=["geometry", "period"], name="roadwork_geom_period_gist"),
            models.Index(fields=["status"], name="roadwork_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(period__isempty=False) & Q(period__lower_inf=False) & Q(period__upper_inf=False),
                name="roadwork_period_bounded",
                violation_error_message=_("A roadwork needs a start and an end, with the end after the start."),
            ),
            models.CheckConstraint(
                condition=Q(speed_limit_kmh__isnull=True) | Q(speed_limit_kmh__gte=5, speed_limit_kmh__lte=130),
                name="roadwork_speed_limit_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    @property
    def impact(self) -> str:
        return IMPACT_BY_TRAFFIC_MANAGEMENT[self.traffic_management]


class ConflictStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")
    ACCEPTED = "accepted", _("Accepted with reason")


class Severity(models.TextChoices):
    ERROR = "error", _("Error")
    WARNING = "warning", _("Warning")
    INFO = "info", _("Info")


class ConflictLayer(models.TextChoices):
    """What a conflict's second side is when it is not another roadwork."""

    BLACK_SPOT = "black_spot", _("Accident black spot")
    MORATORIUM = "moratorium", _("Moratorium area")
    EVENT = "event", _("Event")
    CORRIDOR = "corridor", _("Corridor")
    PUBLIC_TRANSPORT = "public_transport", _("Public transport")
    EMERGENCY_ROUTE = "emergency_route", _("Emergency route")
    INCIDENT = "incident", _("Incident")


class Conflict(models.Model):
    """A roadwork colliding under a rule with another roadwork (`roadwork_b`) or with an item of a rule
    layer (`layer` + `layer_object_id`). For pairs, roadwork_a has the smaller id, so a pair has one row per
    rule; re-running detection updates rows in place and keeps their status."""

    rule = models.CharField(_("rule"), max_length=8)
    severity = models.CharField(_("severity"), max_length=8, choices=Severity.choices, default=Severity.ERROR)
    roadwork_a = models.ForeignKey(
        Roadwork, on_delete=models.CASCADE, related_name="conflicts_as_a", verbose_name=_("roadwork A")
    )
    roadwork_b = models.ForeignKey(
        Roadwork,
        on_delete=models.CASCADE,
        related_name="conflicts_as_b",
        verbose_name=_("roadwork B"),
        null=True,
        blank=True,
    )
    layer = models.CharField(_("layer"), max_length=32, choices=ConflictLayer.choices, blank=True)
    layer_object_id = models.CharField(_("layer item"), max_length=64, blank=True)
    overlap_period = DateTimeRangeField(_("overlap period"))
    place = models.GeometryField(_("place"), srid=settings.AUMAN_SRID)
    status = models.CharField(_("status"), max_length=16, choices=ConflictStatus.choices, default=ConflictStatus.OPEN)
    reason = models.TextField(_("reason"), blank=True, max_length=2000)
    detected_at = models.DateTimeField(_("first detected"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conflict")
        verbose_name_plural = _("conflicts")
        ordering = ["-detected_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "roadwork_a", "roadwork_b"],
                condition=Q(roadwork_b__isnull=False),
                name="conflict_unique_pair_per_rule",
            ),
            models.UniqueConstraint(
                fields=["rule", "roadwork_a", "layer", "layer_object_id"],
                condition=Q(roadwork_b__isnull=True),
                name="conflict_unique_layer_hit_per_rule",
            ),
            models.CheckConstraint(
                condition=(Q(roadwork_b__isnull=False) & Q(layer="") & Q(layer_object_id=""))
                | (Q(roadwork_b__isnull=True) & ~Q(layer="") & ~Q(layer_object_id="")),
                name="conflict_one_other_side",
            ),
            models.CheckConstraint(
                condition=Q(roadwork_b__isnull=True) | Q(roadwork_a__lt=models.F("roadwork_b")),
                name="conflict_pair_ordered",
            ),
        ]
        indexes = [GistIndex(fields=["place"], name="conflict_place_gist")]

    def __str__(self) -> str:
        other = self.roadwork_b_id or f"{self.layer}:{self.layer_object_id}"
        return f"{self.rule} {self.roadwork_a_id} / {other}"
