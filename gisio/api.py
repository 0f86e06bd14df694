"""GET /api/v1/export/<layer>.<format>: a layer as GeoPackage, zipped Shapefile, GeoJSON or CSV, for GIS users;
POST /api/v1/roadworks/import/: roadworks from a GeoJSON or GeoPackage file, all or nothing.

The rows are those the REST API shows the caller (token or session), narrowed by the map's filters.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Organisation
from auman.api import MSG_UNKNOWN_FIELD

from .export import FORMATS, export_filename, export_layer
from .layers import FILTER_PARAMETERS, LAYERS, MSG_LAYER_NOT_ALLOWED, MSG_UNKNOWN_LAYER, filtered_rows
from .services import MAX_IMPORT_BYTES, MSG_FILE_TOO_LARGE, ImportFileError, roadworks_import

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


class RoadworkImportView(APIView):
    """POST a file of roadworks (multipart/form-data: file, organisation, dry_run): all are imported, or none.

    201 with the created roadworks; 200 for a dry run that found nothing wrong; 400 with a report that lists every
    rejected feature (index, id, reasons) when any feature fails the same checks as POST /api/v1/roadworks/.
    """

    parser_classes = [MultiPartParser]

    @extend_schema(
        operation_id="roadworks_import",
        request={"multipart/form-data": ImportInputSerializer},
        responses={(200, "application/json"): dict},
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
            report = roadworks_import(
                user=request.user,
                data=upload.read(),
                organisation=body.validated_data.get("organisation"),
                dry_run=body.validated_data["dry_run"],
            )
        except ImportFileError as exc:
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
        if not report.ok:
            return Response(report.as_dict(), status=status.HTTP_400_BAD_REQUEST)
        return Response(report.as_dict(), status=status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED)
