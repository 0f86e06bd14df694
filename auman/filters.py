"""The list filters every endpoint shares: bbox, status, active_on, updated_since."""

from __future__ import annotations

import django_filters
from django.contrib.gis.geos import Polygon
from django.core.exceptions import ValidationError
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .api import BoundedDateTimeField, parse_date_or_datetime
from .geo import WGS84

MSG_BBOX = _("bbox is min_lon,min_lat,max_lon,max_lat in WGS84, with min below max.")


def parse_bbox(value: str) -> Polygon:
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError as exc:
        raise ValidationError(MSG_BBOX) from exc
    if len(numbers) != 4:
        raise ValidationError(MSG_BBOX)
    xmin, ymin, xmax, ymax = numbers
    if not (-180 <= xmin < xmax <= 180 and -90 <= ymin < ymax <= 90):
        raise ValidationError(MSG_BBOX)
    polygon = Polygon.from_bbox((xmin, ymin, xmax, ymax))
    polygon.srid = WGS84
    return polygon


class CommaSeparatedChoiceFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """status=approved,in_progress"""


class SpatioTemporalFilterSet(django_filters.FilterSet):
    """Base for list endpoints; subclasses name their geometry and period fields."""

    geometry_field = "geometry"
    period_field = "period"

    bbox = django_filters.CharFilter(
        method="filter_bbox", label=_("Bounding box min_lon,min_lat,max_lon,max_lat (WGS84)")
    )
    active_on = django_filters.CharFilter(
        method="filter_active_on", label=_("Active on a date (whole local day) or at a date and time")
    )
    updated_since = django_filters.CharFilter(
        method="filter_updated_since", label=_("Changed at or after this date and time (ISO 8601)")
    )

    def filter_bbox(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            polygon = parse_bbox(value)
        except ValidationError as exc:
            raise serializers.ValidationError({"bbox": exc.messages}) from exc
        return queryset.filter(**{f"{self.geometry_field}__intersects": polygon})

    def filter_active_on(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            start, end = parse_date_or_datetime(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"active_on": exc.detail}) from exc
        if start == end:
            return queryset.filter(**{f"{self.period_field}__contains": start})
        return queryset.filter(**{f"{self.period_field}__overlap": DateTimeTZRange(start, end, "[)")})

    def filter_updated_since(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        try:
            moment = BoundedDateTimeField().to_internal_value(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"updated_since": exc.detail}) from exc
        return queryset.filter(updated_at__gte=moment)
