"""REST endpoints for the coordination rules' layers and the rule catalogue.

/api/v1/corridors/, /api/v1/moratoria/, /api/v1/events/: GeoJSON Features in WGS84, read by staff and applicants,
written by the permit authority (create, update with the version as everywhere, delete). Every write re-runs the
layer's rule over all roadworks after it commits. /api/v1/conflict-rules/: the catalogue with its effective
parameters.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import ObjectDoesNotExist
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework import permissions as drf_permissions
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from auman.api import PeriodField, StrictFeatureInputMixin, WGS84GeometryField, parse_date_or_datetime
from auman.filters import SpatioTemporalFilterSet
from auman.viewsets import VersionedFeatureViewSet

from . import permissions, rules, services
from .models import MORATORIUM_MAX_YEARS, Corridor, Event, MoratoriumArea

MSG_LAYERS_NOT_ALLOWED = _(
    "Corridors, moratoria and events are for the authority, police, control room and applicants."
)
MSG_LAYERS_AUTHORITY_ONLY = _("Only the permit authority records corridors, moratoria and events.")


class LayerPermission(drf_permissions.BasePermission):
    """Read: staff and applicants. Write: the permit authority (services check it again)."""

    def has_permission(self, request, view) -> bool:
        if request.method in drf_permissions.SAFE_METHODS:
            self.message = MSG_LAYERS_NOT_ALLOWED
            return permissions.can_view_layers(request.user)
        self.message = MSG_LAYERS_AUTHORITY_ONLY
        return permissions.can_manage_layers(request.user)


class CorridorSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    geometry = WGS84GeometryField(
        allowed_types=("LineString", "MultiLineString"),
        help_text=_("The corridor's roads (centre lines), GeoJSON LineString or MultiLineString, WGS84."),
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:corridor-detail")
    max_simultaneous = serializers.IntegerField(
        min_value=1,
        max_value=1000,
        required=False,
        help_text=_("How many works may close or restrict the corridor at the same time (rule C4)."),
    )

    class Meta:
        model = Corridor
        geo_field = "geometry"
        id_field = "id"
        fields = [
            "id",
            "url",
            "name",
            "description",
            "geometry",
            "max_simultaneous",
            "active",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "version"]


class MoratoriumSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    geometry = WGS84GeometryField(
        allowed_types=("Polygon", "MultiPolygon"),
        help_text=_("The resurfaced area, GeoJSON Polygon or MultiPolygon, WGS84."),
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:moratorium-detail")
    years = serializers.IntegerField(
        min_value=1,
        max_value=MORATORIUM_MAX_YEARS,
        required=False,
        help_text=_("How long no one may dig there, from resurfaced_on; default AUMAN_MORATORIUM_YEARS."),
    )
    ends_on = serializers.DateField(read_only=True, help_text=_("The first day without the moratorium."))

    class Meta:
        model = MoratoriumArea
        geo_field = "geometry"
        id_field = "id"
        fields = [
            "id",
            "url",
            "name",
            "geometry",
            "resurfaced_on",
            "years",
            "ends_on",
            "reason",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["id", "ends_on", "created_at", "updated_at", "version"]


class EventSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    area = WGS84GeometryField(
        allowed_types=("Polygon", "MultiPolygon"),
        help_text=_("The event's area, GeoJSON Polygon or MultiPolygon, WGS84."),
    )
    period = PeriodField(help_text=_("When the event takes place (including set-up and clearing away)."))
    url = serializers.HyperlinkedIdentityField(view_name="api:event-detail")
    expected_visitors = serializers.IntegerField(min_value=0, required=False, allow_null=True)

    class Meta:
        model = Event
        geo_field = "area"
        id_field = "id"
        fields = [
            "id",
            "url",
            "name",
            "description",
            "area",
            "period",
            "expected_visitors",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = ["id", "created_at", "updated_at", "version"]


class CorridorFilter(SpatioTemporalFilterSet):
    class Meta:
        model = Corridor
        fields = ["bbox", "updated_since", "active"]


class MoratoriumFilter(SpatioTemporalFilterSet):
    in_force_on = django_filters.CharFilter(method="filter_in_force_on", label=_("In force on a date"))

    class Meta:
        model = MoratoriumArea
        fields = ["bbox", "updated_since", "in_force_on"]

    def filter_in_force_on(self, queryset, name, value):
        try:
            start, _end = parse_date_or_datetime(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"in_force_on": exc.detail}) from exc
        day = start.date()
        ends = RawSQL("(resurfaced_on + make_interval(years => years))::date", [])
        return queryset.filter(resurfaced_on__lte=day).alias(ends=ends).filter(ends__gt=day)


class EventFilter(SpatioTemporalFilterSet):
    geometry_field = "area"

    class Meta:
        model = Event
        fields = ["bbox", "active_on", "updated_since"]


class LayerViewSet(mixins.DestroyModelMixin, VersionedFeatureViewSet):
    """A rule layer: list, create, retrieve, update (version required), delete; writes by the authority."""

    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]
    permission_classes = [LayerPermission]
    model: type

    def get_queryset(self):
        return self.model.objects.all()

    def create_service(self, *, user, data):
        return services.layer_item_create(user=user, model=self.model, data=data)

    def update_service(self, *, user, pk, data, expected_version):
        return services.layer_item_update(
            user=user, model=self.model, item_id=pk, data=data, expected_version=expected_version
        )

    def destroy(self, request, *args, **kwargs):
        instance = self.get_object()
        try:
            services.layer_item_delete(user=request.user, model=self.model, item_id=instance.pk)
        except ObjectDoesNotExist as exc:
            raise Http404 from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class CorridorViewSet(LayerViewSet):
    """Corridors (rule C4): named groups of roads and how many works may restrict them at once."""

    model = Corridor
    serializer_class = CorridorSerializer
    filterset_class = CorridorFilter


class MoratoriumViewSet(LayerViewSet):
    """Moratorium areas (Aufgrabeverbot, rule C5): resurfaced areas where no one may dig for some years."""

    model = MoratoriumArea
    serializer_class = MoratoriumSerializer
    filterset_class = MoratoriumFilter


class EventViewSet(LayerViewSet):
    """Events (rule C6): an area and a period; works there at that time collide with them."""

    model = Event
    serializer_class = EventSerializer
    filterset_class = EventFilter


class ConflictRuleSerializer(serializers.Serializer):
    """One rule of the catalogue (documentation of the answer's shape for the OpenAPI schema)."""

    code = serializers.CharField()
    name = serializers.CharField()
    severity = serializers.CharField()
    layer = serializers.CharField(allow_null=True)
    parameters = serializers.DictField()


@extend_schema(responses=ConflictRuleSerializer(many=True))
class ConflictRuleViewSet(viewsets.ViewSet):
    """The coordination rules: code, name, severity, the layer of their other side, effective parameters."""

    permission_classes = [drf_permissions.IsAuthenticated]

    def list(self, request):
        if not permissions.can_view_layers(request.user):
            raise PermissionDenied(MSG_LAYERS_NOT_ALLOWED)
        data: list[dict[str, Any]] = [
            {
                "code": info.code,
                "name": info.name,
                "severity": info.severity,
                "layer": info.layer or None,
                "parameters": info.parameters,
            }
            for info in rules.describe()
        ]
        return Response(data)
