"""REST endpoints for incidents (/api/v1/incidents/)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from auman.api import BoundedDateTimeField, PeriodField, StrictFeatureInputMixin, WGS84GeometryField
from auman.filters import CommaSeparatedChoiceFilter, SpatioTemporalFilterSet
from auman.viewsets import VersionedFeatureViewSet

from . import selectors, services
from .models import Incident, IncidentKind, IncidentStatus


class IncidentSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    location = WGS84GeometryField(allowed_types=("Point",))
    affected_line = WGS84GeometryField(allowed_types=("LineString",), required=False, allow_null=True)
    period = PeriodField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:incident-detail")
    occurred_at = BoundedDateTimeField(required=False)
    reported_at = BoundedDateTimeField(required=False)
    confirmed_at = BoundedDateTimeField(required=False, allow_null=True)
    cleared_at = BoundedDateTimeField(required=False, allow_null=True)
    expected_clearance_at = BoundedDateTimeField(required=False, allow_null=True)

    class Meta:
        model = Incident
        geo_field = "location"
        id_field = "id"
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "description",
            "street_name",
            "location",
            "affected_line",
            "lanes_blocked",
            "direction",
            "occurred_at",
            "reported_at",
            "confirmed_at",
            "cleared_at",
            "expected_clearance_at",
            "period",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "version", "period"]

    def validate(self, attrs):
        occurred = attrs.get("occurred_at", getattr(self.instance, "occurred_at", None))
        errors = {}
        for name in ("cleared_at", "expected_clearance_at"):
            value = attrs.get(name)
            if value is not None and occurred is not None and value < occurred:
                errors[name] = [_("This time lies before the incident occurred.")]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class IncidentFilter(SpatioTemporalFilterSet):
    geometry_field = "location"
    status = CommaSeparatedChoiceFilter(choices=IncidentStatus.choices, label=_("Status, comma-separated"))
    kind = CommaSeparatedChoiceFilter(choices=IncidentKind.choices, label=_("Kind, comma-separated"))

    class Meta:
        model = Incident
        fields = ["bbox", "status", "active_on", "updated_since", "kind"]


class IncidentViewSet(VersionedFeatureViewSet):
    """Incidents as GeoJSON Features in WGS84. Anonymous users see active incidents only."""

    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter

    def get_queryset(self):
        return selectors.incidents_visible_to(self.request.user)

    def create_service(self, *, user, data):
        return services.incident_create(user=user, data=data)

    def update_service(self, *, user, pk, data, expected_version):
        return services.incident_update(user=user, incident_id=pk, data=data, expected_version=expected_version)
