"""REST endpoint for accident black spots (/api/v1/black-spots/): read-only GeoJSON Features in WGS84.

Staff only, unless the city publishes its black spots (AUMAN_BLACKSPOTS_PUBLIC).
"""

from __future__ import annotations

import django_filters
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import permissions as drf_permissions
from rest_framework import serializers, viewsets
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from auman.api import PeriodField, WGS84GeometryField
from auman.filters import parse_bbox

from . import blackspot_selectors as selectors
from . import permissions
from .blackspots import rule_labels
from .models import AccidentType, BlackSpot

MSG_BLACK_SPOTS_STAFF_ONLY = _("Black spots are for the accident commission: the authority, police and control room.")


class CanViewBlackSpots(drf_permissions.BasePermission):
    message = MSG_BLACK_SPOTS_STAFF_ONLY

    def has_permission(self, request, view) -> bool:
        return permissions.can_view_black_spots(request.user)


class BlackSpotSerializer(GeoFeatureModelSerializer):
    area = WGS84GeometryField(allowed_types=("Polygon",), read_only=True)
    centre = WGS84GeometryField(source="location", allowed_types=("Point",), read_only=True)
    period = PeriodField(read_only=True)
    rule_label = serializers.SerializerMethodField()
    accident_type_label = serializers.SerializerMethodField()
    url = serializers.HyperlinkedIdentityField(view_name="api:black-spot-detail")

    class Meta:
        model = BlackSpot
        geo_field = "area"
        id_field = "id"
        fields = [
            "id",
            "url",
            "key",
            "rule",
            "rule_label",
            "accident_type",
            "accident_type_label",
            "accident_count",
            "score",
            "period",
            "area",
            "centre",
            "statistics",
            "computed_at",
        ]
        read_only_fields = fields

    def get_rule_label(self, spot: BlackSpot) -> str:
        if "rule_labels" not in self.context:
            self.context["rule_labels"] = rule_labels()
        return self.context["rule_labels"].get(spot.rule, spot.rule)

    def get_accident_type_label(self, spot: BlackSpot) -> str | None:
        return None if spot.accident_type is None else str(AccidentType(spot.accident_type).label)


class BlackSpotFilter(django_filters.FilterSet):
    bbox = django_filters.CharFilter(
        method="filter_bbox", label=_("Bounding box min_lon,min_lat,max_lon,max_lat (WGS84)")
    )
    rule = django_filters.CharFilter(label=_("Rule code, such as UHS-1J"))
    sort = django_filters.ChoiceFilter(
        method="filter_sort",
        choices=[(key, key) for key in selectors.SORTS],
        label=_("Order: -score (default), score, -count, count"),
    )

    class Meta:
        model = BlackSpot
        fields = ["bbox", "rule", "sort"]

    def filter_bbox(self, queryset, name, value):
        try:
            polygon = parse_bbox(value)
        except ValidationError as exc:
            raise serializers.ValidationError({"bbox": exc.messages}) from exc
        return queryset.filter(area__intersects=polygon)

    def filter_sort(self, queryset, name, value):
        return queryset.order_by(*selectors.SORTS[value], "key")


class BlackSpotViewSet(viewsets.ReadOnlyModelViewSet):
    """Accident black spots (Unfallhäufungsstellen): area as geometry, centre, rule, counts and statistics."""

    serializer_class = BlackSpotSerializer
    filterset_class = BlackSpotFilter
    permission_classes = [CanViewBlackSpots]

    def get_queryset(self):
        return selectors.black_spots_list()
