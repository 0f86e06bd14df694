"""External sources (neighbours' feeds: the Autobahn company, the state, other cities) and the items read from them.

Items are a layer of their own: never roadworks of the city, read-only, replaced by each poll of their source.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import DateTimeRangeField
from django.contrib.postgres.indexes import GistIndex
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

MSG_URL_OR_PATH = _("Give either a URL or a file path, not both and not neither.")

# How many skipped records a source keeps for its health display (the count covers all of them).
SKIPPED_SHOWN = 20


class SourceFormat(models.TextChoices):
    WZDX = "wzdx", _("WZDx WorkZoneFeed (4.x, 3.x)")
    DATEX2 = "datex2", _("DATEX II SituationPublication (v3, v2.3)")
    WAZE_CIFS = "waze_cifs", _("Waze CIFS (XML or JSON)")
    AUTOBAHN = "autobahn", _("Autobahn GmbH traffic API")


class ItemKind(models.TextChoices):
    ROADWORKS = "roadworks", _("Roadworks")
    CLOSURE = "closure", _("Closure")
    WARNING = "warning", _("Warning")
    INCIDENT = "incident", _("Incident")
    OTHER = "other", _("Other")


class Restriction(models.TextChoices):
    """What an item does to traffic, when the source says so."""

    UNKNOWN = "", _("Unknown")
    CLOSURE = "closure", _("Full closure")
    LANE_CLOSURE = "lane_closure", _("Lane closure")
    RESTRICTION = "restriction", _("Restriction")
    NONE = "none", _("No restriction")


class ExternalSource(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    url = models.URLField(_("URL"), max_length=500, blank=True)
    file_path = models.CharField(_("file path"), max_length=500, blank=True, help_text=_("read from the server's disk"))
    format = models.CharField(_("format"), max_length=16, choices=SourceFormat.choices)
    poll_interval = models.DurationField(_("poll interval"), default=timedelta(minutes=5))
    enabled = models.BooleanField(_("enabled"), default=True)
    public = models.BooleanField(
        _("public"), default=False, help_text=_("its items are shown to everyone, not only to staff")
    )
    include_in_city_feeds = models.BooleanField(
        _("include in the city's feeds"),
        default=False,
        help_text=_("its items appear in the city's own feeds (WZDx, DATEX II, CIFS)"),
    )
    # Autobahn API: only these roads (A5, A6, A656 ...); empty: every road the API lists.
    roads = models.CharField(
        _("roads"), max_length=500, blank=True, help_text=_("Autobahn API only: roads to read, comma-separated")
    )
    # Health, written by each poll.
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    item_count = models.PositiveIntegerField(_("items"), default=0)
    skipped_count = models.PositiveIntegerField(_("skipped"), default=0)
    skipped = models.JSONField(_("skipped records"), default=list, blank=True)
    # Conditional GET: what the server sent last time.
    etag = models.CharField(max_length=500, blank=True)
    last_modified = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = _("external source")
        verbose_name_plural = _("external sources")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(url="") & ~Q(file_path="")) | (~Q(url="") & Q(file_path="")),
                name="externalsource_url_or_file",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if bool(self.url) == bool(self.file_path):
            raise ValidationError(MSG_URL_OR_PATH)

    @property
    def location(self) -> str:
        return self.url or self.file_path

    def is_due(self, now=None) -> bool:
        now = now or timezone.now()
        return self.last_attempt_at is None or self.last_attempt_at + self.poll_interval <= now

    @property
    def healthy(self) -> bool:
        """Polled, and the last poll went through."""
        return self.last_success_at is not None and (
            self.last_error_at is None or self.last_error_at < self.last_success_at
        )


class ExternalItem(models.Model):
    """One roadwork, closure or warning as a source publishes it. One row per (source, its id): polls upsert."""

    source = models.ForeignKey(ExternalSource, on_delete=models.CASCADE, related_name="items", verbose_name=_("source"))
    source_item_id = models.CharField(_("id at the source"), max_length=300)
    kind = models.CharField(_("kind"), max_length=16, choices=ItemKind.choices, default=ItemKind.OTHER)
    title = models.CharField(_("title"), max_length=500, blank=True)
    description = models.TextField(_("description"), blank=True)
    geometry = models.GeometryField(_("geometry"), srid=settings.AUMAN_SRID)
    # Unknown start or end: an open bound.
    period = DateTimeRangeField(_("period"))
    restriction = models.CharField(
        _("restriction"), max_length=16, choices=Restriction.choices, blank=True, default=Restriction.UNKNOWN
    )
    properties = models.JSONField(_("properties at the source"), default=dict, blank=True)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("external item")
        verbose_name_plural = _("external items")
        ordering = ["source", "source_item_id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "source_item_id"], name="externalitem_unique_per_source"),
        ]
        indexes = [GistIndex(fields=["geometry", "period"], name="externalitem_geom_period_gist")]

    def __str__(self) -> str:
        return f"{self.source}: {self.title or self.source_item_id}"
