"""GET /api/v1/external-items/: the items of external sources, a read-only GeoJSON layer in WGS84.

Staff (authority, police, control room) see every enabled source's items; everyone else only those of sources marked
public, so a list for an anonymous visitor of a city without public sources is simply empty."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from auman.api import PeriodField, WGS84GeometryField
from auman.filters import CommaSeparatedChoiceFilter, SpatioTemporalFilterSet

from . import selectors
from .models import ExternalItem, ItemKind

ALL_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon", "GeometryCollection")


class ExternalItemSerializer(GeoFeatureModelSerializer):
    geometry = WGS84GeometryField(allowed_types=ALL_TYPES, read_only=True)
    period = PeriodField(read_only=True)
    source = serializers.CharField(source="source.name", read_only=True)
    source_format = serializers.CharField(source="source.format", read_only=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    restriction_label = serializers.CharField(source="get_restriction_display", read_only=True)

    class Meta:
        model = ExternalItem
        geo_field = "geometry"
        id_field = "id"
        fields = [
            "id",
            "source",
            "source_format",
            "source_item_id",
            "kind",
            "kind_label",
            "title",
            "description",
            "period",
            "restriction",
            "restriction_label",
            "geometry",
            "properties",
            "updated_at",
        ]
        read_only_fields = fields


class ExternalItemFilter(SpatioTemporalFilterSet):
    source = django_filters.CharFilter(field_name="source__name", label=_("Source name"))
    kind = CommaSeparatedChoiceFilter(choices=ItemKind.choices, label=_("Kind, comma-separated"))

    class Meta:
        model = ExternalItem
        fields = ["bbox", "active_on", "updated_since", "source", "kind"]


class ExternalItemViewSet(viewsets.ReadOnlyModelViewSet):
    """Roadworks, closures and warnings read from external sources (Autobahn GmbH, the state, neighbouring
    cities): GeoJSON Features in WGS84, read-only. Filters: bbox, active_on, updated_since, source, kind."""

    serializer_class = ExternalItemSerializer
    filterset_class = ExternalItemFilter
    permission_classes = [AllowAny]  # visibility per item: selectors.external_items_visible_to

    def get_queryset(self):
        return selectors.external_items_visible_to(self.request.user)
