"""Shared pieces of the REST API edge: GeoJSON in WGS84, periods, strict input, versions, errors."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework_gis.fields import GeometryField
from rest_framework_gis.pagination import GeoJsonPagination

from .errors import MSG_VERSION_REQUIRED, ConcurrentEditError
from .geo import WGS84, clean_geometry, parse_geojson_geometry

MSG_UNKNOWN_FIELD = _("Unknown field.")
MSG_NOT_A_FEATURE = _("Send a GeoJSON Feature: an object with 'type': 'Feature', 'geometry' and 'properties'.")
MSG_PROPERTIES_OBJECT = _("'properties' must be an object.")
MSG_PERIOD_FORMAT = _("Give the period as an object with 'lower' (start) and 'upper' (end), ISO 8601 with offset.")
MSG_PERIOD_ORDER = _("The end must lie after the start.")
MSG_PERIOD_BOUND_MISSING = _("Both 'lower' (start) and 'upper' (end) are required.")
MSG_DATE_OR_DATETIME = _("Give a date (2026-05-31) or a date and time with offset (2026-05-31T08:00:00+02:00).")
MSG_YEAR_RANGE = _("Dates must lie between the years 1990 and 2100.")

MSG_PAYLOAD_TOO_LARGE = _("The request is larger than {limit} bytes. Send less data at once.")

MIN_YEAR, MAX_YEAR = 1990, 2100


class FeaturePagination(GeoJsonPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_paginated_response_schema(self, schema):
        """A page is the list's FeatureCollection plus count, next and previous. rest_framework_gis' own schema
        still requires 'results' and nests a whole collection under 'features', which no answer matches."""
        page = super().get_paginated_response_schema(schema)
        links = {name: page["properties"][name] for name in ("count", "next", "previous")}
        return {"allOf": [schema, {"type": "object", "required": ["count"], "properties": links}]}


class WGS84GeometryField(GeometryField):
    """GeoJSON geometry in WGS84 on the wire, the metric storage SRID in the database."""

    def __init__(self, *, allowed_types: tuple[str, ...], **kwargs: Any) -> None:
        self.allowed_types = allowed_types
        kwargs.setdefault("precision", 7)
        super().__init__(**kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        if value.srid != WGS84:
            value = value.transform(WGS84, clone=True)
        return super().to_representation(value)

    def to_internal_value(self, value):
        if value is None:
            if self.allow_null:
                return None
            self.fail("null")
        try:
            geom = parse_geojson_geometry(value)
            return clean_geometry(geom, allowed_types=self.allowed_types)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


def _check_year(value: datetime) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise serializers.ValidationError(MSG_YEAR_RANGE)


class BoundedDateTimeField(serializers.DateTimeField):
    """ISO 8601 with offset, in a plausible year range."""

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        _check_year(result)
        return result


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "lower": {"type": "string", "format": "date-time"},
            # null only in answers: an incident not yet cleared has an open end. Requests need both bounds.
            "upper": {"type": "string", "format": "date-time", "nullable": True},
        },
        "required": ["lower", "upper"],
    }
)
class PeriodField(serializers.Field):
    """A tstzrange as {"lower": ..., "upper": ...}; both bounds required, upper after lower."""

    default_error_messages = {"invalid": MSG_PERIOD_FORMAT}

    def to_representation(self, value: DateTimeTZRange) -> dict[str, str | None]:
        fmt = serializers.DateTimeField()
        return {
            "lower": fmt.to_representation(value.lower) if value.lower else None,
            "upper": fmt.to_representation(value.upper) if value.upper else None,
        }

    def to_internal_value(self, data: Any) -> DateTimeTZRange:
        if not isinstance(data, dict) or set(data) - {"lower", "upper"}:
            self.fail("invalid")
        if data.get("lower") in (None, "") or data.get("upper") in (None, ""):
            raise serializers.ValidationError(MSG_PERIOD_BOUND_MISSING)
        field = BoundedDateTimeField()
        errors: dict[str, Any] = {}
        bounds: dict[str, datetime] = {}
        for key in ("lower", "upper"):
            try:
                bounds[key] = field.to_internal_value(data[key])
            except serializers.ValidationError as exc:
                errors[key] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        if bounds["upper"] <= bounds["lower"]:
            raise serializers.ValidationError(MSG_PERIOD_ORDER)
        return DateTimeTZRange(bounds["lower"], bounds["upper"], "[)")


class StrictFeatureInputMixin:
    """Reject unknown members instead of ignoring them: a typo must not silently drop data."""

    top_level_members = frozenset({"type", "id", "geometry", "properties", "bbox"})

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"non_field_errors": [MSG_NOT_A_FEATURE]})
        if data.get("type", "Feature") != "Feature":
            raise exceptions.ValidationError({"type": [MSG_NOT_A_FEATURE]})
        unknown_top = set(data) - self.top_level_members
        properties = data.get("properties", {})
        if not isinstance(properties, dict):
            raise exceptions.ValidationError({"properties": [MSG_PROPERTIES_OBJECT]})
        writable = {name for name, field in self.fields.items() if not field.read_only}
        # Read-only fields sent back unchanged (a GET result edited and PUT back) are ignored;
        # names the API does not know at all are errors.
        known = set(self.fields)
        errors = {name: [MSG_UNKNOWN_FIELD] for name in sorted({*unknown_top, *(set(properties) - known)})}
        geo_field = self.Meta.geo_field
        flat = {name: value for name, value in properties.items() if name in writable}
        if "geometry" in data:
            flat[geo_field] = data["geometry"]
        try:
            result = serializers.ModelSerializer.to_internal_value(self, flat)
        except exceptions.ValidationError as exc:
            # Report unknown and invalid fields together, so one round trip shows every problem.
            errors.update(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
        if errors:
            raise exceptions.ValidationError(errors)
        return result


def expected_version(request, data: dict[str, Any]) -> int:
    """The version the client edited: If-Match header (an ETag we sent) or 'version' in the body."""
    header = request.headers.get("If-Match")
    raw = header.strip().removeprefix("W/").strip('"') if header else data.get("version")
    if raw in (None, ""):
        raise PreconditionRequired(MSG_VERSION_REQUIRED)
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise exceptions.ValidationError({"version": [MSG_VERSION_REQUIRED]}) from exc


def etag_for_version(version: int) -> str:
    return f'"{version}"'


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = MSG_VERSION_REQUIRED
    default_code = "precondition_required"


def parse_date_or_datetime(value: str) -> tuple[datetime, datetime]:
    """A date means that whole local day; a datetime means that instant. Returns [start, end)."""
    try:
        moment = parse_datetime(value) if "T" in value or " " in value else None
        day = parse_date(value) if moment is None else None
    except ValueError as exc:  # well-formed but impossible, such as month 13
        raise serializers.ValidationError(MSG_DATE_OR_DATETIME) from exc
    if moment is not None:
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment)
        _check_year(moment)
        return moment, moment
    if day is None:
        raise serializers.ValidationError(MSG_DATE_OR_DATETIME)
    start = timezone.make_aware(datetime.combine(day, time.min))
    _check_year(start)
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def exception_handler(exc, context):
    """Service errors become 4xx answers with a message per field; nothing else changes shape."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return Response({"detail": str(MSG_PAYLOAD_TOO_LARGE).format(limit=limit)}, status=413)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, ConcurrentEditError):
        return Response(
            {"detail": str(exc), "current_version": exc.current}, status=status.HTTP_412_PRECONDITION_FAILED
        )
    return drf_exception_handler(exc, context)


__all__ = [
    "BoundedDateTimeField",
    "FeaturePagination",
    "OpenApiTypes",
    "PeriodField",
    "StrictFeatureInputMixin",
    "WGS84GeometryField",
    "etag_for_version",
    "exception_handler",
    "expected_version",
    "parse_date_or_datetime",
]
