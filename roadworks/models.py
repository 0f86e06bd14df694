"""Roadworks (applications and permits), their detours, attachments and history, and the conflicts between them.

The state machine over RoadworkStatus lives in workflow.py; the category is derived in categories.py.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField, DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.db.models import F, Func, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from auman.history import tracked

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
    # Further kinds a German road traffic authority orders signs for (verkehrsrechtliche Anordnung).
    STREET_LIGHTING = "street_lighting", _("Street lighting")
    TRAFFIC_SIGNALS = "traffic_signals", _("Traffic signals")
    ROAD_MARKING = "road_marking", _("Road markings")
    BRIDGE = "bridge", _("Bridge and structure works")
    GREENERY = "greenery", _("Trees and greenery")
    SCAFFOLDING = "scaffolding", _("Scaffolding")
    CRANE = "crane", _("Crane or lifting platform")
    REMOVAL = "removal", _("Removal (moving van)")
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


class RoadworkCategory(models.TextChoices):
    """Derived from duration and closure by categories.categorise(); decides the decision deadline."""

    MINOR = "minor", _("Minor (up to 3 working days)")
    STANDARD = "standard", _("Standard (up to 10 working days)")
    MAJOR = "major", _("Major (longer, or full closure)")
    EMERGENCY = "emergency", _("Emergency")


# Weekdays as stored in Roadwork.weekdays: 0 = Monday ... 6 = Sunday (Python's date.weekday(),
# PostgreSQL's EXTRACT(ISODOW) - 1). An empty list means every day.
WEEKDAYS = range(7)
DETOUR_TYPES = ("LineString", "MultiLineString")
PEDESTRIAN_ROUTE_TYPES = ("LineString", "MultiLineString")


class Direction(models.TextChoices):
    BOTH = "both", _("Both directions")
    FORWARD = "forward", _("In digitising direction")
    BACKWARD = "backward", _("Against digitising direction")


@tracked(exclude=["street_keys"])  # street_keys is generated from street_names
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
    # The street names folded as maps.models.normalise_street_name folds them (lower case, umlauts and ß spelled
    # out, no separators), kept by PostgreSQL (function auman_street_keys, migration 0004): rules C2 and C10
    # compare works by street with an array overlap instead of folding names per pair.
    street_keys = models.GeneratedField(
        expression=Func(F("street_names"), function="auman_street_keys"),
        output_field=ArrayField(models.TextField()),
        db_persist=True,
        verbose_name=_("street keys"),
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
    purpose = models.TextField(_("purpose of the works"), blank=True, max_length=2000)
    # The works' responsible office at the applicant organisation (a business contact, not a private person's).
    contact_name = models.CharField(_("contact (office or site manager)"), max_length=200, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=64, blank=True)
    contact_email = models.EmailField(_("contact e-mail"), blank=True)
    # A footway closure sends pedestrians along this route (lines, like the detours).
    pedestrian_route = models.GeometryField(
        _("pedestrian route"), srid=settings.AUMAN_SRID, null=True, blank=True, spatial_index=False
    )
    # Daily working window: both or neither. daily_end < daily_start means the window crosses
    # midnight (20:00-05:00); such a window belongs to the weekday on which it starts.
    daily_start = models.TimeField(_("daily start"), null=True, blank=True)
    daily_end = models.TimeField(_("daily end"), null=True, blank=True)
    weekdays = ArrayField(
        models.PositiveSmallIntegerField(),
        verbose_name=_("weekdays (0 = Monday ... 6 = Sunday; empty: every day)"),
        default=list,
        blank=True,
        size=7,
    )
    is_emergency = models.BooleanField(_("emergency works"), default=False)
    # Stored, derived: Roadwork.save() recomputes it (categories.categorise is the one definition).
    category = models.CharField(_("category"), max_length=16, choices=RoadworkCategory.choices, blank=True, default="")
    status = models.CharField(_("status"), max_length=32, choices=RoadworkStatus.choices, default=RoadworkStatus.DRAFT)
    # Set by the workflow (services.roadwork_transition), never by an edit.
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    decision_due = models.DateField(_("decision due"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    # Reported by the applicant (services.roadwork_report).
    actual_start = models.DateTimeField(_("actual start"), null=True, blank=True)
    actual_end = models.DateTimeField(_("actual end"), null=True, blank=True)
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
            models.Index(fields=["decision_due"], name="roadwork_decision_due_idx"),
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
            models.CheckConstraint(
                condition=Q(daily_start__isnull=True, daily_end__isnull=True)
                | (Q(daily_start__isnull=False, daily_end__isnull=False) & ~Q(daily_start=F("daily_end"))),
                name="roadwork_daily_window_complete",
                violation_error_message=_(
                    "Give both the daily start and the daily end, and let them differ (or give neither)."
                ),
            ),
            models.CheckConstraint(
                condition=Q(weekdays__contained_by=list(WEEKDAYS)),
                name="roadwork_weekdays_range",
                violation_error_message=_("Weekdays are numbers from 0 (Monday) to 6 (Sunday)."),
            ),
            models.CheckConstraint(
                condition=Q(actual_start__isnull=True)
                | Q(actual_end__isnull=True)
                | Q(actual_end__gt=F("actual_start")),
                name="roadwork_actual_end_after_start",
                violation_error_message=_("The actual end must lie after the actual start."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"

    def refresh_category(self) -> str:
        from .categories import categorise

        period = self.period
        if period is not None and not period.isempty and period.lower is not None and period.upper is not None:
            self.category = categorise(
                period=period, traffic_management=self.traffic_management, is_emergency=self.is_emergency
            )
        return self.category

    def save(self, *args, **kwargs) -> None:
        # Every save path (services, admin, demo data, fixtures) keeps the stored category true.
        self.refresh_category()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "category" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "category"]
        super().save(*args, **kwargs)

    @property
    def impact(self) -> str:
        return IMPACT_BY_TRAFFIC_MANAGEMENT[self.traffic_management]


@tracked()
class Detour(models.Model):
    """A signposted detour around a roadwork; a roadwork may have several (one per direction, per phase)."""

    roadwork = models.ForeignKey(Roadwork, on_delete=models.CASCADE, related_name="detours", verbose_name=_("roadwork"))
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    geometry = models.GeometryField(_("route"), srid=settings.AUMAN_SRID)  # GiST index (spatial_index default)
    # Optional: when the detour is signposted, within the roadwork's period; empty means the whole period.
    period = DateTimeRangeField(_("period"), null=True, blank=True)

    class Meta:
        verbose_name = _("detour")
        verbose_name_plural = _("detours")
        ordering = ["roadwork", "id"]

    def __str__(self) -> str:
        return self.name


class AttachmentKind(models.TextChoices):
    TRAFFIC_SIGN_PLAN = "traffic_sign_plan", _("Traffic sign plan")
    SITE_PLAN = "site_plan", _("Site plan")
    DETOUR_PLAN = "detour_plan", _("Detour plan")
    PHOTO = "photo", _("Photo")
    OTHER = "other", _("Other")


def attachment_path(instance: Attachment, filename: str) -> str:
    # The stored name is the attachment's id only: a user-chosen name never reaches the file system.
    return f"attachments/{instance.id}"


@tracked()
class Attachment(models.Model):
    """A file that belongs to an application (PDF, PNG or JPEG), stored under MEDIA_ROOT/attachments/<id>."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    roadwork = models.ForeignKey(
        Roadwork, on_delete=models.CASCADE, related_name="attachments", verbose_name=_("roadwork")
    )
    kind = models.CharField(_("kind"), max_length=32, choices=AttachmentKind.choices, default=AttachmentKind.OTHER)
    file = models.FileField(_("file"), upload_to=attachment_path, max_length=200)
    original_name = models.CharField(_("original file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=100)
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(_("uploaded"), auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")
        ordering = ["roadwork", "uploaded_at"]

    def __str__(self) -> str:
        return self.original_name


@tracked()
class RoadworkTransition(models.Model):
    """One step of a roadwork's workflow (and its creation): the application's history.

    `by` is empty for steps the system takes (the periodic status advance)."""

    roadwork = models.ForeignKey(
        Roadwork, on_delete=models.CASCADE, related_name="transitions", verbose_name=_("roadwork")
    )
    # The workflow's name for the step (workflow.Transition.name), e.g. "submit", "approve", "create".
    action = models.CharField(_("action"), max_length=32)
    from_status = models.CharField(_("from"), max_length=32, choices=RoadworkStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=32, choices=RoadworkStatus.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    # PROTECT: the history must keep who acted; deactivate users instead of deleting them.
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    comment = models.TextField(_("comment"), blank=True, max_length=4000)
    # Approved although error-level conflicts were open; the reason is part of the comment.
    override = models.BooleanField(_("override of open conflicts"), default=False)
    # A decision (approve, refuse, request modification, revoke) is e-mailed to the applicant organisation once;
    # set when that mail went out (roadworks.notifications).
    notified_at = models.DateTimeField(_("applicant notified"), null=True, blank=True)

    class Meta:
        verbose_name = _("roadwork transition")
        verbose_name_plural = _("roadwork transitions")
        ordering = ["roadwork", "at", "id"]
        indexes = [models.Index(fields=["roadwork", "at"], name="roadwork_transition_at_idx")]

    def __str__(self) -> str:
        return f"{self.roadwork_id}: {self.from_status or '-'} → {self.to_status}"


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
    EXTERNAL = "external", _("External source")


@tracked()
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
    # Who changed the status last and when; empty `by` with a time: detection did (resolved, reopened).
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("status changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    detected_at = models.DateTimeField(_("first detected"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # The start of the current open episode: first detection, or detection reopening a resolved conflict
    # (conflict_sql sets it). notified_at says when the e-mails about it went out: an episode is notified once.
    opened_at = models.DateTimeField(_("open since"), null=True, blank=True)
    notified_at = models.DateTimeField(_("notified"), null=True, blank=True)

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
        indexes = [
            GistIndex(fields=["place"], name="conflict_place_gist"),
            # A layer item's unsettled conflicts (rule C4 re-checks a corridor's works when one of them changes):
            # without it, each per-roadwork run read every conflict of the rule (7 to 30 ms at 100,000 works).
            # The layer item first: led by the rule, the planner took this index for every rule's per-roadwork
            # look-up (a rule's unsettled conflicts, thousands) instead of the index on roadwork_a.
            models.Index(
                fields=["layer_object_id", "rule"],
                condition=~Q(status="resolved"),
                name="conflict_open_layer_item_idx",
            ),
            # The notification task's query: episodes not notified yet.
            models.Index(
                fields=["opened_at"],
                name="conflict_to_notify_idx",
                condition=Q(opened_at__isnull=False)
                & (Q(notified_at__isnull=True) | Q(notified_at__lt=F("opened_at"))),
            ),
        ]

    def __str__(self) -> str:
        other = self.roadwork_b_id or f"{self.layer}:{self.layer_object_id}"
        return f"{self.rule} {self.roadwork_a_id} / {other}"


# --- Rule layers: what the authority records for the coordination rules (roadworks/rules.py) ---------------------
# Each has a version for optimistic concurrency in the API, like roadworks. Creating, changing or deleting one
# re-runs its rule over all roadworks once the change commits (services.layer_changed_on_commit).


class Corridor(models.Model):
    """A named group of roads that must stay passable, such as a Rhine or Neckar crossing (rule C4)."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    geometry = models.MultiLineStringField(_("roads"), srid=settings.AUMAN_SRID)  # GiST index (spatial_index)
    max_simultaneous = models.PositiveSmallIntegerField(
        _("works allowed at once"),
        default=1,
        help_text=_("How many works may close or restrict this corridor at the same time."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("corridor")
        verbose_name_plural = _("corridors")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_simultaneous__gte=1),
                name="corridor_max_simultaneous_positive",
                violation_error_message=_("At least one work must be allowed on a corridor at a time."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


def default_moratorium_years() -> int:
    return settings.AUMAN_MORATORIUM_YEARS


MORATORIUM_MAX_YEARS = 30


class MoratoriumArea(models.Model):
    """A recently resurfaced area where no one may dig (Aufgrabeverbot) for some years (rule C5)."""

    name = models.CharField(_("name"), max_length=200)
    geometry = models.MultiPolygonField(_("area"), srid=settings.AUMAN_SRID)  # GiST index (spatial_index)
    resurfaced_on = models.DateField(_("resurfaced on"))
    # The moratorium runs from the day of resurfacing for this many years (local days, settings.TIME_ZONE).
    years = models.PositiveSmallIntegerField(_("years"), default=default_moratorium_years)
    reason = models.TextField(_("reason"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("moratorium area")
        verbose_name_plural = _("moratorium areas")
        ordering = ["-resurfaced_on", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(years__gte=1, years__lte=MORATORIUM_MAX_YEARS),
                name="moratorium_years_range",
                violation_error_message=_("A moratorium lasts from 1 to 30 years."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def ends_on(self):
        """The first day without the moratorium."""
        if self.resurfaced_on is None or self.years is None:
            return None
        try:
            return self.resurfaced_on.replace(year=self.resurfaced_on.year + self.years)
        except ValueError:  # 29 February; PostgreSQL's date + interval gives the 28th as well
            return self.resurfaced_on.replace(year=self.resurfaced_on.year + self.years, day=28)


class Event(models.Model):
    """An event with its area and time (a fair, a match, a festival): works there collide with it (rule C6)."""

    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    # Indexed with the period by the GiST index below.
    area = models.MultiPolygonField(_("area"), srid=settings.AUMAN_SRID, spatial_index=False)
    period = DateTimeRangeField(_("period"))
    expected_visitors = models.PositiveIntegerField(_("expected visitors"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["period", "name"]
        indexes = [GistIndex(fields=["area", "period"], name="event_area_period_gist")]
        constraints = [
            models.CheckConstraint(
                condition=Q(period__isempty=False) & Q(period__lower_inf=False) & Q(period__upper_inf=False),
                name="event_period_bounded",
                violation_error_message=_("An event needs a start and an end, with the end after the start."),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class NetworkKind(models.TextChoices):
    TRAM_LINE = "tram_line", _("Tram line")
    BUS_LINE = "bus_line", _("Bus line")
    STOP = "stop", _("Stop")
    EMERGENCY_ROUTE = "emergency_route", _("Emergency route")


# The geometry each kind of network feature may have.
NETWORK_GEOMETRY_TYPES = {
    NetworkKind.TRAM_LINE: ("LineString", "MultiLineString"),
    NetworkKind.BUS_LINE: ("LineString", "MultiLineString"),
    NetworkKind.STOP: ("Point", "MultiPoint"),
    NetworkKind.EMERGENCY_ROUTE: ("LineString", "MultiLineString"),
}


class NetworkFeature(models.Model):
    """A tram or bus line, a stop or an emergency route, loaded from GeoJSON (load_network_layer; rule C7)."""

    kind = models.CharField(_("kind"), max_length=32, choices=NetworkKind.choices)
    name = models.CharField(_("name"), max_length=200)
    # The line number or stop code, as the operator names it (e.g. "1", "5A").
    ref = models.CharField(_("reference"), max_length=64, blank=True)
    # The feature's id in the file it came from: loading the file again updates it instead of adding a copy.
    source_id = models.CharField(_("id in the source file"), max_length=128, blank=True)
    geometry = models.GeometryField(_("geometry"), srid=settings.AUMAN_SRID)  # GiST index (spatial_index)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("network feature")
        verbose_name_plural = _("network features")
        ordering = ["kind", "name", "id"]
        indexes = [models.Index(fields=["kind"], name="networkfeature_kind_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "source_id"], condition=~Q(source_id=""), name="networkfeature_unique_source_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"


class RuleState(models.Model):
    """What the last full run of a rule used: a fingerprint of its effective parameters (and SQL revision).

    A process that starts with other parameters finds a different fingerprint and re-runs the rule over all works
    (services.conflicts_sweep_changed_rules)."""

    code = models.CharField(_("rule"), max_length=8, primary_key=True)
    fingerprint = models.CharField(_("parameter fingerprint"), max_length=64)
    parameters = models.JSONField(_("parameters"), default=dict)
    swept_at = models.DateTimeField(_("last full run"))

    class Meta:
        verbose_name = _("rule state")
        verbose_name_plural = _("rule states")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.fingerprint[:12]}"
