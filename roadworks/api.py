"""REST endpoints for roadworks and conflicts (/api/v1/roadworks/, /api/v1/conflicts/).

Besides the resource itself a roadwork has: /transition/ (the workflow's steps), /history/, /report/
(actual start and end) and /attachments/ (upload, list, download). A conflict has /status/.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from accounts.models import Organisation
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

from . import permissions, rules, selectors, services, workflow
from .models import (
    DETOUR_TYPES,
    LINE_AND_AREA_TYPES,
    PEDESTRIAN_ROUTE_TYPES,
    Attachment,
    AttachmentKind,
    Conflict,
    ConflictStatus,
    Impact,
    Roadwork,
    RoadworkCategory,
    RoadworkStatus,
    RoadworkTransition,
    WorkKind,
)

MSG_JSON_OBJECT = _("Send a JSON object.")
MSG_DETOUR_OBJECT = _("Each detour is an object with 'name', 'geometry' and optionally 'description' and 'period'.")
MSG_WEEKDAYS_TWICE = _("Each weekday may appear once.")
MSG_INTERNALS_NOT_ALLOWED = _("Only the authority and the applicant organisation see this.")
MSG_OVERDUE_AUTHORITY_ONLY = _("Only the permit authority may list overdue decisions.")
MSG_FILE_MISSING = _("The file of this attachment is missing on the server.")

MAX_DETOURS = 20
# Multipart framing around the file: a body larger than the file limit plus this is refused unread.
MULTIPART_OVERHEAD_BYTES = 64 * 1024

# Process details and business contacts: shown to the authority, police, control room and the applicant.
INTERNAL_PROPERTIES = (
    "contact_name",
    "contact_phone",
    "contact_email",
    "submitted_at",
    "decision_due",
    "decided_at",
    "decision_overdue",
)


def strict_input(serializer_class: type[serializers.Serializer], data: Any, *, allowed: tuple[str, ...] = ()) -> dict:
    """Validate a small JSON body; unknown members are errors, as everywhere in this API."""
    if not isinstance(data, dict):
        raise exceptions.ValidationError({"non_field_errors": [MSG_JSON_OBJECT]})
    serializer = serializer_class(data=data)
    known = set(serializer.fields) | set(allowed)
    errors: dict[str, Any] = {name: [MSG_UNKNOWN_FIELD] for name in sorted(set(data) - known)}
    if not serializer.is_valid():
        errors.update(serializer.errors)
    if errors:
        raise exceptions.ValidationError(errors)
    return serializer.validated_data


def state_conflict(exc: workflow.TransitionError) -> Response:
    body: dict[str, Any] = {"detail": str(exc)}
    if exc.conflicts:
        body["conflicts"] = exc.conflicts
    return Response(body, status=status.HTTP_409_CONFLICT)


def _user(request) -> Any:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


@extend_schema_field({"type": "object", "description": "GeoJSON LineString or MultiLineString, WGS84 (lon/lat)."})
class LineGeometryField(WGS84GeometryField):
    """A nested GeoJSON line; named for the schema, which cannot describe the geometry field itself here."""


class DetourSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        required=False,
        help_text=_(
            "Optional when writing: the id of one of this roadwork's detours changes that detour in place, so it "
            "keeps its id in the feeds. Without it (or with another id) the detour is new, unless it is sent "
            "unchanged."
        ),
    )
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    geometry = LineGeometryField(allowed_types=DETOUR_TYPES)
    period = PeriodField(
        required=False,
        allow_null=True,
        default=None,
        help_text=_("When the detour is signposted, within the roadwork's period; empty: the whole period."),
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise exceptions.ValidationError({"non_field_errors": [MSG_DETOUR_OBJECT]})
        errors: dict[str, Any] = {name: [MSG_UNKNOWN_FIELD] for name in sorted(set(data) - set(self.fields))}
        writable = {name: value for name, value in data.items() if name in self.fields}
        try:
            result = super().to_internal_value(writable)
        except exceptions.ValidationError as exc:
            errors.update(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
        if errors:
            raise exceptions.ValidationError(errors)
        return result


class RoadworkSerializer(StrictFeatureInputMixin, GeoFeatureModelSerializer):
    geometry = WGS84GeometryField(allowed_types=LINE_AND_AREA_TYPES)
    period = PeriodField(help_text=_("When the works take up road space: start (lower) and end (upper)."))
    organisation = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all(), required=False)
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    impact = serializers.ChoiceField(choices=Impact.choices, read_only=True)
    url = serializers.HyperlinkedIdentityField(view_name="api:roadwork-detail")
    street_names = serializers.ListField(child=serializers.CharField(max_length=200), max_length=20, required=False)
    status = serializers.ChoiceField(
        choices=RoadworkStatus.choices,
        required=False,
        help_text=_(
            "On creation: draft (default) or submitted; emergency works are in_progress. "
            "Afterwards read-only: use /transition/."
        ),
    )
    is_emergency = serializers.BooleanField(
        required=False, help_text=_("Emergency works: reported while running, decided afterwards. Set on creation.")
    )
    pedestrian_route = WGS84GeometryField(
        allowed_types=PEDESTRIAN_ROUTE_TYPES,
        required=False,
        allow_null=True,
        help_text=_("With a footway closure: the route pedestrians take (GeoJSON line, WGS84)."),
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6),
        max_length=7,
        required=False,
        help_text=_("Working weekdays, 0 = Monday ... 6 = Sunday; empty: every day."),
    )
    detours = DetourSerializer(many=True, required=False, max_length=MAX_DETOURS)
    category = serializers.ChoiceField(choices=RoadworkCategory.choices, read_only=True)
    decision_overdue = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField(
        help_text=_("The statuses this user may move the work to now (POST /transition/ with 'to').")
    )

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
            "purpose",
            "street_names",
            "geometry",
            "period",
            "daily_start",
            "daily_end",
            "weekdays",
            "status",
            "is_emergency",
            "category",
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
            "pedestrian_route",
            "detours",
            "contact_name",
            "contact_phone",
            "contact_email",
            "organisation",
            "organisation_name",
            "submitted_at",
            "decision_due",
            "decision_overdue",
            "decided_at",
            "actual_start",
            "actual_end",
            "allowed_transitions",
            "created_at",
            "updated_at",
            "version",
        ]
        read_only_fields = [
            "id",
            "created_at",
            "updated_at",
            "version",
            "impact",
            "category",
            "submitted_at",
            "decision_due",
            "decided_at",
            "actual_start",
            "actual_end",
        ]
        extra_kwargs = {"reference": {"required": False}}

    def validate_reference(self, value: str) -> str:
        queryset = Roadwork.objects.filter(reference=value)
        if self.instance is not None:
            queryset = queryset.exclude(pk=self.instance.pk)
        if value and queryset.exists():
            raise serializers.ValidationError(_("This reference is already taken."))
        return value

    def validate_weekdays(self, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError(MSG_WEEKDAYS_TWICE)
        return sorted(value)

    def get_decision_overdue(self, obj: Roadwork) -> bool:
        return workflow.is_overdue(obj, timezone.localdate())

    def get_allowed_transitions(self, obj: Roadwork) -> list[str]:
        user = _user(self.context.get("request"))
        if user is None:
            return []
        return [t.to for t in workflow.available(user=user, roadwork=obj, now=timezone.now())]

    def to_representation(self, instance: Roadwork) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not permissions.can_see_internals(_user(self.context.get("request")), instance):
            for name in INTERNAL_PROPERTIES:
                data["properties"].pop(name, None)
        return data


class RoadworkFilter(SpatioTemporalFilterSet):
    status = CommaSeparatedChoiceFilter(choices=RoadworkStatus.choices, label=_("Status, comma-separated"))
    work_kind = CommaSeparatedChoiceFilter(choices=WorkKind.choices, label=_("Kind of works, comma-separated"))
    category = CommaSeparatedChoiceFilter(choices=RoadworkCategory.choices, label=_("Category, comma-separated"))
    organisation = django_filters.NumberFilter(field_name="organisation_id")
    is_emergency = django_filters.BooleanFilter(label=_("Emergency works"))
    overdue = django_filters.BooleanFilter(
        method="filter_overdue", label=_("Awaiting a decision past its due day (authority only)")
    )

    class Meta:
        model = Roadwork
        fields = [
            "bbox",
            "status",
            "active_on",
            "updated_since",
            "work_kind",
            "category",
            "organisation",
            "is_emergency",
            "overdue",
        ]

    def filter_overdue(self, queryset, name, value):
        if not permissions.can_list_overdue(_user(self.request)):
            raise exceptions.PermissionDenied(MSG_OVERDUE_AUTHORITY_ONLY)
        overdue = workflow.overdue_q(timezone.localdate())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class TransitionInputSerializer(serializers.Serializer):
    to = serializers.CharField(max_length=32, help_text=_("The status to move to."))
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    override_reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text=_("Approving despite open error-level conflicts: why. The conflicts become accepted."),
    )
    version = serializers.IntegerField(required=False)


class ReportInputSerializer(serializers.Serializer):
    actual_start = BoundedDateTimeField(required=False)
    actual_end = BoundedDateTimeField(required=False)
    version = serializers.IntegerField(required=False)


class TransitionSerializer(serializers.ModelSerializer):
    action_label = serializers.SerializerMethodField()
    by = serializers.SerializerMethodField(help_text=_("User name; null: the system."))
    by_organisation = serializers.SerializerMethodField()

    class Meta:
        model = RoadworkTransition
        fields = [
            "at",
            "action",
            "action_label",
            "from_status",
            "to_status",
            "by",
            "by_organisation",
            "comment",
            "override",
        ]

    def get_action_label(self, obj: RoadworkTransition) -> str:
        return str(workflow.label_of(obj.action))

    def get_by(self, obj: RoadworkTransition) -> str | None:
        return obj.by.get_username() if obj.by else None

    def get_by_organisation(self, obj: RoadworkTransition) -> str | None:
        return obj.by.organisation.name if obj.by and obj.by.organisation else None


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    uploaded_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Attachment
        fields = ["id", "kind", "original_name", "content_type", "size", "uploaded_by", "uploaded_at", "url"]

    def get_url(self, obj: Attachment) -> str:
        path = f"/api/v1/roadworks/{obj.roadwork_id}/attachments/{obj.pk}/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class RoadworkViewSet(VersionedFeatureViewSet):
    """Roadworks as GeoJSON Features in WGS84. Anonymous users see approved, running and recently completed works."""

    serializer_class = RoadworkSerializer
    filterset_class = RoadworkFilter

    def get_queryset(self):
        return selectors.roadworks_visible_to(self.request.user).prefetch_related("detours")

    def create_service(self, *, user, data):
        return services.roadwork_create(user=user, data=data)

    def update_service(self, *, user, pk, data, expected_version):
        return services.roadwork_update(user=user, roadwork_id=pk, data=data, expected_version=expected_version)

    def _feature(self, roadwork: Roadwork) -> Response:
        output = self.get_serializer(self.get_queryset().get(pk=roadwork.pk))
        return Response(output.data, headers={"ETag": etag_for_version(roadwork.version)})

    def _check_internals(self, roadwork: Roadwork) -> None:
        if not permissions.can_see_internals(_user(self.request), roadwork):
            if _user(self.request) is None:
                raise exceptions.NotAuthenticated()
            raise exceptions.PermissionDenied(MSG_INTERNALS_NOT_ALLOWED)

    @extend_schema(request=TransitionInputSerializer, responses=RoadworkSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Take a workflow step: {"to": status, "comment", "override_reason", "version"}. 409 when the state forbids."""
        roadwork = self.get_object()
        body = strict_input(TransitionInputSerializer, request.data)
        version = expected_version(request, request.data)
        try:
            updated = services.roadwork_transition(
                user=request.user,
                roadwork_id=roadwork.pk,
                to_status=body["to"],
                comment=body["comment"],
                override_reason=body["override_reason"],
                expected_version=version,
            )
        except workflow.TransitionError as exc:
            return state_conflict(exc)
        return self._feature(updated)

    @extend_schema(request=None, responses=TransitionSerializer(many=True))
    # Not paginated (the whole history at once): pagination_class=None keeps the schema telling the truth.
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        """Every step of the application with who, when and the comment, oldest first."""
        roadwork = self.get_object()
        self._check_internals(roadwork)
        rows = selectors.roadwork_history(roadwork)
        return Response(TransitionSerializer(rows, many=True).data)

    @extend_schema(request=None, responses=HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def changes(self, request, pk=None):
        """Every recorded change of the work, its steps and its conflicts, field by field, oldest first.

        Written by database triggers and never editable (auman.history)."""
        roadwork = self.get_object()
        self._check_internals(roadwork)
        return Response([entry.as_json() for entry in history.history_of_roadwork(roadwork.pk, user=_user(request))])

    @extend_schema(request=ReportInputSerializer, responses=RoadworkSerializer)
    @action(detail=True, methods=["post"])
    def report(self, request, pk=None):
        """Report the actual start and/or end; approved works go in progress, running works are completed."""
        roadwork = self.get_object()
        body = strict_input(ReportInputSerializer, request.data)
        version = expected_version(request, request.data)
        try:
            updated = services.roadwork_report(
                user=request.user,
                roadwork_id=roadwork.pk,
                actual_start=body.get("actual_start"),
                actual_end=body.get("actual_end"),
                expected_version=version,
            )
        except workflow.TransitionError as exc:
            return state_conflict(exc)
        return self._feature(updated)

    @extend_schema(request={"multipart/form-data": {"type": "object"}}, responses=AttachmentSerializer(many=True))
    @action(
        detail=True,
        methods=["get", "post"],
        parser_classes=[MultiPartParser],
        pagination_class=None,
        filter_backends=[],
    )
    def attachments(self, request, pk=None):
        """GET: the files of this application. POST (multipart/form-data): 'file' (PDF, PNG, JPEG) and 'kind'."""
        roadwork = self.get_object()
        if request.method == "GET":
            self._check_internals(roadwork)
            context = self.get_serializer_context()
            return Response(AttachmentSerializer(roadwork.attachments.all(), many=True, context=context).data)
        if not permissions.can_add_attachment(request.user, roadwork):
            raise exceptions.PermissionDenied(services.MSG_NOT_ALLOWED_ATTACH)
        limit = settings.AUMAN_MAX_ATTACHMENT_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + MULTIPART_OVERHEAD_BYTES:
            # Refused before the body is read.
            return Response({"detail": str(services.MSG_FILE_TOO_LARGE).format(limit=limit)}, status=413)
        upload = request.FILES.get("file")
        unknown = sorted(set(request.data) - {"file", "kind"})
        errors: dict[str, Any] = {name: [MSG_UNKNOWN_FIELD] for name in unknown}
        if upload is None:
            errors["file"] = [services.MSG_FILE_REQUIRED]
        if errors:
            raise exceptions.ValidationError(errors)
        try:
            attachment = services.roadwork_attachment_add(
                user=request.user,
                roadwork_id=roadwork.pk,
                uploaded_file=upload,
                kind=request.data.get("kind") or AttachmentKind.OTHER,
            )
        except services.AttachmentTooLarge as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except services.AttachmentTypeNotAllowed as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        data = AttachmentSerializer(attachment, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["url"]})

    @extend_schema(request=None, responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"attachments/(?P<attachment_id>[0-9a-fA-F-]{36})")
    def attachment(self, request, pk=None, attachment_id=None):
        """Download one file, as an attachment with its original name."""
        roadwork = self.get_object()
        self._check_internals(roadwork)
        attachment = get_object_or_404(roadwork.attachments.all(), pk=attachment_id)
        try:
            handle = attachment.file.open("rb")
        except FileNotFoundError as exc:
            raise Http404(MSG_FILE_MISSING) from exc
        return FileResponse(
            handle, as_attachment=True, filename=attachment.original_name, content_type=attachment.content_type
        )


