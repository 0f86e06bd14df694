"""REST endpoints of the street network (/api/v1/streets/): the nearest street to a point, streets by name.

Both are public: street names are OpenStreetMap data, and the police quick entry and the application form
use them before anyone has to think about logins.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from auman.geo import MSG_COORDINATES_RANGE
from traffic.feeds.http import serve_feed

from .selectors import districts_fingerprint, districts_geojson
from .streets import (
    NEAREST_DEFAULT_MAX_DISTANCE_M,
    NEAREST_MAX_DISTANCE_LIMIT_M,
    SEARCH_DEFAULT_LIMIT,
    SEARCH_MAX_LIMIT,
    street_nearest,
    streets_search,
)

MSG_COORDINATE_REQUIRED = _("Give the point as lon and lat, in degrees (WGS84).")
MSG_COORDINATE_INVALID = _("This is not a number of degrees; write decimals with a dot, e.g. 8.4660.")
MSG_MAX_DISTANCE = _("max_distance_m is a number of metres from 1 to {limit}.")
MSG_NO_STREET_NEAR = _("No street lies within {distance} m of this point.")
QUERY_MIN_LENGTH = 2
QUERY_MAX_LENGTH = 100
MSG_QUERY_TOO_SHORT = _("Type at least {min} characters of the street name.")
MSG_QUERY_TOO_LONG = _("A street name has at most {max} characters.")
MSG_LIMIT = _("limit is a whole number from 1 to {max}.")

# Streets change only when an import runs; a few minutes in a cache cost nothing and spare repeat lookups.
STREETS_MAX_AGE = 300


def _coordinate(minimum: float, maximum: float) -> serializers.FloatField:
    return serializers.FloatField(
        min_value=minimum,
        max_value=maximum,
        error_messages={
            "required": MSG_COORDINATE_REQUIRED,
            "null": MSG_COORDINATE_REQUIRED,
            "invalid": MSG_COORDINATE_INVALID,
            "max_string_length": MSG_COORDINATE_INVALID,
            "overflow": MSG_COORDINATE_INVALID,
            "min_value": MSG_COORDINATES_RANGE,
            "max_value": MSG_COORDINATES_RANGE,
        },
    )


class StreetNearestQuery(serializers.Serializer):
    lon = _coordinate(-180, 180)
    lat = _coordinate(-90, 90)
    max_distance_m = serializers.FloatField(
        required=False,
        default=NEAREST_DEFAULT_MAX_DISTANCE_M,
        min_value=1,
        max_value=NEAREST_MAX_DISTANCE_LIMIT_M,
        error_messages={
            key: format_lazy(MSG_MAX_DISTANCE, limit=int(NEAREST_MAX_DISTANCE_LIMIT_M))
            for key in ("invalid", "max_string_length", "overflow", "min_value", "max_value")
        },
    )


class StreetNearestSerializer(serializers.Serializer):
    name = serializers.CharField()
    distance_m = serializers.FloatField(help_text=_("Distance from the point to the street's centre line, metres."))


class StreetSearchQuery(serializers.Serializer):
    q = serializers.CharField(
        trim_whitespace=True,
        error_messages={
            key: format_lazy(MSG_QUERY_TOO_SHORT, min=QUERY_MIN_LENGTH) for key in ("required", "blank", "null")
        },
    )
    limit = serializers.IntegerField(
        required=False,
        default=SEARCH_DEFAULT_LIMIT,
        min_value=1,
        max_value=SEARCH_MAX_LIMIT,
        error_messages={
            key: format_lazy(MSG_LIMIT, max=SEARCH_MAX_LIMIT)
            for key in ("invalid", "max_string_length", "min_value", "max_value")
        },
    )

    def validate_q(self, value: str) -> str:
        if len(value) < QUERY_MIN_LENGTH:
            raise serializers.ValidationError(str(MSG_QUERY_TOO_SHORT).format(min=QUERY_MIN_LENGTH))
        if len(value) > QUERY_MAX_LENGTH:
            raise serializers.ValidationError(str(MSG_QUERY_TOO_LONG).format(max=QUERY_MAX_LENGTH))
        return value


_DETAIL_SCHEMA = {"type": "object", "properties": {"detail": {"type": "string"}}}
_ERRORS_SCHEMA = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
_STREET_COLLECTION_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "geometry", "bbox", "properties"],
                "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "geometry": {
                        "type": "object",
                        "description": "LineString or MultiLineString (WGS84): the street's segments, merged where "
                        "they join.",
                    },
                    "bbox": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 4,
                        "maxItems": 4,
                        "description": "min_lon, min_lat, max_lon, max_lat: zoom the map to this.",
                    },
                    "properties": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "point": {
                                "type": "array",
                                "items": {"type": "number"},
                                "description": "lon, lat of a point on the street, for a marker.",
                            },
                        },
                    },
                },
            },
        },
    },
}


def _cacheable(response: Response) -> Response:
    response["Cache-Control"] = f"public, max-age={STREETS_MAX_AGE}"
    return response


class StreetNearestView(APIView):
    """The street nearest to a point, for naming where an incident happened."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="streets_nearest",
        summary="Nearest street to a point",
        tags=["streets"],
        parameters=[
            OpenApiParameter("lon", OpenApiTypes.DOUBLE, required=True, description="Longitude, WGS84 degrees"),
            OpenApiParameter("lat", OpenApiTypes.DOUBLE, required=True, description="Latitude, WGS84 degrees"),
            OpenApiParameter(
                "max_distance_m",
                OpenApiTypes.DOUBLE,
                description=f"Search radius in metres (default {NEAREST_DEFAULT_MAX_DISTANCE_M:g}, "
                f"at most {NEAREST_MAX_DISTANCE_LIMIT_M:g})",
            ),
        ],
        responses={
            200: StreetNearestSerializer,
            400: OpenApiResponse(_ERRORS_SCHEMA, description="Missing, invalid or out-of-range parameters"),
            404: OpenApiResponse(_DETAIL_SCHEMA, description="No street within the search radius"),
        },
        examples=[OpenApiExample("Kaiserring", value={"name": "Kaiserring", "distance_m": 12.3}, response_only=True)],
    )
    def get(self, request: Request) -> Response:
        query = StreetNearestQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data: dict[str, Any] = query.validated_data
        nearest = street_nearest(point_wgs84=(data["lon"], data["lat"]), max_distance_m=data["max_distance_m"])
        if nearest is None:
            detail = str(MSG_NO_STREET_NEAR).format(distance=f"{data['max_distance_m']:g}")
            return _cacheable(Response({"detail": detail}, status=404))
        return _cacheable(Response({"name": nearest.name, "distance_m": round(nearest.distance_m, 1)}))


