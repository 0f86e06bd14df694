"""REST endpoints for incidents (/api/v1/incidents/, their transition/ and transitions/) and /api/v1/accident-codes/."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from auman import history
from auman.api import (
    MSG_UNKNOWN_FIELD,
    BoundedDateTimeField,
    PeriodField,
    StrictFeatureInputMixin,
    WGS84GeometryField,
    etag_for_version,
    expected_version,
)
from auman.filters import CommaSeparatedChoiceFilter, SpatioTemporalFilterSet
from auman.history_api import HistoryEntrySerializer
from auman.viewsets import VersionedFeatureViewSet

from . import permissions as incident_permissions
from . import selectors, services, workflow
from .accidents import (
    CASUALTY_FIELDS,
    CODE_LISTS,
    MSG_CODE_REQUIRED,
    RoadUser,
    accident_codes,
    accident_representation,
    casualty_errors,
)
from .models import (
    Accident,
    AccidentCategory,
    AccidentKind,
    AccidentType,
    Incident,
    IncidentKind,
    IncidentStatus,
    LightCondition,
    RoadCondition,
)

MSG_SEND_OBJECT = _("Send a JSON object.")
MSG_NOT_ALLOWED_HISTORY = _("Only the police, the traffic control room and the permit authority see who changed what.")

# Labels the API writes beside the codes: a client may send them back unchanged (a GET result PUT back).
ACCIDENT_OUTPUT_ONLY = frozenset({*(f"{name}_label" for name in CODE_LISTS), "involves_labels"})


def _strict_to_internal_value(serializer: serializers.Serializer, data: Any, ignored: frozenset[str] = frozenset()):
    """Unknown members are errors, so a personal-data field (driver_name, plate ...) can never slip in unseen.

    Reported together with the other fields' errors, so one round trip shows every problem.
    """
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": [MSG_SEND_OBJECT]})
    errors = {name: [MSG_UNKNOWN_FIELD] for name in sorted(set(data) - set(serializer.fields) - ignored)}
    known = {name: value for name, value in data.items() if name in serializer.fields}
    try:
        result = serializers.Serializer.to_internal_value(serializer, known)
    except exceptions.ValidationError as exc:
        errors.update(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
    if errors:
        raise exceptions.ValidationError(errors)
    return result


class AccidentSerializer(serializers.Serializer):
    """The accident block of an incident on input. Always complete: it replaces the classification as a whole."""

    category = serializers.ChoiceField(
        choices=AccidentCategory.choices, error_messages={"required": MSG_CODE_REQUIRED, "null": MSG_CODE_REQUIRED}
    )
    kind = serializers.ChoiceField(
        choices=AccidentKind.choices, error_messages={"required": MSG_CODE_REQUIRED, "null": MSG_CODE_REQUIRED}
    )
    type = serializers.ChoiceField(
        choices=AccidentType.choices, error_messages={"required": MSG_CODE_REQUIRED, "null": MSG_CODE_REQUIRED}
    )
    light_condition = serializers.ChoiceField(choices=LightCondition.choices, required=False, allow_null=True)
    road_condition = serializers.ChoiceField(choices=RoadCondition.choices, required=False, allow_null=True)
    involves = serializers.ListField(
        child=serializers.ChoiceField(choices=RoadUser.choices), required=False, max_length=len(RoadUser)
    )
    killed = serializers.IntegerField(min_value=0, max_value=1000, required=False, allow_null=True)
    seriously_injured = serializers.IntegerField(min_value=0, max_value=1000, required=False, allow_null=True)
    slightly_injured = serializers.IntegerField(min_value=0, max_value=1000, required=False, allow_null=True)

    def to_internal_value(self, data):
        try:
            return _strict_to_internal_value(self, data, ACCIDENT_OUTPUT_ONLY)
        except exceptions.ValidationError as exc:
            # validate() does not run after field errors; name contradicting counts now all the same, so one
            # round trip shows every problem.
            raw = self._casualty_errors_of_raw(data) if isinstance(data, dict) else {}
            extra = {k: v for k, v in raw.items() if k not in exc.detail}
            raise exceptions.ValidationError({**exc.detail, **extra}) from exc

    def _casualty_errors_of_raw(self, data: dict[str, Any]) -> dict[str, list[Any]]:
        values: dict[str, Any] = {}
        for name in ("category", *CASUALTY_FIELDS):
            try:
                values[name] = self.fields[name].run_validation(data.get(name))
            except exceptions.ValidationError:
                if name == "category":
                    return {}
                values[name] = None
        return casualty_errors(values["category"], values)

    def validate(self, attrs):
        errors = casualty_errors(attrs["category"], attrs)
        if errors:
            raise serializers.ValidationError(errors)
        attrs["involves"] = sorted(set(attrs.get("involves") or ()))
        for name in CASUALTY_FIELDS:
            attrs[name] = attrs.get(name) or 0
        return attrs


@extend_schema_field(AccidentSerializer(allow_null=True))
class AccidentField(serializers.Field):
    """The incident's Accident row as the 'accident' property: codes with labels out, AccidentSerializer in."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance: Incident) -> Accident | None:
        try:
            return instance.accident
        except ObjectDoesNotExist:
            return None

    def to_representation(self, value: Accident) -> dict[str, Any]:
        return accident_representation(value)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        serializer = AccidentSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class IncidentSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    location = WGS84GeometryField(allowed_types=("Point",))
    affected_line = WGS84GeometryField(allowed_types=("LineString",), required=False, allow_null=True)
    period = PeriodField(read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:incident-detail")
    occurred_at = BoundedDateTimeField(required=False)
    reported_at = BoundedDateTimeField(required=False)
    expected_clearance_at = BoundedDateTimeField(required=False, allow_null=True)
    accident = AccidentField(
        help_text=_("Only for kind 'accident': the police classification (EUSKA / Unfallatlas codes).")
    )

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
            "accident",
            "created_at",
            "updated_at",
            "version",
        ]
        # The status and its times move only through the transition endpoint, which records who and when.
        read_only_fields = ["id", "created_at", "updated_at", "version", "period", *services.WORKFLOW_FIELDS]

    def _workflow_field_errors(self, properties: dict[str, Any]) -> dict[str, list[Any]]:
        """A status or status time that differs from the stored one is refused, never silently dropped.

        Sent back unchanged (a GET result edited and PUT back) they are fine, like every read-only field.
        """
        current = {
            "status": getattr(self.instance, "status", workflow.INITIAL_STATUS),
            "confirmed_at": getattr(self.instance, "confirmed_at", None),
            "cleared_at": getattr(self.instance, "cleared_at", None),
        }
        errors: dict[str, list[Any]] = {}
        for name in services.WORKFLOW_FIELDS:
            if name not in properties:
                continue
            value = properties[name]
            if name != "status" and value is not None:
                try:
                    value = serializers.DateTimeField().to_internal_value(value)
                except serializers.ValidationError:
                    value = object()  # unreadable: certainly not the stored time
            if value != current[name]:
                errors[name] = [services.MSG_STATUS_BY_TRANSITION]
        return errors

    def to_representation(self, instance):
        result = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not incident_permissions.can_see_accident_details(request.user):
            # The public learns that an accident blocks the road, not who was hurt or killed: casualty details
            # are police information until the police publish them.
            result["properties"].pop("accident", None)
        return result

    def to_internal_value(self, data):
        properties = data.get("properties") if isinstance(data, dict) else None
        errors = self._workflow_field_errors(properties) if isinstance(properties, dict) else {}
        try:
            result = super().to_internal_value(data)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({**errors, **exc.detail}) from exc
        if errors:
            raise exceptions.ValidationError(errors)
        return result

    def validate(self, attrs):
        occurred = attrs.get("occurred_at", getattr(self.instance, "occurred_at", None))
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        errors = {}
        value = attrs.get("expected_clearance_at")
        if value is not None and occurred is not None and value < occurred:
            errors["expected_clearance_at"] = [_("This time lies before the incident occurred.")]
        if attrs.get("accident") is not None and kind != IncidentKind.ACCIDENT:
            errors["accident"] = [services.MSG_ACCIDENT_DATA_NOT_ACCIDENT]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class IncidentTransitionSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=IncidentStatus.choices, help_text=_("The status to move to."))
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    version = serializers.IntegerField(
        required=False, help_text=_("The version you saw (or send If-Match); a stale one answers 412.")
    )
    at = BoundedDateTimeField(required=False, help_text=_("When it happened, if not now."))

    def to_internal_value(self, data):
        return _strict_to_internal_value(self, data)


