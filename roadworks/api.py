"""REST endpoints for roadworks and conflicts (/api/v1/roadworks/, /api/v1/conflicts/)."""

from __future__ import annotations

import django_filters
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers, viewsets
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from accounts.models import Organisation
from auman.api import PeriodField, StrictFeatureInputMixin, WGS84GeometryField
from auman.filters import CommaSeparatedChoiceFilter, SpatioTemporalFilterSet
from auman.viewsets import VersionedFeatureViewSet

from . import selectors, services
from .models import LINE_AND_AREA_TYPES, Conflict, ConflictStatus, Impact, Roadwork, RoadworkStatus, WorkKind


class RoadworkSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    geometry = WGS84GeometryField(allowed_types=LINE_AND_AREA_TYPES)
    period = PeriodField(help_text=_("When the works take up road space: start (lower) and end (upper)."))
    organisation = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all(), required=False)
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    impact = serializers.ChoiceField(choices=Impact.choices, read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:roadwork-detail")
    street_names = serializers.ListField(child=serializers.CharField(max_length=200), max_length=20, required=False)

    class Meta:
        model = Roadwork
        geo_field = "geometry"
        id_field = "id"
        fields = [
            "id",
            "url",
            "reference",
            "title",
            "description",
            "street_names",
            "geometry",
            "period",
            "status",
            "work_kind",
            "traffic_management",
            "impact",
            "direction",
            "lanes_affected",
            "excavation",
            "max_width_m",
            "max_height_m",
            "max_weight_t",
            "speed_limit_kmh",
            "contact",
            "organisation",
            "organisation_name",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "version", "impact"]
        extra_kwargs = {"reference": {"required": False}}

    def validate_reference(self, value: str) -> str:
        queryset = Roadwork.objects.filter(reference=value)
        if self.instance is not None:
            queryset = queryset.exclude(pk=self.instance.pk)
        if value and queryset.exists():
            raise serializers.ValidationError(_("This reference is already taken."))
        return value


class RoadworkFilter(SpatioTemporalFilterSet):
    status = CommaSeparatedChoiceFilter(choices=RoadworkStatus.choices, label=_("Status, comma-separated"))
    work_kind = CommaSeparatedChoiceFilter(choices=WorkKind.choices, label=_("Kind of works, comma-separated"))
    organisation = django_filters.NumberFilter(field_name="organisation_id")

    class Meta:
        model = Roadwork
        fields = ["bbox", "status", "active_on", "updated_since", "work_kind", "organisation"]


class RoadworkViewSet(VersionedFeatureViewSet):
    """Roadworks as GeoJSON Features in WGS84. Anonymous users see approved, running and recently completed works."""

    serializer_class = RoadworkSerializer
    filterset_class = RoadworkFilter

    def get_queryset(self):
        return selectors.roadworks_visible_to(self.request.user)

    def create_service(self, *, user, data):
        return services.roadwork_create(user=user, data=data)

    def update_service(self, *, user, pk, data, expected_version):
        return services.roadwork_update(user=user, roadwork_id=pk, data=data, expected_version=expected_version)


class ConflictSerializer(GeoFeatureModelSerializer):
    place = WGS84GeometryField(allowed_types=("MultiPolygon",), read_only=True)
    roadwork_b = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    overlap_period = PeriodField(read_only=True)
    roadwork_a_reference = serializers.CharField(source="roadwork_a.reference", read_only=True)
    roadwork_b_reference = serializers.CharField(source="roadwork_b.reference", read_only=True, allow_null=True)

    class Meta:
        model = Conflict
        geo_field = "place"
        fields = [
            "id",
            "rule",
            "severity",
            "roadwork_a",
            "roadwork_a_reference",
            "roadwork_b",
            "roadwork_b_reference",
            "layer",
            "layer_object_id",
            "overlap_period",
            "place",
            "status",
            "reason",
            "detected_at",
            "updated_at",
        ]
        read_only_fields = fields


class ConflictFilter(django_filters.FilterSet):
    status = CommaSeparatedChoiceFilter(choices=ConflictStatus.choices)
    rule = django_filters.CharFilter()
    roadwork = django_filters.UUIDFilter(method="filter_roadwork", label=_("Either side is this roadwork"))

    class Meta:
        model = Conflict
        fields = ["status", "rule", "roadwork"]

    def filter_roadwork(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(Q(roadwork_a_id=value) | Q(roadwork_b_id=value))


class ConflictViewSet(viewsets.ReadOnlyModelViewSet):
    """Conflicts between roadworks. The authority sees all; an applicant those touching its organisation's works."""

    serializer_class = ConflictSerializer
    filterset_class = ConflictFilter

    def get_queryset(self):
        return selectors.conflicts_visible_to(self.request.user)