class ConflictSerializer(GeoFeatureModelSerializer):
    place = WGS84GeometryField(allowed_types=("MultiPolygon",), read_only=True)
    roadwork_b = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    overlap_period = PeriodField(read_only=True)
    roadwork_a_reference = serializers.CharField(source="roadwork_a.reference", read_only=True)
    roadwork_b_reference = serializers.CharField(source="roadwork_b.reference", read_only=True, allow_null=True)
    status_changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    # For people (the map's details, lists): the rule's name and the choices' labels in the request's language.
    rule_label = serializers.SerializerMethodField()
    severity_label = serializers.CharField(source="get_severity_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    layer_label = serializers.CharField(source="get_layer_display", read_only=True)

    class Meta:
        model = Conflict
        geo_field = "place"
        fields = [
            "id",
            "rule",
            "rule_label",
            "severity",
            "severity_label",
            "roadwork_a",
            "roadwork_a_reference",
            "roadwork_b",
            "roadwork_b_reference",
            "layer",
            "layer_label",
            "layer_object_id",
            "overlap_period",
            "place",
            "status",
            "status_label",
            "reason",
            "status_changed_at",
            "status_changed_by",
            "detected_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_rule_label(self, conflict: Conflict) -> str:
        try:
            return str(rules.get(conflict.rule).name)
        except KeyError:  # a rule removed from the catalogue since: its code is all there is
            return conflict.rule


class ConflictStatusInputSerializer(serializers.Serializer):
    status = serializers.CharField(max_length=16, help_text=_("acknowledged, accepted (with reason) or open."))
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class ConflictFilter(django_filters.FilterSet):
    status = CommaSeparatedChoiceFilter(choices=ConflictStatus.choices)
    rule = django_filters.CharFilter()
    roadwork = django_filters.UUIDFilter(method="filter_roadwork", label=_("Either side is this roadwork"))

    class Meta:
        model = Conflict
        fields = ["status", "rule", "roadwork"]

    def filter_roadwork(self, queryset, name, value):
        return queryset.filter(Q(roadwork_a_id=value) | Q(roadwork_b_id=value))


class ConflictViewSet(viewsets.ReadOnlyModelViewSet):
    """Conflicts between roadworks. The authority sees all; an applicant those touching its organisation's works."""

    serializer_class = ConflictSerializer
    filterset_class = ConflictFilter

    def get_queryset(self):
        return selectors.conflicts_visible_to(self.request.user).select_related("status_changed_by")

    @extend_schema(request=ConflictStatusInputSerializer, responses=ConflictSerializer)
    @action(detail=True, methods=["post"], url_path="status")
    def set_status(self, request, pk=None):
        """Acknowledge (authority, applicants of either side), accept with a reason or reopen (authority)."""
        conflict = self.get_object()
        body = strict_input(ConflictStatusInputSerializer, request.data)
        try:
            services.conflict_set_status(
                user=request.user, conflict_id=conflict.pk, status=body["status"], reason=body["reason"]
            )
        except workflow.TransitionError as exc:
            return state_conflict(exc)
        return Response(self.get_serializer(self.get_queryset().get(pk=conflict.pk)).data)
