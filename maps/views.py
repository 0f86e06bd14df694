"""The map page and the GeoJSON it loads for the part of the map in view."""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.utils.http import quote_etag
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from auman.filters import parse_bbox
from roadworks.models import Impact
from traffic.models import IncidentKind

from .page import map_page_config
from .selectors import MAP_LAYERS, MapFilter, map_features, map_layers_for
from .tiles import TileParameterError, parse_day, parse_district

MSG_LAYERS = gettext_lazy("layers is a comma-separated list of: {layers}.")

# Intl.DateTimeFormat locales for the page languages; the map formats dates in the browser.
_JS_LOCALES = {"de": "de-DE", "en": "en-GB"}


def _map_config(request: HttpRequest) -> dict[str, Any]:
    """Everything map.js needs, handed over with json_script so no data ends up inside a script."""
    user = request.user
    # Only people who may see works under review get a legend entry for them; the public never sees such works.
    show_pending = user.is_authenticated and (user.is_staff_viewer or user.is_applicant)
    language = get_language() or settings.LANGUAGE_CODE
    return {
        "center": settings.AUMAN_MAP_CENTER,
        "zoom": settings.AUMAN_MAP_ZOOM,
        "tileUrl": settings.AUMAN_TILE_URL,
        "tileAttribution": settings.AUMAN_TILE_ATTRIBUTION,
        "featuresUrl": reverse("maps:features"),
        # The layers this user may see: map.js draws these only, and the legend lists these only.
        "layers": list(map_layers_for(user)),
        "locale": _JS_LOCALES.get(language.split("-")[0], language),
        "timeZone": settings.TIME_ZONE,
        "showPending": show_pending,
        "impacts": [{"code": impact.value, "label": str(impact.label)} for impact in Impact],
        "kinds": [{"code": kind.value, "label": str(kind.label)} for kind in IncidentKind],
        "strings": {
            "mapLabel": _("Map of roadworks and incidents"),
            "legend": _("Legend"),
            "roadworks": _("Roadworks"),
            "incidents": _("Incidents"),
            "active": _("Active now"),
            "planned": _("Planned"),
            "pending": _("Under review"),
            "reference": _("Reference"),
            "street": _("Street"),
            "period": _("Period"),
            "impact": _("Impact"),
            "trafficManagement": _("Traffic management"),
            "status": _("Status"),
            "occurred": _("Occurred"),
            "expectedClearance": _("Expected clearance"),
            "lanesBlocked": _("Lanes blocked"),
            "loading": _("Loading map data …"),
            "loadError": _("The map data could not be loaded. Move the map to try again."),
            "blackSpot": _("Accident black spot"),
            "rule": _("Rule"),
            "accidentType": _("Type of accident"),
            "accidents": _("Accidents"),
            "score": _("Score"),
            "commissionEntry": _("Show in the accident commission's list"),
            # {roadworks} and {incidents} are replaced by numbers in map.js.
            "summary": _("In view: {roadworks} roadworks, {incidents} incidents"),
            # The same, for those who also see black spots; {black_spots} is a number as well.
            "summaryBlackSpots": _("In view: {roadworks} roadworks, {incidents} incidents, {black_spots} black spots"),
        },
    }


def index(request: HttpRequest) -> HttpResponse:
    config = _map_config(request)
    # Layers, time, filters, live updates and their strings: maps/page.py, the browser side's own module.
    extra = map_page_config(request, config["layers"])
    config["strings"].update(extra.pop("extraStrings"))
    config.update(extra)
    return render(request, "maps/index.html", {"map_config": config})


@require_safe
def features(request: HttpRequest) -> HttpResponse:
    """GeoJSON of roadworks, incidents and (for those who may see them) black spots in
    ?bbox=min_lon,min_lat,max_lon,max_lat (WGS84), for the map.

    ?layers= picks some of MAP_LAYERS. A layer the user may not see is answered as empty rather than refused, so
    the answer never tells whether it holds anything, and the other layers come as asked.
    """
    raw_bbox = request.GET.get("bbox", "").strip()
    try:
        # Without a bbox the whole service area is meant: handy for a first look and for scripts.
        bbox = parse_bbox(raw_bbox) if raw_bbox else None
    except ValidationError as exc:
        return JsonResponse({"bbox": exc.messages}, status=400)

    raw_layers = request.GET.get("layers", "").strip()
    layers = [name.strip() for name in raw_layers.split(",") if name.strip()] if raw_layers else list(MAP_LAYERS)
    if not layers or any(name not in MAP_LAYERS for name in layers):
        return JsonResponse({"layers": [str(MSG_LAYERS).format(layers=", ".join(MAP_LAYERS))]}, status=400)

    # The date slider's day (default: now and coming) and the district, as the tiles take them (maps.tiles).
    try:
        day = parse_day(request.GET.get("on", ""))
        district = parse_district(request.GET.get("district", ""))
    except TileParameterError as exc:
        return JsonResponse(exc.errors, status=400)

    body = map_features(user=request.user, bbox=bbox, layers=layers, flt=MapFilter(day=day, district=district))
    response = HttpResponse(body, content_type="application/geo+json")
    # Hashing the body is cheap next to the query and saves the transfer when nothing changed between pans.
    response.headers["ETag"] = quote_etag(hashlib.blake2b(body, digest_size=16).hexdigest())
    # What a user sees depends on who they are and on the language of the labels: never a shared cache,
    # and always revalidate, because incidents change by the minute.
    patch_cache_control(response, private=True, no_cache=True)
    patch_vary_headers(response, ("Cookie", "Accept-Language"))
    return get_conditional_response(request, etag=response.headers["ETag"], response=response)
