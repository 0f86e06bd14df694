"""The accident commission's pages (/unfallkommission/): the list of black spots and its CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from . import blackspot_selectors as selectors
from . import permissions
from .blackspots import blackspot_rules
from .models import AccidentCategory, AccidentType, BlackSpot

MSG_COMMISSION_PAGES_ONLY = _("This page is for the accident commission: the authority, police and control room.")

SORT_CHOICES = [
    ("-score", _("Score, highest first")),
    ("score", _("Score, lowest first")),
    ("-count", _("Accidents, most first")),
    ("count", _("Accidents, fewest first")),
]

# The CSV's headers are German on purpose, whatever the page language: the file is a data format that the city's
# spreadsheets and macros read by column name, so the names must not change with Accept-Language.
CSV_TYPE_NAMES = {
    1: "Fahrunfall",
    2: "Abbiegen-Unfall",
    3: "Einbiegen/Kreuzen-Unfall",
    4: "Überschreiten-Unfall",
    5: "Unfall durch ruhenden Verkehr",
    6: "Unfall im Längsverkehr",
    7: "Sonstiger Unfall",
}
CSV_CATEGORY_NAMES = {
    1: "Getötete",
    2: "Schwerverletzte",
    3: "Leichtverletzte",
    4: "schwerwiegender Sachschaden",
    5: "sonstiger Sachschaden",
    6: "Sachschaden unter Einfluss berauschender Mittel",
}
CSV_HEADERS = [
    "Schlüssel",
    "Regel",
    "Unfalltyp",
    "Anzahl Unfälle",
    "Punktwert",
    "Zeitraum von",
    "Zeitraum bis",
    "Länge (WGS84)",
    "Breite (WGS84)",
    *(f"Typ {code} {name}" for code, name in CSV_TYPE_NAMES.items()),
    *(f"Kategorie {code} {name}" for code, name in CSV_CATEGORY_NAMES.items()),
    "Berechnet am",
    "Karte",
]
CSV_FILENAME = "unfallhaeufungsstellen.csv"


def commission_page(view):
    """Logged in (else to the login page) and on the commission (else 403)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not permissions.can_use_accident_commission_pages(request.user):
            raise PermissionDenied(MSG_COMMISSION_PAGES_ONLY)
        return view(request, *args, **kwargs)

    return wrapper


class BlackSpotListForm(forms.Form):
    rule = forms.ChoiceField(label=_("Rule"), required=False)
    sort = forms.ChoiceField(label=_("Order"), required=False, choices=SORT_CHOICES)

    def __init__(self, *args: Any, rules: Iterable, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = [("", _("All rules")), *((r.code, r.display_label) for r in rules)]


def _filtered(request: HttpRequest) -> tuple[BlackSpotListForm, list | None, list]:
    rules = blackspot_rules()
    form = BlackSpotListForm(request.GET, rules=rules)
    if not form.is_valid():
        return form, None, rules
    spots = selectors.black_spots_list(
        rule=form.cleaned_data["rule"] or None, sort=form.cleaned_data["sort"] or selectors.DEFAULT_SORT
    )
    return form, list(spots), rules


def map_url(spot: BlackSpot) -> str:
    """The map centred on the black spot (fragment #map=zoom/lat/lon, as openstreetmap.org writes it)."""
    return f"{reverse('maps:index')}#map=18/{spot.centre_wgs84.y:.5f}/{spot.centre_wgs84.x:.5f}"


def _counts(statistics: dict, key: str, choices) -> list[dict[str, Any]]:
    counts = statistics.get(key, {})
    return [
        {"code": choice.value, "label": choice.label, "count": counts.get(str(choice.value), 0)}
        for choice in choices
        if counts.get(str(choice.value))
    ]


@require_safe
@commission_page
def commission_list(request: HttpRequest) -> HttpResponse:
    form, spots, rules = _filtered(request)
    rows = [
        {
            "spot": spot,
            "map_url": map_url(spot),
            "by_type": _counts(spot.statistics, "by_type", AccidentType),
            "by_category": _counts(spot.statistics, "by_category", AccidentCategory),
        }
        for spot in spots or []
    ]
    labels = {rule.code: rule.display_label for rule in rules}
    for row in rows:
        row["rule_label"] = labels.get(row["spot"].rule, row["spot"].rule)
    context = {
        "form": form,
        "rows": rows,
        "rules": [{"code": r.code, "label": r.display_label, "description": r.describe()} for r in rules],
        "csv_url": f"{reverse('blackspots:csv')}?{request.GET.urlencode()}",
    }
    return render(request, "blackspots/commission.html", context, status=200 if spots is not None else 400)


def _decimal(value: float, places: int) -> str:
    # German Excel reads a decimal comma.
    return f"{value:.{places}f}".replace(".", ",")


def _date(value) -> str:
    return timezone.localtime(value).date().isoformat() if value else ""


def build_csv(spots: Iterable[BlackSpot]) -> bytes:
    """Semicolon-separated, UTF-8 with BOM, decimal commas: what German Excel opens without an import dialogue."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    for spot in spots:
        by_type = spot.statistics.get("by_type", {})
        by_category = spot.statistics.get("by_category", {})
        writer.writerow(
            [
                spot.key,
                spot.rule,
                CSV_TYPE_NAMES.get(spot.accident_type, "") if spot.accident_type else "",
                spot.accident_count,
                "" if spot.score is None else spot.score,
                _date(spot.period.lower),
                _date(spot.period.upper),
                _decimal(spot.centre_wgs84.x, 6),
                _decimal(spot.centre_wgs84.y, 6),
                *(by_type.get(str(code), 0) for code in CSV_TYPE_NAMES),
                *(by_category.get(str(code), 0) for code in CSV_CATEGORY_NAMES),
                timezone.localtime(spot.computed_at).strftime("%Y-%m-%d %H:%M"),
                f"{settings.SITE_URL}{map_url(spot)}",
            ]
        )
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


@require_safe
@commission_page
def commission_csv(request: HttpRequest) -> HttpResponse:
    form, spots, _rules = _filtered(request)
    if spots is None:
        lines = [f"{name}: {message}" for name, messages in form.errors.items() for message in messages]
        return HttpResponse("\n".join(lines) + "\n", status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(build_csv(spots), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{CSV_FILENAME}"'
    return response
