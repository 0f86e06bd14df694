"""GET /api/v1/export/<layer>.<format>: a layer as GeoPackage, zipped Shapefile, GeoJSON or CSV, for GIS users;
POST /api/v1/roadworks/import/: roadworks from a GeoJSON or GeoPackage file, all or nothing; a large file becomes a
job (202), GET /api/v1/roadworks/import/<id>/ follows it.

The rows are those the REST API shows the caller (token or session), narrowed by the map's filters.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organisation
from auman.api import MSG_UNKNOWN_FIELD

from .export import FORMATS, export_filename, export_layer
from .layers import FILTER_PARAMETERS, LAYERS, MSG_LAYER_NOT_ALLOWED, MSG_UNKNOWN_LAYER, filtered_rows
from .models import ImportJob, ImportJobStatus
from .services import MAX_IMPORT_BYTES, MSG_FILE_TOO_LARGE, ImportFileError, roadworks_import_start

MSG_UNKNOWN_FORMAT = _("Unknown format. Use one of: {formats}.")
MSG_UNKNOWN_PARAMETER = _("Unknown parameter. Filters are: {names}.")


def _user(request: Request):
    return request.user if request.user.is_authenticated else None


def check_layer_access(request: Request, layer_name: str):
    """The layer, or a 404 (no such layer), 401 (log in to see it) or 403 (not for you)."""
    layer = LAYERS.get(layer_name)
    if layer is None:
        raise exceptions.NotFound(str(MSG_UNKNOWN_LAYER).format(layers=", ".join(LAYERS)))
    if not layer.may_see(_user(request)):
        if _user(request) is None:
            raise exceptions.NotAuthenticated(MSG_LAYER_NOT_ALLOWED)
        raise exceptions.PermissionDenied(MSG_LAYER_NOT_ALLOWED)
    return layer


class ExportView(APIView):
    """Download a layer for a GIS: roadworks, incidents, conflicts or black_spots as .gpkg, .shp.zip, .geojson, .csv.

    Filters as on the map: bbox (WGS84), active_on (date or date and time; `on` is a synonym), status, kind
    (roadworks: kind of works; incidents: kind; conflicts and black spots: rule) and impact (roadworks), each
    comma-separated. Coordinates are WGS84 (EPSG:4326); times UTC.
    """

    @extend_schema(
        operation_id="export_layer",
        parameters=[
            OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, required=False)
            for name in FILTER_PARAMETERS
        ],
        responses={(200, "application/octet-stream"): bytes},
    )
    def get(self, request: Request, layer: str, fmt: str) -> HttpResponse:
        chosen = check_layer_access(request, layer)
        file_format = FORMATS.get(fmt)
        if file_format is None:
            raise exceptions.NotFound(str(MSG_UNKNOWN_FORMAT).format(formats=", ".join(FORMATS)))
        unknown = sorted(set(request.query_params) - set(FILTER_PARAMETERS))
        if unknown:
            message = str(MSG_UNKNOWN_PARAMETER).format(names=", ".join(FILTER_PARAMETERS))
            raise exceptions.ValidationError({name: [message] for name in unknown})
        qs = filtered_rows(chosen, user=_user(request), params=request.query_params.dict())
        body = export_layer(layer=chosen, qs=qs, fmt=file_format)
        response = HttpResponse(body, content_type=file_format.content_type)
        filename = export_filename(layer=chosen, fmt=file_format, now=timezone.localtime())
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        # Visibility depends on who asks: no shared cache may hand one user's file to another.
        response["Cache-Control"] = "private, no-store"
        return response


class ImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=_("GeoJSON (FeatureCollection, WGS84) or GeoPackage (first layer, any CRS).")
    )
    organisation = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        required=False,
        help_text=_("The organisation the works are for (authority only); applicants import for their own."),
    )
    dry_run = serializers.BooleanField(required=False, default=False, help_text=_("Check only; import nothing."))


class ImportJobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField(
        help_text=_("When done: the report, exactly the body a synchronous import answers.")
    )
    error = serializers.SerializerMethodField(help_text=_("When failed: why."))

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "status",
            "url",
            "file_name",
            "feature_count",
            "dry_run",
            "created_at",
            "started_at",
            "finished_at",
            "report",
            "error",
        ]
        read_only_fields = fields

    def get_url(self, job: ImportJob) -> str:
        return job_url(self.context["request"], job)

    def get_report(self, job: ImportJob) -> dict | None:
        return job.report if job.status == ImportJobStatus.DONE else None

    def get_error(self, job: ImportJob) -> str | None:
        return job.error if job.status == ImportJobStatus.FAILED else None


def job_url(request: Request, job: ImportJob) -> str:
    return request.build_absolute_uri(reverse("gisio-api:roadworks-import-job", kwargs={"pk": job.pk}))


class RoadworkImportView(APIView):
    """POST a file of roadworks (multipart/form-data: file, organisation, dry_run): all are imported, or none.

    201 with the created roadworks; 200 for a dry run that found nothing wrong; 400 with a report that lists every
    rejected feature (index, id, reasons) when any feature fails the same checks as POST /api/v1/roadworks/.
    A file of more than AUMAN_IMPORT_SYNC_FEATURES features is imported in the background: 202 with the job's
    id, status and url (also the Location header); GET that url until its status is done or failed.
    """

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="roadworks_import",
        request={"multipart/form-data": ImportInputSerializer},
        responses={
            (200, "application/json"): dict,
            (201, "application/json"): dict,
            (202, "application/json"): inline_serializer(
                "ImportJobAccepted",
                {
                    "id": serializers.UUIDField(),
                    "status": serializers.ChoiceField(choices=ImportJobStatus.choices),
                    "url": serializers.URLField(),
                },
            ),
        },
    )
    def post(self, request: Request) -> Response:
        unknown = sorted(set(request.data) - {"file", "organisation", "dry_run"})
        errors = {name: [MSG_UNKNOWN_FIELD] for name in unknown}
        body = ImportInputSerializer(data=request.data)
        if not body.is_valid():
            errors.update(body.errors)
        if errors:
            raise exceptions.ValidationError(errors)
        upload = body.validated_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise exceptions.ValidationError({"file": [str(MSG_FILE_TOO_LARGE).format(limit=MAX_IMPORT_BYTES)]})
        try:
            result = roadworks_import_start(
                user=request.user,
                data=upload.read(),
                file_name=upload.name or "",
                organisation=body.validated_data.get("organisation"),
                dry_run=body.validated_data["dry_run"],
            )
        except ImportFileError as exc:
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
        if isinstance(result, ImportJob):
            url = job_url(request, result)
            accepted = {"id": str(result.pk), "status": result.status, "url": url}
            return Response(accepted, status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        report = result
        if not report.ok:
            return Response(report.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict(), status=status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED)


class RoadworkImportJobView(APIView):
    """A background import (started by POST /api/v1/roadworks/import/ with a large file): status queued, running,
    done (with the report) or failed (with the error). Only the user who started it sees it."""

    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="roadworks_import_job", responses={200: ImportJobSerializer})
    def get(self, request: Request, pk) -> Response:
        job = get_object_or_404(ImportJob.objects.defer("data"), pk=pk, user=request.user)
        response = Response(ImportJobSerializer(job, context={"request": request}).data)
        response["Cache-Control"] = "private, no-store"
        return response
