"""OGC API - Features, Part 1: Core, with GeoJSON and an OpenAPI 3.0 definition, mounted at /ogcapi/, for QGIS.

Why hand-written and not pygeoapi: pygeoapi's PostgreSQL provider reads a configured table through its own
SQLAlchemy engine. Here every collection is what the REST API shows the caller (the apps' visibility selectors:
the public sees public items only, applicants also their organisation's), which pygeoapi cannot apply per request
without a custom provider that re-implements those rules outside Django; it would also bring Flask, SQLAlchemy,
rasterio and pydantic for five read-only endpoints. This module reuses gisio.layers (the same rows as the export)
and builds each page of features in PostGIS in one query (json_agg), as maps/selectors.py does for the map.

Supported: landing page, /conformance, /api (OpenAPI 3.0 JSON), /collections, /collections/{id},
/collections/{id}/items with bbox, datetime, limit, offset (next/prev links) and the map's filters (status,
kind, impact), /collections/{id}/items/{featureId}. Coordinates are CRS84 (lon/lat WGS84). JSON only (f=json).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.gis.db.models.functions import AsGeoJSON, Transform
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from auman.api import MAX_YEAR, MIN_YEAR
from auman.geo import WGS84, service_area_geometry

from .layers import (
    BOOLEAN,
    DATETIME,
    INTEGER,
    LAYERS,
    MSG_LAYER_NOT_ALLOWED,
    MSG_UNKNOWN_LAYER,
    REAL,
    Layer,
    column_values,
    filtered_rows,
    layers_for,
)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
GEOJSON_PRECISION = 7

MSG_LIMIT = _("limit is a whole number from 1 to {max} (larger values are treated as {max}).")
MSG_OFFSET = _("offset is a whole number, 0 or more.")
MSG_DATETIME = _(
    "datetime is an instant (2026-05-31T08:00:00Z), a date, or an interval start/end where either side may be '..'."
)
MSG_BBOX = _("bbox is min_lon,min_lat,max_lon,max_lat in WGS84 (CRS84); other CRS are not supported.")
MSG_FORMAT = _("Only JSON is offered: f=json.")
MSG_UNKNOWN_PARAMETER = _("Unknown parameter.")
MSG_FEATURE_NOT_FOUND = _("No such feature, or you may not see it.")

ITEMS_PARAMETERS = {"bbox", "datetime", "limit", "offset", "f", "status", "kind", "impact"}
OGC_TYPES = {INTEGER: "integer", REAL: "number", BOOLEAN: "boolean", DATETIME: "string", "string": "string"}


class OGCError(Exception):
    def __init__(self, status: int, code: str, description: Any) -> None:
        super().__init__(str(description))
        self.status, self.code, self.description = status, code, str(description)


def _error(exc: OGCError) -> JsonResponse:
    return JsonResponse({"code": exc.code, "description": exc.description}, status=exc.status)


def _user(request: Request):
    return request.user if request.user.is_authenticated else None


def _json(data: Any, content_type: str = JSON) -> JsonResponse:
    return JsonResponse(data, content_type=content_type, json_dumps_params={"ensure_ascii": False})


class OGCView(APIView):
    """Token or session authentication as the REST API; any Accept header gets JSON (QGIS asks for several types)."""

    allowed_parameters: set[str] = {"f"}
    # Described by its own OpenAPI document (/ogcapi/api), not by the REST API's schema.
    schema = None

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            self._check_parameters(drf_request)
            response = self.get(drf_request, *args, **kwargs)
        except OGCError as exc:
            response = _error(exc)
        except exceptions.NotAuthenticated as exc:
            response = _error(OGCError(401, "NotAuthenticated", exc.detail))
        except exceptions.APIException as exc:
            response = _error(OGCError(exc.status_code, exc.default_code, exc.detail))
        if request.method == "GET":
            response["Cache-Control"] = "private, no-store"
        return response

    def _check_parameters(self, request: Request) -> None:
        unknown = sorted(set(request.query_params) - self.allowed_parameters)
        if unknown:
            raise OGCError(400, "InvalidParameterValue", f"{unknown[0]}: {MSG_UNKNOWN_PARAMETER}")
        if request.query_params.get("f", "json") != "json":
            raise OGCError(400, "InvalidParameterValue", MSG_FORMAT)

    def url(self, path: str, **params: Any) -> str:
        query = {key: value for key, value in params.items() if value not in (None, "")}
        base = self.request.build_absolute_uri(f"/ogcapi/{path}")
        return f"{base}?{urlencode(query)}" if query else base


def _layer_for(request: Request, collection_id: str) -> Layer:
    layer = LAYERS.get(collection_id)
    if layer is None:
        raise OGCError(404, "NotFound", str(MSG_UNKNOWN_LAYER).format(layers=", ".join(LAYERS)))
    if not layer.may_see(_user(request)):
        # As the REST API: log in (401) or not for you (403).
        if _user(request) is None:
            raise OGCError(401, "NotAuthenticated", MSG_LAYER_NOT_ALLOWED)
        raise OGCError(403, "Forbidden", MSG_LAYER_NOT_ALLOWED)
    return layer


class LandingPage(OGCView):
    def get(self, request: Request) -> JsonResponse:
        return _json(
            {
                "title": str(_("AUMAn: roadworks and traffic incidents")),
                "description": str(_("Roadworks, incidents, conflicts and black spots as OGC API - Features.")),
                "links": [
                    {"href": self.url(""), "rel": "self", "type": JSON, "title": "this document"},
                    {"href": self.url("api"), "rel": "service-desc", "type": OPENAPI, "title": "OpenAPI 3.0"},
                    {"href": self.url("conformance"), "rel": "conformance", "type": JSON, "title": "conformance"},
                    {"href": self.url("collections"), "rel": "data", "type": JSON, "title": "collections"},
                ],
            }
        )


class Conformance(OGCView):
    def get(self, request: Request) -> JsonResponse:
        return _json({"conformsTo": CONFORMANCE})


def _extent() -> list[float]:
    area = service_area_geometry().transform(WGS84, clone=True)
    return [round(value, 6) for value in area.extent]


def _collection(view: OGCView, layer: Layer, extent: list[float]) -> dict[str, Any]:
    return {
        "id": layer.name,
        "title": str(layer.title),
        "description": str(layer.description),
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [extent], "crs": CRS84}, "temporal": {"interval": [[None, None]]}},
        "links": [
            {"href": view.url(f"collections/{layer.name}"), "rel": "self", "type": JSON, "title": str(layer.title)},
            {"href": view.url(f"collections/{layer.name}/items"), "rel": "items", "type": GEOJSON, "title": "items"},
        ],
    }


class Collections(OGCView):
    def get(self, request: Request) -> JsonResponse:
        extent = _extent()
        return _json(
            {
                "links": [{"href": self.url("collections"), "rel": "self", "type": JSON, "title": "collections"}],
                "collections": [_collection(self, layer, extent) for layer in layers_for(_user(request))],
            }
        )


class Collection(OGCView):
    def get(self, request: Request, collection_id: str) -> JsonResponse:
        layer = _layer_for(request, collection_id)
        return _json(_collection(self, layer, _extent()))


def _integer(raw: str | None, *, default: int, minimum: int, message: Any) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise OGCError(400, "InvalidParameterValue", message) from exc
    if value < minimum:
        raise OGCError(400, "InvalidParameterValue", message)
    return value


def _instant(text: str, *, end: bool) -> datetime | None:
    """One side of a datetime interval: None for '..' or empty; a date means the start (or end) of that UTC day."""
    if text in ("", ".."):
        return None
    try:
        # A date alone first: parse_datetime would read "2027-08-02" as its midnight.
        day = parse_date(text) if "T" not in text.upper() else None
        moment = parse_datetime(text) if day is None else None
    except ValueError as exc:
        raise OGCError(400, "InvalidParameterValue", MSG_DATETIME) from exc
    if moment is None and day is None:
        raise OGCError(400, "InvalidParameterValue", MSG_DATETIME)
    if moment is None:
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if end:
            moment = moment + timedelta(days=1)
    elif timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise OGCError(400, "InvalidParameterValue", MSG_DATETIME)
    return moment


def _datetime_range(raw: str) -> DateTimeTZRange:
    if "/" in raw:
        start_text, _slash, end_text = raw.partition("/")
        start, end = _instant(start_text, end=False), _instant(end_text, end=True)
        if (start is None and end is None) or (start is not None and end is not None and end < start):
            raise OGCError(400, "InvalidParameterValue", MSG_DATETIME)
        return DateTimeTZRange(start, end, "[]")
    start = _instant(raw, end=False)
    if "T" not in raw:
        return DateTimeTZRange(start, _instant(raw, end=True), "[)")
    return DateTimeTZRange(start, start, "[]")


def _bbox_param(raw: str) -> str:
    parts = raw.split(",")
    if len(parts) == 6:
        # A 3D box: heights mean nothing on a road map.
        parts = [parts[0], parts[1], parts[3], parts[4]]
    return ",".join(parts)


def _features_sql(layer: Layer, qs, *, offset: int = 0, limit: int | None = None) -> tuple[str, list]:
    """A page of `qs` (ordered by id) as a JSON array of GeoJSON Features, built by PostGIS in one query."""
    values = column_values(layer, qs, with_geometry=False).annotate(
        geojson=AsGeoJSON(Transform(layer.geometry_field, WGS84), precision=GEOJSON_PRECISION)
    )
    if limit is not None:
        values = values[offset : offset + limit]
    inner, params = values.query.sql_with_params()
    # Column names come from gisio.layers (fixed identifiers), never from the request.
    properties = ", ".join(f"'{column.name}', t.c_{column.name}" for column in layer.columns)
    sql = f"""
        SELECT COALESCE(json_agg(json_build_object(
            'type', 'Feature',
            'id', t.c_{layer.id_column},
            'geometry', t.geojson::json,
            'properties', json_build_object({properties})
        ) ORDER BY t.c_{layer.id_column}), '[]'::json)::text
        FROM ({inner}) AS t
    """
    return sql, list(params)


def _run(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (text,) = cursor.fetchone()
    return text


class Items(OGCView):
    allowed_parameters = ITEMS_PARAMETERS

    def get(self, request: Request, collection_id: str) -> HttpResponse:
        layer = _layer_for(request, collection_id)
        params = request.query_params
        limit = min(
            _integer(
                params.get("limit"), default=DEFAULT_LIMIT, minimum=1, message=str(MSG_LIMIT).format(max=MAX_LIMIT)
            ),
            MAX_LIMIT,
        )
        offset = _integer(params.get("offset"), default=0, minimum=0, message=MSG_OFFSET)
        filters = {name: params[name] for name in ("status", "kind", "impact") if name in params}
        if params.get("bbox"):
            filters["bbox"] = _bbox_param(params["bbox"])
        try:
            qs = filtered_rows(layer, user=_user(request), params=filters)
        except serializers.ValidationError as exc:
            detail = exc.detail
            first = next(iter(detail.values()))[0] if isinstance(detail, dict) else detail[0]
            message = MSG_BBOX if isinstance(detail, dict) and "bbox" in detail else first
            raise OGCError(400, "InvalidParameterValue", message) from exc
        if params.get("datetime") and layer.period_field:
            qs = qs.filter(**{f"{layer.period_field}__overlap": _datetime_range(params["datetime"])})
        matched = qs.count()
        features = _run(*_features_sql(layer, qs, offset=offset, limit=limit))
        returned = max(0, min(limit, matched - offset))
        keep = {key: params[key] for key in params if key not in ("offset", "limit")}
        links = [
            {
                "href": self.url(f"collections/{layer.name}/items", **keep, limit=limit, offset=offset or None),
                "rel": "self",
                "type": GEOJSON,
                "title": "this page",
            },
            {"href": self.url(f"collections/{layer.name}"), "rel": "collection", "type": JSON, "title": "collection"},
        ]
        if offset + limit < matched:
            links.append(
                {
                    "href": self.url(f"collections/{layer.name}/items", **keep, limit=limit, offset=offset + limit),
                    "rel": "next",
                    "type": GEOJSON,
                    "title": "next page",
                }
            )
        if offset > 0:
            links.append(
                {
                    "href": self.url(
                        f"collections/{layer.name}/items", **keep, limit=limit, offset=max(0, offset - limit) or None
                    ),
                    "rel": "prev",
                    "type": GEOJSON,
                    "title": "previous page",
                }
            )
        head = _json(
            {
                "type": "FeatureCollection",
                "timeStamp": timezone.now().isoformat().replace("+00:00", "Z"),
                "numberMatched": matched,
                "numberReturned": returned,
                "links": links,
            },
            content_type=GEOJSON,
        )
        # The features arrive as finished JSON text from PostGIS; spliced in, not parsed and dumped again.
        body = head.content[:-1] + b', "features": ' + features.encode() + b"}"
        response = HttpResponse(body, content_type=GEOJSON)
        return response


class Item(OGCView):
    def get(self, request: Request, collection_id: str, feature_id: str) -> HttpResponse:
        layer = _layer_for(request, collection_id)
        qs = filtered_rows(layer, user=_user(request), params={})
        try:
            qs = qs.filter(pk=feature_id)
            found = qs.exists()
        except (DjangoValidationError, ValueError) as exc:
            raise OGCError(404, "NotFound", MSG_FEATURE_NOT_FOUND) from exc
        if not found:
            raise OGCError(404, "NotFound", MSG_FEATURE_NOT_FOUND)
        text = _run(*_features_sql(layer, qs))
        feature = text.strip()[1:-1].strip()  # the one element of the array
        links = [
            {"href": self.url(f"collections/{layer.name}/items/{feature_id}"), "rel": "self", "type": GEOJSON},
            {"href": self.url(f"collections/{layer.name}"), "rel": "collection", "type": JSON},
        ]
        links_json = JsonResponse(links, safe=False, json_dumps_params={"ensure_ascii": False}).content
        body = feature[:-1].encode() + b', "links": ' + links_json + b"}"
        return HttpResponse(body, content_type=GEOJSON)


def _property_schema(layer: Layer) -> dict[str, Any]:
    properties = {}
    for column in layer.columns:
        schema: dict[str, Any] = {"type": OGC_TYPES[column.type], "title": str(column.title)}
        if column.type == DATETIME:
            schema["format"] = "date-time"
        properties[column.name] = schema
    return {"type": "object", "properties": properties}


class OpenAPIDocument(OGCView):
    def get(self, request: Request) -> JsonResponse:
        visible = [layer.name for layer in layers_for(_user(request))]
        json_ok = {"200": {"description": "OK", "content": {JSON: {}}}}
        geojson_ok = {"200": {"description": "OK", "content": {GEOJSON: {}}}}
        collection_id = {
            "name": "collectionId",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": visible},
        }

        def query(name: str, schema: dict, description: str = "") -> dict[str, Any]:
            return {
                "name": name,
                "in": "query",
                "required": False,
                "schema": schema,
                "description": description,
                "style": "form",
                "explode": False,
            }

        items_parameters = [
            collection_id,
            query("bbox", {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}, str(MSG_BBOX)),
            query("datetime", {"type": "string"}, str(MSG_DATETIME)),
            query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
            query("offset", {"type": "integer", "minimum": 0, "default": 0}),
            query("status", {"type": "string"}, "comma-separated"),
            query("kind", {"type": "string"}, "comma-separated"),
            query("impact", {"type": "string"}, "roadworks: closure, restriction, minor (comma-separated)"),
            query("f", {"type": "string", "enum": ["json"]}),
        ]
        document = {
            "openapi": "3.0.3",
            "info": {"title": "AUMAn OGC API - Features", "version": "1.0.0"},
            "servers": [{"url": self.url("").rstrip("/")}],
            "paths": {
                "/": {"get": {"operationId": "getLandingPage", "responses": json_ok}},
                "/conformance": {"get": {"operationId": "getConformance", "responses": json_ok}},
                "/api": {
                    "get": {
                        "operationId": "getAPI",
                        "responses": {"200": {"description": "OK", "content": {OPENAPI: {}}}},
                    }
                },
                "/collections": {"get": {"operationId": "getCollections", "responses": json_ok}},
                "/collections/{collectionId}": {
                    "get": {"operationId": "describeCollection", "parameters": [collection_id], "responses": json_ok}
                },
                "/collections/{collectionId}/items": {
                    "get": {"operationId": "getFeatures", "parameters": items_parameters, "responses": geojson_ok}
                },
                "/collections/{collectionId}/items/{featureId}": {
                    "get": {
                        "operationId": "getFeature",
                        "parameters": [
                            collection_id,
                            {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
                        ],
                        "responses": geojson_ok,
                    }
                },
            },
            "components": {
                "schemas": {f"{layer.name}Properties": _property_schema(layer) for layer in layers_for(_user(request))}
            },
        }
        return _json(document, content_type=OPENAPI)
