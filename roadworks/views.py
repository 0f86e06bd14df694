"""The roadworks pages (German paths, the authority's own words):

- /baustellen/neu/, /baustellen/<id>/bearbeiten/   the application form (works area and detours drawn on a map)
- /baustellen/<id>/                                 the application: data, map, conflicts, files, history, steps
- /baustellen/zeitplan/                             what is closed when, on a street or in a district
- /koordination/                                    the coordinator's dashboard (authority)
- /konflikte/<id>/                                  a conflict: both sides and their overlap, and its steps

Views validate input, call one service or selector and render. Who may do what is permissions.py's and
workflow.py's; the services check it again and their errors are shown beside the fields they concern.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.text import format_lazy
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from auman import history
from auman.errors import ConcurrentEditError

from . import page_selectors, permissions, selectors, services, workflow
from .forms import AttachmentForm, ConflictStatusForm, RoadworkForm, TransitionForm, geometry_to_geojson
from .models import Conflict, ConflictStatus, Impact, Roadwork, RoadworkStatus, Severity

MSG_AUTHORITY_ONLY = gettext_lazy("This page is for the permit authority.")
MSG_APPLICATIONS_ONLY = gettext_lazy("The list of applications is for applicants and the permit authority.")
MSG_FORM_ERRORS = gettext_lazy("The application was not saved. Please correct the marked fields.")
MSG_STALE_FORM = gettext_lazy(
    "This application was changed by someone else meanwhile. Your changes were not saved, so that theirs are not "
    "overwritten. Open the current version, check it and make your changes again."
)
MSG_STALE_STEP = gettext_lazy(
    "This application was changed by someone else meanwhile. Nothing was done: check the current state below "
    "and choose again."
)
MSG_SAVED_DRAFT = gettext_lazy("The application was saved as a draft.")
MSG_SAVED = gettext_lazy("The changes were saved.")
MSG_EMERGENCY_REPORTED = gettext_lazy(
    "The emergency works were reported. They count as in progress; the permit authority decides afterwards."
)
MSG_SUBMITTED = gettext_lazy("The application was submitted to the permit authority.")
MSG_STEP_DONE = gettext_lazy("Done: the application is now '{status}'.")
MSG_OVERRIDE_REASON = gettext_lazy(
    "{count} open error-level conflict(s) concern this application. Say in 'Reason for the override' why the "
    "works may go ahead anyway, or resolve the conflicts first."
)
MSG_ATTACHMENT_ADDED = gettext_lazy("The file '{name}' was added.")
MSG_ATTACHMENT_FAILED = gettext_lazy("The file was not added. See the message beside the file field.")
MSG_CONFLICT_STEP_DONE = gettext_lazy("Done: the conflict is now '{status}'.")
MSG_STEP_FAILED = gettext_lazy("Nothing was done. See the message beside the step.")

# Rules by code: what they check. The catalogue (roadworks/rules.py) holds parameters and severities; these texts
# explain a rule to the person looking at a conflict.
RULE_EXPLANATIONS = {
    "C1": gettext_lazy(
        "Same place: the works lie within a few metres of each other and their periods overlap "
        "(daily working hours and weekdays taken into account)."
    ),
    "C2": gettext_lazy("Same street nearby: works on the same street, close to each other, at the same time."),
    "C3": gettext_lazy("Detour through works: a detour of one runs through the works area of the other."),
    "C4": gettext_lazy(
        "Corridor: the works would close or restrict more of a main corridor at the same time than it allows."
    ),
    "C5": gettext_lazy("Moratorium: excavation in a street resurfaced only a few years ago."),
    "C6": gettext_lazy("Event: works inside the area of an event while it takes place."),
    "C7": gettext_lazy(
        "Public transport and emergency routes: the works touch a tram or bus line, a stop or an emergency route."
    ),
    "C8": gettext_lazy("Accident black spot: the works lie at a place where accidents cluster."),
    "C10": gettext_lazy(
        "Collaboration: two excavations on the same street by different organisations within a "
        "few months; a chance to share the trench."
    ),
}
SEVERITY_EXPLANATIONS = {
    Severity.ERROR: gettext_lazy(
        "Error: the works must not go ahead like this. Approving them needs the conflict resolved, or accepted by "
        "the authority with a reason."
    ),
    Severity.WARNING: gettext_lazy("Warning: check and coordinate; it does not block an approval."),
    Severity.INFO: gettext_lazy("Information: worth knowing, nothing has to be done."),
}
CONFLICT_STEP_LABELS = {
    "acknowledge": gettext_lazy("Acknowledge"),
    "accept": gettext_lazy("Accept with reason"),
    "reopen": gettext_lazy("Reopen"),
}
CONFLICT_STEP_HELP = {
    "acknowledge": gettext_lazy("Seen: the parties are on it."),
    "accept": gettext_lazy("The works may go ahead despite the conflict; the reason is kept with it."),
    "reopen": gettext_lazy("Take the conflict up again."),
}

# Intl.DateTimeFormat locales for the page languages (as on the map).
_JS_LOCALES = {"de": "de-DE", "en": "en-GB"}


def _map_settings() -> dict[str, Any]:
    return {
        "center": settings.AUMAN_MAP_CENTER,
        "zoom": settings.AUMAN_MAP_ZOOM,
        "tileUrl": settings.AUMAN_TILE_URL,
        "tileAttribution": settings.AUMAN_TILE_ATTRIBUTION,
    }


def _user(request: HttpRequest) -> User | None:
    return request.user if request.user.is_authenticated else None


def _feature(geometry: Any, **properties: Any) -> dict[str, Any] | None:
    data = geometry_to_geojson(geometry)
    return {"type": "Feature", "geometry": data, "properties": properties} if data else None


def _collection(*features: dict[str, Any] | None) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": [f for f in features if f is not None]}


def _weekdays_text(weekdays: list[int]) -> str:
    return ", ".join(str(WEEKDAYS_ABBR[day]) for day in weekdays) if weekdays else ""


def _visible_roadwork(request: HttpRequest, pk: uuid.UUID) -> Roadwork:
    return get_object_or_404(selectors.roadworks_visible_to(_user(request)).prefetch_related("detours"), pk=pk)


# --- The application form --------------------------------------------------------------------------------------


def _form_config(request: HttpRequest) -> dict[str, Any]:
    """What roadwork_form.js needs, handed over with json_script so no data ends up inside a script."""
    return {
        **_map_settings(),
        "streetsUrl": reverse("streets-search"),
        # Geoman's own hints (tooltips while drawing) in the page language; it ships German and English.
        "language": (get_language() or settings.LANGUAGE_CODE).split("-")[0],
        "strings": {
            "mapLabel": _("Map: draw the works area and the detours"),
            "drawingArea": _(
                "Click on the map to set the corners of the works area; click the first point (or press Enter) to "
                "finish."
            ),
            "drawingLine": _(
                "Click on the map to set the points of the works line; click the last point again (or press Enter) to "
                "finish."
            ),
            "drawingDetour": _(
                "Click on the map to set the points of the detour; click the last point again (or press Enter) to "
                "finish."
            ),
            "areaSet": _("Works area set."),
            "areaMissing": _("No works area drawn yet."),
            "areaRemoved": _("Works area removed."),
            "detourAdded": _("Detour added."),
            "detourRemoved": _("Detour removed."),
            "drawingPedestrian": _(
                "Click on the map to set the points of the pedestrian route; click the last point again (or press "
                "Enter) to finish."
            ),
            "pedestrianSet": _("Pedestrian route drawn."),
            "pedestrianNone": _("No pedestrian route drawn."),
            "pedestrianRemoved": _("Pedestrian route removed."),
            "editing": _("Drag the points to change the shapes; press 'Finish editing' when done."),
            "editDone": _("Changes to the shapes taken over."),
            "cancelled": _("Drawing cancelled."),
            # {number} is replaced in roadwork_form.js.
            "detourName": _("Name of detour {number}"),
            "defaultDetourName": _("Detour {number}"),
            "removeDetour": _("Remove detour {number}"),
            "noDetours": _("No detours drawn."),
            "searching": _("Searching …"),
            # {count} is replaced in roadwork_form.js.
            "found": _("{count} streets found."),
            "foundNone": _("No street found."),
            "searchFailed": _("The street search failed. Type the street names in yourself."),
            "tooShort": _("Type at least 2 characters."),
            "addStreet": _("Add"),
            "useAsArea": _("Use as works area"),
            "showOnMap": _("Show on map"),
            "streetAdded": _("{name} added to the street names."),
            "streetUsedAsArea": _(
                "{name} is now the works area. Shorten it with 'Edit shapes' if the works cover "
                "only part of the street."
            ),
        },
    }


def _submit_label_for(user: User, roadwork: Roadwork | None) -> str | None:
    """The label of the 'save and submit' button, if the user may submit this application."""
    if roadwork is None:
        return _("Submit application")
    names = {t.name for t in workflow.available(user=user, roadwork=roadwork, now=timezone.now())}
    if "submit" in names:
        return _("Save and submit")
    if "resubmit" in names:
        return _("Save and submit again")
    return None


def _render_form(
    request: HttpRequest, form: RoadworkForm, roadwork: Roadwork | None, *, status: int = 200, stale: bool = False
) -> HttpResponse:
    context = {
        "form": form,
        "roadwork": roadwork,
        "config": _form_config(request),
        "submit_label": _submit_label_for(request.user, roadwork),
        "stale": stale,
        "message_form_errors": MSG_FORM_ERRORS if form.is_bound and form.errors and not stale else "",
    }
    return render(request, "roadworks/roadwork_form.html", context, status=status)


def _save(request: HttpRequest, form: RoadworkForm, roadwork: Roadwork | None) -> Roadwork:
    """Create or update, and submit when asked, in one transaction: a refused submission stores nothing."""
    # Emergency works are running when reported: created in progress, there is nothing left to submit.
    emergency = roadwork is None and bool(form.cleaned_data.get("is_emergency"))
    submit = request.POST.get("action") == "submit" and not emergency
    with transaction.atomic():
        if roadwork is None:
            saved = services.roadwork_create(user=request.user, data=form.service_data())
        else:
            saved = services.roadwork_update(
                user=request.user,
                roadwork_id=roadwork.pk,
                data=form.service_data(),
                expected_version=form.cleaned_data["version"],
            )
        if submit:
            # submit or resubmit, whichever the work's status allows: the workflow resolves the step.
            saved = services.roadwork_transition(
                user=request.user,
                roadwork_id=saved.pk,
                to_status=RoadworkStatus.SUBMITTED,
                expected_version=saved.version,
            )
    if emergency:
        messages.success(request, MSG_EMERGENCY_REPORTED)
    elif submit:
        messages.success(request, MSG_SUBMITTED)
    else:
        messages.success(request, MSG_SAVED_DRAFT if roadwork is None else MSG_SAVED)
    return saved


def _handle_form_post(request: HttpRequest, form: RoadworkForm, roadwork: Roadwork | None) -> HttpResponse:
    if not form.is_valid():
        return _render_form(request, form, roadwork, status=400)
    try:
        saved = _save(request, form, roadwork)
    except ConcurrentEditError:
        form.add_error(None, MSG_STALE_FORM)
        return _render_form(request, form, roadwork, status=409, stale=True)
    except ValidationError as exc:
        form.add_service_errors(exc)
        return _render_form(request, form, roadwork, status=400)
    except workflow.TransitionError as exc:
        # On submitting, only the period can stand in the way (it has ended): say so beside the period.
        form.add_error("period_end" if str(exc) == str(workflow.MSG_PERIOD_ENDED) else None, str(exc))
        return _render_form(request, form, roadwork, status=409)
    except PermissionDenied as exc:
        form.add_error(None, str(exc) or _("You may not do this."))
        return _render_form(request, form, roadwork, status=403)
    return redirect("roadworks:detail", pk=saved.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def roadwork_create(request: HttpRequest) -> HttpResponse:
    if not permissions.can_create_roadwork(request.user):
        raise PermissionDenied(services.MSG_NOT_ALLOWED_CREATE)
    choose = permissions.can_choose_organisation(request.user)
    if request.method == "POST":
        return _handle_form_post(request, RoadworkForm(request.POST, choose_organisation=choose), None)
    return _render_form(request, RoadworkForm(choose_organisation=choose), None)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def roadwork_edit(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    roadwork = _visible_roadwork(request, pk)
    if not permissions.can_edit_roadwork(request.user, roadwork):
        if permissions.is_own_organisation(request.user, roadwork):
            raise PermissionDenied(
                str(services.MSG_NOT_ALLOWED_EDIT_STATUS).format(status=roadwork.get_status_display())
            )
        raise PermissionDenied(services.MSG_NOT_ALLOWED_EDIT)
    choose = permissions.can_choose_organisation(request.user)
    if request.method == "POST":
        form = RoadworkForm(request.POST, choose_organisation=choose, roadwork=roadwork)
        return _handle_form_post(request, form, roadwork)
    return _render_form(request, RoadworkForm(choose_organisation=choose, roadwork=roadwork), roadwork)


# --- The application's page -------------------------------------------------------------------------------------


@dataclass
class StepOffer:
    """One workflow step offered as a button, with the fields it needs and what went wrong last time."""

    transition: workflow.Transition
    needs_comment: bool
    needs_override: bool
    blocking: int
    form: TransitionForm
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.transition.name

    @property
    def label(self) -> str:
        return str(self.transition.label)

    @property
    def is_primary(self) -> bool:
        return self.transition.name in ("submit", "resubmit", "approve", "approve_emergency", "start", "complete")

    @property
    def is_destructive(self) -> bool:
        return self.transition.name in ("refuse", "refuse_emergency", "cancel", "revoke")


@dataclass
class ConflictRow:
    conflict: Conflict
    severity_label: str
    status_label: str
    rule_explanation: str
    sides: list[dict[str, Any]]


def _conflict_rows(
    user: User | None, conflicts: list[Conflict], *, seen_from: Roadwork | None = None
) -> list[ConflictRow]:
    """Conflicts with their sides named: works (linked when the user may open them) or a layer item."""
    roadwork_ids = {c.roadwork_a_id for c in conflicts} | {c.roadwork_b_id for c in conflicts if c.roadwork_b_id}
    visible = page_selectors.visible_roadwork_ids(user, roadwork_ids)
    items = page_selectors.layer_items({(c.layer, c.layer_object_id) for c in conflicts if c.roadwork_b_id is None})
    rows = []
    for conflict in conflicts:
        works = [conflict.roadwork_a] + ([conflict.roadwork_b] if conflict.roadwork_b_id else [])
        sides: list[dict[str, Any]] = []
        for work in works:
            if seen_from is not None and work.pk == seen_from.pk:
                continue
            sides.append(
                {
                    "kind": "roadwork",
                    "reference": work.reference,
                    "title": work.title if work.pk in visible else "",
                    "organisation": work.organisation.name,
                    "url": reverse("roadworks:detail", kwargs={"pk": work.pk}) if work.pk in visible else "",
                }
            )
        if conflict.roadwork_b_id is None:
            item = items[(conflict.layer, conflict.layer_object_id)]
            sides.append({"kind": "layer", "layer": item.layer_label, "name": item.name})
        rows.append(
            ConflictRow(
                conflict=conflict,
                severity_label=conflict.get_severity_display(),
                status_label=conflict.get_status_display(),
                rule_explanation=str(RULE_EXPLANATIONS.get(conflict.rule, "")),
                sides=sides,
            )
        )
    return rows


def _step_offers(
    user: User | None,
    roadwork: Roadwork,
    *,
    failed: str | None = None,
    failed_form: TransitionForm | None = None,
    errors: list[str] | None = None,
) -> list[StepOffer]:
    if user is None:
        return []
    offers = []
    blocking: int | None = None
    for transition in workflow.available(user=user, roadwork=roadwork, now=timezone.now()):
        needs_override = False
        if transition.conflict_guard:
            if blocking is None:
                blocking = len(workflow.blocking_conflicts(roadwork))
            needs_override = blocking > 0
        form = (
            failed_form
            if failed == transition.to and failed_form is not None
            else TransitionForm(initial={"to": transition.to, "version": roadwork.version}, auto_id=False)
        )
        offers.append(
            StepOffer(
                transition=transition,
                needs_comment=transition.comment_required,
                needs_override=needs_override,
                blocking=blocking or 0,
                form=form,
                errors=(errors or []) if failed == transition.to else [],
            )
        )
    return offers


def _history_rows(roadwork: Roadwork) -> list[dict[str, Any]]:
    rows = []
    for step in selectors.roadwork_history(roadwork):
        by = step.by
        rows.append(
            {
                "at": step.at,
                "action": workflow.label_of(step.action),
                "from": RoadworkStatus(step.from_status).label if step.from_status in RoadworkStatus.values else "",
                "to": RoadworkStatus(step.to_status).label
                if step.to_status in RoadworkStatus.values
                else step.to_status,
                "by": (by.get_full_name() or by.get_username()) if by else "",
                "by_organisation": by.organisation.name if by and by.organisation else "",
                "comment": step.comment,
                "override": step.override,
            }
        )
    return rows


def _render_detail(
    request: HttpRequest,
    roadwork: Roadwork,
    *,
    status: int = 200,
    failed_step: str | None = None,
    failed_step_form: TransitionForm | None = None,
    step_errors: list[str] | None = None,
    attachment_form: AttachmentForm | None = None,
) -> HttpResponse:
    user = _user(request)
    internals = permissions.can_see_internals(user, roadwork)
    conflicts = list(page_selectors.conflicts_of_roadwork(user, roadwork))
    detours = list(roadwork.detours.all())
    map_data = _collection(
        _feature(roadwork.geometry, role="works", name=roadwork.title),
        *(_feature(detour.geometry, role="detour", name=detour.name) for detour in detours),
        _feature(roadwork.pedestrian_route, role="pedestrian", name=str(_("Pedestrian route")))
        if roadwork.pedestrian_route
        else None,
    )
    can_attach = user is not None and permissions.can_add_attachment(user, roadwork)
    steps = _step_offers(user, roadwork, failed=failed_step, failed_form=failed_step_form, errors=step_errors)
    context = {
        "roadwork": roadwork,
        "detours": detours,
        "internals": internals,
        "overdue": workflow.is_overdue(roadwork, timezone.localdate()),
        "weekdays_text": _weekdays_text(roadwork.weekdays),
        "conflicts": _conflict_rows(user, conflicts, seen_from=roadwork),
        "attachments": list(roadwork.attachments.select_related("uploaded_by")) if internals else [],
        "attachment_form": (attachment_form or AttachmentForm()) if can_attach else None,
        "history": _history_rows(roadwork) if internals else [],
        # Field by field, with conflicts, from the trigger-written history (auman.history).
        "changes": history.history_of_roadwork(roadwork.pk, user=user) if internals else [],
        "steps": steps,
        # A step that is not offered (any more, or never was): its message goes above the steps.
        "step_errors": step_errors if step_errors and not any(o.errors for o in steps) else [],
        "can_edit": user is not None and permissions.can_edit_roadwork(user, roadwork),
        "map_config": {**_map_settings(), "features": map_data, "strings": _map_strings()},
        "map_roles": ["works"]
        + (["detour"] if detours else [])
        + (["pedestrian"] if roadwork.pedestrian_route else []),
    }
    return render(request, "roadworks/roadwork_detail.html", context, status=status)


def _map_strings() -> dict[str, str]:
    return {
        "mapLabel": _("Map of the works"),
        "works": _("Works area"),
        "detour": _("Detour"),
        "pedestrian": _("Pedestrian route"),
        "otherWorks": _("Other works"),
        "place": _("Overlap"),
        "layerItem": _("Layer item"),
    }


def roadwork_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    return _render_detail(request, _visible_roadwork(request, pk))


@login_required
@require_POST
def roadwork_step(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    """Take one workflow step from the detail page (POST: to, version, comment, override_reason)."""
    roadwork = _visible_roadwork(request, pk)
    form = TransitionForm(request.POST, auto_id=False)
    to = request.POST.get("to", "")
    if not form.is_valid():
        errors = [message for messages_ in form.errors.values() for message in messages_]
        return _render_detail(request, roadwork, status=400, failed_step=to, failed_step_form=form, step_errors=errors)
    data = form.cleaned_data
    try:
        updated = services.roadwork_transition(
            user=request.user,
            roadwork_id=roadwork.pk,
            to_status=data["to"],
            comment=data["comment"],
            override_reason=data["override_reason"],
            expected_version=data["version"],
        )
    except ConcurrentEditError:
        failure = (409, [str(MSG_STALE_STEP)])
    except workflow.TransitionError as exc:
        message = str(MSG_OVERRIDE_REASON).format(count=len(exc.conflicts)) if exc.conflicts else str(exc)
        failure = (409, [message])
    except ValidationError as exc:
        failure = (400, exc.messages)
    except PermissionDenied as exc:
        failure = (403, [str(exc) or _("You may not do this.")])
    else:
        messages.success(request, str(MSG_STEP_DONE).format(status=updated.get_status_display()))
        return redirect("roadworks:detail", pk=updated.pk)
    status, errors = failure
    messages.error(request, MSG_STEP_FAILED)
    # Shown against the state as it is now (a refused approval may have found new conflicts meanwhile).
    roadwork = _visible_roadwork(request, pk)
    return _render_detail(
        request, roadwork, status=status, failed_step=data["to"], failed_step_form=form, step_errors=errors
    )


@login_required
@require_POST
def roadwork_attachment_upload(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    roadwork = _visible_roadwork(request, pk)
    if not permissions.can_add_attachment(request.user, roadwork):
        raise PermissionDenied(services.MSG_NOT_ALLOWED_ATTACH)
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            attachment = services.roadwork_attachment_add(
                user=request.user,
                roadwork_id=roadwork.pk,
                uploaded_file=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
            )
        except (services.AttachmentTooLarge, services.AttachmentTypeNotAllowed) as exc:
            form.add_error("file", str(exc))
        except ValidationError as exc:
            for name, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [("file", exc.messages)]:
                form.add_error(name if name in form.fields else None, errors)
        else:
            messages.success(request, str(MSG_ATTACHMENT_ADDED).format(name=attachment.original_name))
            return redirect(reverse("roadworks:detail", kwargs={"pk": roadwork.pk}) + "#attachments")
    messages.error(request, MSG_ATTACHMENT_FAILED)
    return _render_detail(request, roadwork, status=400, attachment_form=form)


# --- The coordinator's dashboard ---------------------------------------------------------------------------------


def authority_page(view):
    """Logged in (else to the login page) and the permit authority (else 403)."""

    @login_required
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_list_overdue(request.user):
            raise PermissionDenied(MSG_AUTHORITY_ONLY)
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@authority_page
@require_http_methods(["GET", "HEAD"])
def coordination_dashboard(request: HttpRequest) -> HttpResponse:
    """Decisions overdue and due, unsettled conflicts (errors first), counts."""
    today = timezone.localdate()
    conflicts = list(page_selectors.conflicts_unsettled(request.user)[: page_selectors.DASHBOARD_MAX_CONFLICTS])
    counts = page_selectors.dashboard_counts(user=request.user, today=today)
    context = {
        "today": today,
        "overdue": list(page_selectors.roadworks_overdue_for_dashboard(today=today)),
        "due": list(page_selectors.roadworks_awaiting_decision(today=today)),
        "conflicts": _conflict_rows(request.user, conflicts),
        "conflicts_shown": len(conflicts),
        "counts": counts,
        "severity_counts": [
            {"code": severity.value, "label": severity.label, "count": counts["conflicts"][severity.value]}
            for severity in Severity
        ],
        "timeline_url": reverse("roadworks:timeline"),
    }
    return render(request, "roadworks/dashboard.html", context)


# --- A conflict ---------------------------------------------------------------------------------------------------


@dataclass
class ConflictStepOffer:
    transition: workflow.ConflictTransition
    label: str
    help: str
    form: ConflictStatusForm
    errors: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.transition.name


def _conflict_steps(
    user: User,
    conflict: Conflict,
    *,
    failed: str | None = None,
    form: ConflictStatusForm | None = None,
    errors: list[str] | None = None,
) -> list[ConflictStepOffer]:
    roles = workflow.conflict_takers(user, conflict)
    offers = []
    for transition in workflow.CONFLICT_TRANSITIONS:
        if conflict.status not in transition.sources or not roles & transition.takers:
            continue
        is_failed = failed == transition.to and form is not None
        offers.append(
            ConflictStepOffer(
                transition=transition,
                label=str(CONFLICT_STEP_LABELS.get(transition.name, transition.name)),
                help=str(CONFLICT_STEP_HELP.get(transition.name, "")),
                form=form if is_failed else ConflictStatusForm(initial={"status": transition.to}, auto_id=False),
                errors=(errors or []) if is_failed else [],
            )
        )
    return offers


def _visible_conflict(request: HttpRequest, pk: int) -> Conflict:
    queryset = selectors.conflicts_visible_to(request.user).select_related(
        "roadwork_a__organisation", "roadwork_b__organisation", "status_changed_by"
    )
    return get_object_or_404(queryset, pk=pk)


def _render_conflict(
    request: HttpRequest,
    conflict: Conflict,
    *,
    status: int = 200,
    failed: str | None = None,
    form: ConflictStatusForm | None = None,
    errors: list[str] | None = None,
) -> HttpResponse:
    user = request.user
    row = _conflict_rows(user, [conflict])[0]
    visible = page_selectors.visible_roadwork_ids(
        user, {conflict.roadwork_a_id} | ({conflict.roadwork_b_id} if conflict.roadwork_b_id else set())
    )
    features: list[dict[str, Any] | None] = []
    for role, work in (("works", conflict.roadwork_a), ("otherWorks", conflict.roadwork_b)):
        # Another organisation's unpublished works stay where they are: only the overlap shows where they meet.
        if work is not None and work.pk in visible:
            features.append(_feature(work.geometry, role=role, name=f"{work.reference} {work.title}"))
    item = None
    if conflict.roadwork_b_id is None:
        item = page_selectors.layer_item(conflict.layer, conflict.layer_object_id)
        features.append(_feature(item.geometry, role="layerItem", name=f"{item.layer_label}: {item.name}"))
    features.append(_feature(conflict.place, role="place", name=str(_("Overlap"))))
    roles = [f["properties"]["role"] for f in features if f is not None]
    steps = _conflict_steps(user, conflict, failed=failed, form=form, errors=errors)
    context = {
        "conflict": conflict,
        "row": row,
        "layer_item": item,
        "severity_explanation": SEVERITY_EXPLANATIONS.get(conflict.severity, ""),
        "steps": steps,
        "step_errors": errors if errors and not any(o.errors for o in steps) else [],
        "map_config": {**_map_settings(), "features": _collection(*features), "strings": _map_strings()},
        "map_roles": roles,
    }
    return render(request, "roadworks/conflict_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD"])
def conflict_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_conflict(request, _visible_conflict(request, pk))


@login_required
@require_POST
def conflict_status(request: HttpRequest, pk: int) -> HttpResponse:
    conflict = _visible_conflict(request, pk)
    form = ConflictStatusForm(request.POST, auto_id=False)
    target = request.POST.get("status", "")
    if not form.is_valid():
        errors = [message for messages_ in form.errors.values() for message in messages_]
        return _render_conflict(request, conflict, status=400, failed=target, form=form, errors=errors)
    try:
        updated = services.conflict_set_status(
            user=request.user,
            conflict_id=conflict.pk,
            status=form.cleaned_data["status"],
            reason=form.cleaned_data["reason"],
        )
    except workflow.TransitionError as exc:
        failure = (409, [str(exc)])
    except ValidationError as exc:
        failure = (400, exc.messages)
    except PermissionDenied as exc:
        failure = (403, [str(exc) or _("You may not do this.")])
    else:
        messages.success(request, str(MSG_CONFLICT_STEP_DONE).format(status=ConflictStatus(updated.status).label))
        return redirect("roadworks:conflict", pk=updated.pk)
    status, errors = failure
    messages.error(request, MSG_STEP_FAILED)
    return _render_conflict(
        request, _visible_conflict(request, pk), status=status, failed=target, form=form, errors=errors
    )


# --- The timeline ---------------------------------------------------------------------------------------------------

TIMELINE_DEFAULT_WEEKS = 8
TIMELINE_MAX_WEEKS = 26
# The chart's drawing units (SVG viewBox): a label column, then the weeks.
CHART_LABEL_WIDTH = 280
CHART_WIDTH = 1000
CHART_ROW_HEIGHT = 26
CHART_HEADER_HEIGHT = 34
CHART_BAR_HEIGHT = 16


class TimelineForm(forms.Form):
    """The query string of /baustellen/zeitplan/ (German names: they appear in links people share)."""

    strasse = forms.CharField(label=gettext_lazy("Street"), max_length=100, required=False)
    stadtteil = forms.ChoiceField(label=gettext_lazy("District"), required=False)
    von = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy("Empty: this week's Monday."),
    )
    wochen = forms.IntegerField(
        label=gettext_lazy("Weeks"),
        required=False,
        min_value=1,
        max_value=TIMELINE_MAX_WEEKS,
        widget=forms.NumberInput(attrs={"inputmode": "numeric", "placeholder": str(TIMELINE_DEFAULT_WEEKS)}),
        help_text=format_lazy(gettext_lazy("Empty: {weeks}."), weeks=TIMELINE_DEFAULT_WEEKS),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stadtteil"].choices = [("", _("All districts"))] + [
            (name, name) for name in page_selectors.districts()
        ]


def _chart(rows: list[Roadwork], start: datetime, end: datetime, weeks: int, now: datetime) -> dict[str, Any]:
    """Positions of bars, week lines and today's line in the chart's drawing units, computed here so the template
    only places them (and no script is needed)."""
    span = (end - start).total_seconds()
    width = CHART_WIDTH - CHART_LABEL_WIDTH

    def x_of(moment: datetime) -> float:
        fraction = min(max((moment - start).total_seconds() / span, 0.0), 1.0)
        return round(CHART_LABEL_WIDTH + fraction * width, 1)

    bars = []
    for index, work in enumerate(rows):
        x1, x2 = x_of(work.period.lower), x_of(work.period.upper)
        y = CHART_HEADER_HEIGHT + index * CHART_ROW_HEIGHT
        bars.append(
            {
                "work": work,
                "x": x1,
                "width": max(round(x2 - x1, 1), 2.0),
                "y": y + (CHART_ROW_HEIGHT - CHART_BAR_HEIGHT) / 2,
                "text_y": y + CHART_ROW_HEIGHT / 2 + 4,
                "row_y": y,
                "impact": work.impact,
                "pending": work.status in (RoadworkStatus.SUBMITTED, RoadworkStatus.MODIFICATION_REQUESTED),
                "label": f"{work.reference} {work.title}",
            }
        )
    ticks = []
    for week in range(weeks + 1):
        moment = start + timedelta(weeks=week)
        ticks.append({"x": x_of(moment), "date": moment, "last": week == weeks})
    height = CHART_HEADER_HEIGHT + max(len(rows), 1) * CHART_ROW_HEIGHT + 4
    return {
        "bars": bars,
        "ticks": ticks,
        "today_x": x_of(now) if start <= now <= end else None,
        "width": CHART_WIDTH,
        "height": height,
        "label_width": CHART_LABEL_WIDTH,
        "bar_height": CHART_BAR_HEIGHT,
        "header_height": CHART_HEADER_HEIGHT,
        "label_x": 6,
        "label_max": CHART_LABEL_WIDTH - 12,
    }


@require_http_methods(["GET", "HEAD"])
def timeline(request: HttpRequest) -> HttpResponse:
    """Works on a street or in a district over the coming weeks, as a table and a bar chart.

    Everyone may look; each sees the works roadworks_visible_to allows (the public: approved, running, recently
    completed)."""
    user = _user(request)
    # Always bound: without parameters it shows every visible work of the coming weeks.
    form = TimelineForm(request.GET)
    valid = form.is_valid()
    values: dict[str, Any] = form.cleaned_data if valid else {}
    today = timezone.localdate()
    first_day = values.get("von") or today - timedelta(days=today.weekday())
    weeks = values.get("wochen") or TIMELINE_DEFAULT_WEEKS
    start = timezone.make_aware(datetime.combine(first_day, time.min))
    end = timezone.make_aware(datetime.combine(first_day + timedelta(weeks=weeks), time.min))
    street = values.get("strasse") or ""
    district_name = values.get("stadtteil") or ""
    district = page_selectors.districts().get(district_name) if district_name else None
    rows: list[Roadwork] = []
    total = 0
    if valid:
        queryset = page_selectors.roadworks_timeline(user=user, start=start, end=end, street=street, district=district)
        rows = list(queryset[: page_selectors.TIMELINE_MAX_ROWS])
        total = len(rows) if len(rows) < page_selectors.TIMELINE_MAX_ROWS else queryset.count()
    for work in rows:
        work.weekdays_text = _weekdays_text(work.weekdays)
    context = {
        "form": form,
        "rows": rows,
        "total": total,
        "truncated": total > len(rows),
        "start": start,
        "end": end - timedelta(days=1),
        "weeks": weeks,
        "street": street,
        "district": district_name,
        "chart": _chart(rows, start, end, weeks, timezone.now()),
        "impacts": [{"code": impact.value, "label": impact.label} for impact in Impact],
        "public_only": user is None or not (user.is_staff_viewer or user.is_applicant),
    }
    return render(request, "roadworks/timeline.html", context, status=200 if valid else 400)


# --- The list of applications -----------------------------------------------------------------------------------


class ApplicationFilterForm(forms.Form):
    """The query string of /baustellen/ (German names, like the timeline's)."""

    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    suche = forms.CharField(
        label=gettext_lazy("Search"),
        max_length=100,
        required=False,
        help_text=gettext_lazy("Reference, title or street."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("All statuses")), *RoadworkStatus.choices]


@login_required
@require_http_methods(["GET", "HEAD"])
def application_list(request: HttpRequest) -> HttpResponse:
    """An applicant's applications (its organisation's), or all of them for the authority, newest change first."""
    if not permissions.can_list_applications(request.user):
        raise PermissionDenied(MSG_APPLICATIONS_ONLY)
    form = ApplicationFilterForm(request.GET)
    values: dict[str, Any] = form.cleaned_data if form.is_valid() else {}
    works = page_selectors.applications_for(request.user, status=values.get("status"), text=values.get("suche"))
    page = Paginator(works, page_selectors.APPLICATIONS_PER_PAGE).get_page(request.GET.get("seite"))
    query = request.GET.copy()
    query.pop("seite", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "all_organisations": request.user.is_authority,
        "can_create": permissions.can_create_roadwork(request.user),
    }
    return render(request, "roadworks/application_list.html", context)
