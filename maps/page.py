"""The map page's configuration beyond the basics in views._map_config: layers, sources, time, live updates, and
the strings map.js shows.

Kept apart from views.py so the page (browser side) and the data endpoints (server side) change independently.
Everything ends up in the page through json_script, never inside a script.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from roadworks.permissions import can_view_layers
from traffic.permissions import can_see_accident_details

# How far ahead the date slider reaches: a year covers what is planned in any detail.
DATE_RANGE_DAYS = 365
# Below this zoom roadworks come as vector tiles: a whole city (or region) of works is too much GeoJSON.
ROADWORK_TILES_BELOW_ZOOM = 11
# From this zoom on incidents are single symbols; further out, nearby ones are drawn as one numbered cluster.
INCIDENT_CLUSTER_UNTIL_ZOOM = 15

# The layers map.js knows, in legend order. "source" says where their data comes from.
FEATURES = "features"  # /map/features.geojson, by bbox
TILES = "tiles"  # /tiles/<layer>/<z>/<x>/<y>.mvt
API = "api"  # a paginated GeoJSON list endpoint of the REST API


def _url(name: str, fallback: str, **kwargs: Any) -> str:
    """reverse() where the route exists; the documented path where it is not mounted (yet) on this installation."""
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return fallback


def _tile_url_template() -> str:
    """/tiles/{layer}/{z}/{x}/{y}.mvt with Leaflet's placeholders, derived from the route when it exists."""
    try:
        sample = reverse("maps:tile", kwargs={"layer": "roadworks", "z": 7, "x": 8, "y": 9})
    except NoReverseMatch:
        return "/tiles/{layer}/{z}/{x}/{y}.mvt"
    return sample.replace("roadworks", "{layer}").replace("/7/8/9", "/{z}/{x}/{y}")


def _id_url_template(name: str, fallback: str, sample: Any) -> str:
    """A detail page's URL with {id} for map.js to fill in."""
    try:
        return reverse(name, args=[sample]).replace(str(sample), "{id}")
    except NoReverseMatch:
        return fallback


def map_page_config(request: HttpRequest, base_layers: list[str]) -> dict[str, Any]:
    """What map.js needs besides views._map_config: merged into that config by views.index.

    base_layers are the features-endpoint layers this user may see (map_layers_for).
    """
    user = request.user
    staff = user.is_authenticated and user.is_staff_viewer
    layer_defs: list[dict[str, Any]] = [
        {"name": "roadworks", "source": FEATURES, "on": True},
        {"name": "detours", "source": FEATURES, "on": True},
        {"name": "incidents", "source": FEATURES, "on": True},
    ]
    # The classification of accidents is for staff only (traffic.permissions), so their tile layer is too.
    if user.is_authenticated and can_see_accident_details(user):
        layer_defs.append({"name": "accidents", "source": TILES, "on": False})
    if "black_spots" in base_layers:
        layer_defs.append({"name": "black_spots", "source": FEATURES, "on": True})
    if user.is_authenticated and can_view_layers(user):
        layer_defs += [
            {"name": "moratoria", "source": API, "on": False, "url": _url("api:moratorium-list", "/api/v1/moratoria/")},
            {"name": "events", "source": API, "on": False, "url": _url("api:event-list", "/api/v1/events/")},
            {"name": "corridors", "source": API, "on": False, "url": _url("api:corridor-list", "/api/v1/corridors/")},
            {"name": "conflicts", "source": API, "on": False, "url": _url("api:conflict-list", "/api/v1/conflicts/")},
            # Works and closures published by others (Autobahn, neighbours): read-only, from interop's sources.
            {
                "name": "external",
                "source": API,
                "on": False,
                "url": _url("api:external-item-list", "/api/v1/external-items/"),
            },
        ]
    today = timezone.localdate()
    return {
        "layerDefs": layer_defs,
        "today": today.isoformat(),
        "maxDate": (today + timedelta(days=DATE_RANGE_DAYS)).isoformat(),
        "dateRangeDays": DATE_RANGE_DAYS,
        "vectorTileUrl": _tile_url_template(),
        "roadworkTilesBelowZoom": ROADWORK_TILES_BELOW_ZOOM,
        "clusterUntilZoom": INCIDENT_CLUSTER_UNTIL_ZOOM,
        "districtsUrl": _url("maps:districts", "/api/v1/districts/"),
        "streetsUrl": _url("streets-search", "/api/v1/streets/"),
        # Staff open the application behind a roadwork, and a conflict's page, from the map.
        "applicationUrl": _id_url_template("roadworks:detail", "/baustellen/{id}/", uuid.UUID(int=7))
        if staff
        else None,
        "conflictUrl": _id_url_template("roadworks:conflict", "/konflikte/{id}/", 987654321) if staff else None,
        # The control room (and every staff viewer) follows changes live; the public reloads when it moves.
        "live": {
            "enabled": bool(staff),
            "seconds": settings.AUMAN_MAP_POLL_SECONDS,
        },
        "extraStrings": _strings(),
    }


def _strings() -> dict[str, str]:
    return {
        "detours": _("Detours"),
        "detour": _("Detour"),
        "detourOf": _("Detour for"),
        "description": _("Description"),
        "accidentsTiles": _("Recorded accidents"),
        "moratoria": _("Moratoria"),
        "moratorium": _("Moratorium (no digging after resurfacing)"),
        "events": _("Events"),
        "event": _("Event"),
        "corridors": _("Corridors"),
        "corridor": _("Corridor"),
        "conflicts": _("Conflicts"),
        "externalItems": _("Works of other authorities"),
        "externalItem": _("Item of an external source"),
        "source": _("Source"),
        "restriction": _("Restriction"),
        "conflict": _("Conflict"),
        "blackSpots": _("Accident black spots"),
        "roadworkSingular": _("Roadwork"),
        "incidentSingular": _("Incident"),
        "accidentSingular": _("Accident"),
        "category": _("Category"),
        "kindOfWorks": _("Kind of works"),
        "endsOn": _("Ends on"),
        "resurfacedOn": _("Resurfaced on"),
        "reason": _("Reason"),
        "visitors": _("Expected visitors"),
        "maxSimultaneous": _("Works allowed at the same time"),
        "severity": _("Severity"),
        "sides": _("Between"),
        "openApplication": _("Open the application"),
        "openConflict": _("Open the conflict"),
        "showOnMap": _("Show on the map"),
        "listCaption": _("Features in view: {count}"),
        "listCapped": _("Only the first {count} are listed; zoom in to see the rest."),
        "listEmpty": _("Nothing in view with these filters."),
        "colLayer": _("Layer"),
        "colName": _("Name"),
        "colWhere": _("Where"),
        "colWhen": _("When"),
        "new": _("New"),
        "changed": _("Changed"),
        "liveSummary": _("Updated: {new} new, {changed} changed, {removed} gone."),
        "liveUnchanged": _("Checked for changes: nothing new."),
        "incidentsTodayOnly": _("Incidents are shown for today only."),
        "streetSearching": _("Searching …"),
        "streetNone": _("No street found."),
        "streetResults": _("{count} streets found. Choose one to zoom to it."),
        "streetZoomed": _("Map zoomed to {name}."),
        "streetError": _("The street search failed. Try again."),
        "districtsError": _("The districts could not be loaded."),
        "layerError": _("A map layer could not be loaded: {layer}."),
        "allDistricts": _("Whole city"),
        "details": _("Details"),
        "noDetails": _("Choose a feature on the map or in the list to see its details here."),
        "closeDetails": _("Close details"),
        "dayLabel": _("Showing {date}"),
        "clusterLabel": _("{count} incidents"),
    }