class StreetSearchView(APIView):
    """Streets whose name contains the query, one GeoJSON Feature per name, for a search box that zooms the map."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="streets_search",
        summary="Search streets by name",
        tags=["streets"],
        parameters=[
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                required=True,
                description=f"Part of the street name, at least {QUERY_MIN_LENGTH} characters. Case does not "
                "matter; ss matches ß, ae/oe/ue match ä/ö/ü, 'str.' matches 'straße', spaces and hyphens are "
                "ignored. Names starting with it come first.",
            ),
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"Most names (default {SEARCH_DEFAULT_LIMIT}, up to {SEARCH_MAX_LIMIT})",
            ),
        ],
        responses={
            200: OpenApiResponse(_STREET_COLLECTION_SCHEMA, description="GeoJSON FeatureCollection (WGS84)"),
            400: OpenApiResponse(_ERRORS_SCHEMA, description="q missing, too short or too long; bad limit"),
        },
    )
    def get(self, request: Request) -> Response:
        query = StreetSearchQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        matches = streets_search(query=query.validated_data["q"], limit=query.validated_data["limit"])
        features = [
            {
                "type": "Feature",
                "geometry": match.geometry,
                "bbox": list(match.bbox),
                "properties": {"name": match.name, "point": list(match.point)},
            }
            for match in matches
        ]
        return _cacheable(Response({"type": "FeatureCollection", "features": features}))


_DISTRICT_COLLECTION_SCHEMA = {
    "type": "object",
    "required": ["type", "features"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type", "id", "geometry", "properties"],
                "properties": {
                    "type": {"type": "string", "enum": ["Feature"]},
                    "id": {"type": "integer", "description": "The value of the district= filter elsewhere."},
                    "geometry": {"type": "object", "description": "MultiPolygon (WGS84), simplified by 5 m."},
                    "properties": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer"},
                            "name": {"type": "string"},
                            "number": {"type": "string", "description": "The official number, or empty."},
                        },
                    },
                },
            },
        },
    },
}


class DistrictListView(APIView):
    """The city's districts (Stadtteile) for the map's district filter, the tiles and the subscriptions."""

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="districts_list",
        summary="Districts of the city",
        tags=["districts"],
        responses={
            (200, "application/geo+json"): OpenApiResponse(
                _DISTRICT_COLLECTION_SCHEMA, description="GeoJSON FeatureCollection"
            )
        },
    )
    def get(self, request: Request) -> HttpResponse:
        # Built once per change of the table and shared through the cache, answered with ETag and 304.
        return serve_feed(
            request,
            name="districts",
            fingerprint=districts_fingerprint(),
            build=lambda now: districts_geojson(),
            content_type="application/geo+json",
        )
