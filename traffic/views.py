"""Pages for the police and the control room: the phone-first quick entry and the list of active incidents.

Both pages write through the REST API (with the session and its CSRF token), so the page and API clients
meet the same validation and the same workflow.
"""

from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from auman import history

from . import permissions, selectors, workflow
from .accidents import CODE_LISTS, RoadUser
from .models import Accident, AccidentCategory, Incident, IncidentKind, IncidentStatus

MSG_POLICE_PAGES_ONLY = gettext_lazy("This page is for the police, the traffic control room and the permit authority.")

# The street network's endpoint (maps app). Its contract: ?lon=&lat= -> 200 {"name", "distance_m"} or 404.
NEAREST_STREET_URL_NAME = "streets-nearest"
# Casualty counts the page asks for per category; the others must be 0 (traffic.accidents.casualty_errors).
CASUALTIES_BY_CATEGORY = {
    AccidentCategory.KILLED: ["killed", "seriously_injured", "slightly_injured"],
    AccidentCategory.SERIOUSLY_INJURED: ["seriously_injured", "slightly_injured"],
    AccidentCategory.SLIGHTLY_INJURED: ["slightly_injured"],
}
# How long a cleared or cancelled incident stays on the list, so a mistaken tap can be undone.
RECENTLY_CLOSED = timedelta(hours=24)


def police_page(view):
    """Logged in (else to the login page) and a role that logs incidents (else 403)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_use_police_pages(request.user):
            raise PermissionDenied(MSG_POLICE_PAGES_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


def _choices(choices) -> list[dict[str, Any]]:
    return [{"code": choice.value, "label": str(choice.label)} for choice in choices]


def _map_settings() -> dict[str, Any]:
    return {
        "center": settings.AUMAN_MAP_CENTER,
        "zoom": settings.AUMAN_MAP_ZOOM,
        "tileUrl": settings.AUMAN_TILE_URL,
        "tileAttribution": settings.AUMAN_TILE_ATTRIBUTION,
    }


def _nearest_street_url() -> str | None:
    # The page works without the street network (no street name shown), so a missing endpoint is no error.
    try:
        return reverse(NEAREST_STREET_URL_NAME)
    except NoReverseMatch:
        return None


def _quick_entry_config(request: HttpRequest) -> dict[str, Any]:
    """What quick_entry.js needs, handed over with json_script so no data ends up inside a script."""
    return {
        **_map_settings(),
        "incidentsUrl": reverse("api:incident-list"),
        "nearestStreetUrl": _nearest_street_url(),
        "csrfToken": get_token(request),
        "casualtiesByCategory": {str(code.value): fields for code, fields in CASUALTIES_BY_CATEGORY.items()},
        "kindLabels": {kind.value: str(kind.label) for kind in IncidentKind},
        "strings": {
            "mapLabel": _("Map: tap to place the incident"),
            "locating": _("Finding your location …"),
            # {accuracy} is replaced by a number of metres in quick_entry.js.
            "located": _("Location found (within {accuracy} m). Drag the marker to correct it."),
            "placed": _("Place set. Drag the marker to correct it."),
            "locationDenied": _("Location access was refused. Tap the map to place the incident."),
            "locationUnavailable": _("Your location could not be found. Tap the map to place the incident."),
            "locationUnsupported": _("This device cannot give its location. Tap the map to place the incident."),
            "locationRequired": _("Place the incident first: use your location or tap the map."),
            "streetLooking": _("Looking up the street …"),
            "streetFound": _("Nearest street: {name} ({distance} m away)"),
            "streetNone": _("No street name found nearby. Type it in if you know it."),
            "saving": _("Saving …"),
            "save": _("Save"),
            # {kind}, {street} and {time} are replaced in quick_entry.js.
            "saved": _("Saved: {kind}, {street}, {time}."),
            "savedNoStreet": _("Saved: {kind}, {time}."),
            "fixErrors": _("Not saved. Please correct the marked fields."),
            "notAllowed": _("Not saved: you may not log incidents. Are you still logged in?"),
            "failed": _("Not saved: the server could not be reached or answered with an error. Try again."),
        },
    }


def _list_config(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    # Only the steps this user may take, per status: the buttons list.js draws after a step.
    steps: dict[str, list[dict[str, Any]]] = {}
    for transition in workflow.TRANSITIONS:
        if permissions.can_take_transition(user, transition):
            steps.setdefault(transition.source.value, []).append(
                {"to": transition.target.value, "label": str(transition.label), "comment": transition.comment_required}
            )
    return {
        "incidentsUrl": reverse("api:incident-list"),
        "csrfToken": get_token(request),
        "steps": steps,
        "statusLabels": {status.value: str(status.label) for status in IncidentStatus},
        "strings": {
            "working": _("Saving …"),
            # {status} is replaced in incident_list.js.
            "done": _("Done: now {status}."),
            "commentRequired": _("Say why in the comment field first."),
            "stale": _("Someone else changed this incident in the meantime. Reload the page and try again."),
            "failed": _("The change could not be saved. Try again."),
        },
    }


def _accident_of(incident: Incident) -> Accident | None:
    try:
        return incident.accident
    except ObjectDoesNotExist:
        return None


def _steps_for(user, incident: Incident) -> list[workflow.Transition]:
    return [t for t in workflow.transitions_from(incident.status) if permissions.can_take_transition(user, t)]


@police_page
def quick_entry(request: HttpRequest) -> HttpResponse:
    context = {
        "config": _quick_entry_config(request),
        "kinds": _choices(IncidentKind),
        "default_kind": IncidentKind.ACCIDENT.value,
        "codes": {name: _choices(choices) for name, choices in CODE_LISTS.items()},
        "road_users": _choices(RoadUser),
        "list_url": reverse("traffic:incident-list"),
    }
    return render(request, "traffic/quick_entry.html", context)


@police_page
def incident_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    active = list(selectors.incidents_for_police_list(user))
    closed = list(selectors.incidents_recently_closed(user, since=timezone.now() - RECENTLY_CLOSED))
    for incident in (*active, *closed):
        incident.steps = _steps_for(user, incident)
        # Read here, not in the template: a missing reverse one-to-one raises rather than giving None.
        incident.accident_row = _accident_of(incident)
    context = {
        "config": _list_config(request),
        "active": active,
        "closed": closed,
        "recent_hours": int(RECENTLY_CLOSED.total_seconds() // 3600),
        "quick_entry_url": reverse("traffic:quick-entry"),
    }
    return render(request, "traffic/incident_list.html", context)


@police_page
def incident_changes(request: HttpRequest, pk: Any) -> HttpResponse:
    """The incident's change history (who changed what, when), read-only; for staff who may see the history."""
    if not permissions.can_see_incident_history(request.user):
        raise PermissionDenied(MSG_POLICE_PAGES_ONLY)
    incident = get_object_or_404(selectors.incidents_visible_to(request.user), pk=pk)
    context = {
        "incident": incident,
        "changes": history.history_of_incident(incident.pk),
        "list_url": reverse("traffic:incident-list"),
    }
    return render(request, "traffic/incident_changes.html", context)
