"""/feeds/: the list of AUMAn's public feeds, for people (HTML) and for programs (JSON), read from the registry."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_safe

from .registry import FEEDS


def _wants_json(request: HttpRequest) -> bool:
    if request.GET.get("format") == "json":
        return True
    # A plain Accept: application/json (a script); a browser lists text/html first.
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def feed_list(request: HttpRequest) -> list[dict[str, Any]]:
    """Every registered feed with its absolute URL, in the registry's order; one without a URL yet is left out."""
    feeds = []
    for feed in FEEDS.values():
        try:
            url = request.build_absolute_uri(reverse(feed.url_name))
        except NoReverseMatch:
            continue
        feeds.append(
            {
                "key": feed.key,
                "title": str(feed.title),
                "format": feed.format,
                "url": url,
                "content_type": feed.content_type,
                "description": str(feed.description),
                # Every feed is built from the data on each request (see traffic/feeds/http.py): a change is in it
                # at once; clients and proxies may keep an answer this long.
                "max_age_seconds": settings.AUMAN_FEED_MAX_AGE,
            }
        )
    return feeds


@require_safe
def feed_index(request: HttpRequest) -> HttpResponse:
    filters = ["bbox", "updated_since", "active_on"]
    if _wants_json(request):
        feeds = feed_list(request)
        response: HttpResponse = JsonResponse(
            {"feeds": feeds, "filters": filters, "max_age_seconds": settings.AUMAN_FEED_MAX_AGE},
            json_dumps_params={"ensure_ascii": False},
        )
        response["Access-Control-Allow-Origin"] = "*"
    else:
        # German first, as on every page: /feeds/ follows Accept-Language for machines (the feeds and the JSON
        # here), but the page is for people, who choose another language with the switch (its cookie).
        language = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) or settings.LANGUAGE_CODE
        with translation.override(language):
            response = render(
                request,
                "feeds/index.html",
                {"feeds": feed_list(request), "max_age": settings.AUMAN_FEED_MAX_AGE, "filters": filters},
            )
    patch_vary_headers(response, ("Accept",))
    patch_cache_control(response, public=True, max_age=settings.AUMAN_FEED_MAX_AGE)
    return response