class IncidentTransitionHistorySerializer(serializers.Serializer):
    from_status = serializers.CharField()
    to = serializers.CharField(source="to_status")
    at = serializers.DateTimeField()
    by = serializers.CharField(source="by.username", default=None)
    comment = serializers.CharField()

    def to_representation(self, instance):
        result = super().to_representation(instance)
        result["from"] = result.pop("from_status") or None
        return result


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
        return selectors.incidents_visible_to(self.request.user).select_related("accident")

    def create_service(self, *, user, data):
        return services.incident_create(user=user, data=data)

    def update_service(self, *, user, pk, data, expected_version):
        return services.incident_update(user=user, incident_id=pk, data=data, expected_version=expected_version)

    @extend_schema(
        request=IncidentTransitionSerializer,
        responses={
            200: IncidentSerializer,
            400: OpenApiResponse(description=_("Bad input, or a step that needs a comment got none.")),
            403: OpenApiResponse(description=_("Your role may not take this step.")),
            409: OpenApiResponse(description=_("The lifecycle has no such step from the current status.")),
            412: OpenApiResponse(description=_("The version is stale.")),
        },
    )
    @action(detail=True, methods=["post"], url_path="transition")
    def transition(self, request, pk=None):
        """Move the incident along its lifecycle: reported → confirmed → cleared, cancelled, reopened."""
        incident = self.get_object()
        serializer = IncidentTransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = expected_version(request, request.data)
        try:
            updated = services.incident_transition(
                user=request.user,
                incident_id=incident.pk,
                to_status=serializer.validated_data["to"],
                comment=serializer.validated_data["comment"],
                expected_version=version,
                at=serializer.validated_data.get("at"),
            )
        except ObjectDoesNotExist as exc:
            raise Http404 from exc
        except services.TransitionNotAllowed as exc:
            return Response({"to": [str(exc)], "allowed": exc.allowed}, status=status.HTTP_409_CONFLICT)
        output = self.get_serializer(self.get_queryset().get(pk=updated.pk))
        return Response(output.data, headers={"ETag": etag_for_version(updated.version)})

    @extend_schema(request=None, responses=IncidentTransitionHistorySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="transitions", filter_backends=[], pagination_class=None)
    def transitions(self, request, pk=None):
        """The incident's status history, oldest first: who took each step, when, and why. Staff only."""
        if not incident_permissions.can_see_incident_history(request.user):
            raise exceptions.PermissionDenied(MSG_NOT_ALLOWED_HISTORY)
        incident = self.get_object()
        rows = incident.transitions.select_related("by").order_by("at", "id")
        return Response(IncidentTransitionHistorySerializer(rows, many=True).data)

    @extend_schema(request=None, responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def changes(self, request, pk=None):
        """Every recorded change of the incident, its steps and its accident record, field by field. Staff only."""
        if not incident_permissions.can_see_incident_history(request.user):
            raise exceptions.PermissionDenied(MSG_NOT_ALLOWED_HISTORY)
        incident = self.get_object()
        return Response([entry.as_json() for entry in history.history_of_incident(incident.pk)])


class AccidentCodesViewSet(viewsets.ViewSet):
    """The accident code lists (EUSKA / Unfallatlas) with labels in the request's language. Public."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiResponse(description=_("Code lists: category, kind, type, ..."))})
    def list(self, request):
        response = Response(accident_codes())
        patch_vary_headers(response, ("Accept-Language",))
        patch_cache_control(response, public=True, max_age=3600)
        return response
