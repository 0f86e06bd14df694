"""German first: pages are German unless the user picked another language."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# API and feed clients choose their language with Accept-Language; people choose with the switch.
MACHINE_READABLE_PREFIXES = ("/api/", "/feeds/")


class GermanFirstMiddleware:
    """Pages ignore the browser's Accept-Language, so a German authority's English-configured browser
    still gets German; the language switch (a cookie) and API and feed clients' Accept-Language still count.

    Sits before django.middleware.locale.LocaleMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(MACHINE_READABLE_PREFIXES):
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
