"""The header links to the roadworks pages, each shown only to those who may use it (permissions.py decides)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.translation import gettext as _

from roadworks import permissions

register = template.Library()


@register.inclusion_tag("roadworks/_nav.html", takes_context=True)
def roadworks_nav(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    path = getattr(request, "path", "")
    links: list[tuple[str, str]] = []
    if user is not None and user.is_authenticated:
        if permissions.can_list_overdue(user):
            links.append((reverse("roadworks:dashboard"), _("Coordination")))
        if permissions.can_list_applications(user):
            label = _("Applications") if user.is_authority else _("My applications")
            links.append((reverse("roadworks:applications"), label))
        if permissions.can_create_roadwork(user):
            links.append((reverse("roadworks:create"), _("New application")))
    # The timeline is public (each sees what they may see).
    links.append((reverse("roadworks:timeline"), _("Timeline")))
    return {"links": [{"url": url, "label": label, "current": path == url} for url, label in links]}
