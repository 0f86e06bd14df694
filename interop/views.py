"""The staff page /quellen/: each external source with its health."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from . import permissions, selectors

MSG_STAFF_ONLY = _("This page is for the authority, the police and the control room.")


@require_safe
@login_required
def source_list(request: HttpRequest) -> HttpResponse:
    if not permissions.can_see_source_health(request.user):
        raise PermissionDenied(MSG_STAFF_ONLY)
    return render(request, "interop/sources.html", {"sources": selectors.sources_with_health()})
