"""Subscriptions for the public: an iCalendar feed of the roadworks on a street or in a district, and an Atom feed
of new incidents.

Both show only what the public may see (roadworks_visible_to(None), incidents_visible_to(None)). The calendar is
built once per change of its rows and language and served with ETag, like the traffic feeds (traffic.feeds.http).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.cache import patch_vary_headers
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from icalendar import Calendar, Event

from roadworks.models import Roadwork
from roadworks.selectors import roadworks_visible_to
from traffic.feeds.http import serve_feed
from traffic.models import ACTIVE_INCIDENT_STATUSES, Incident
from traffic.selectors import incidents_visible_to

from .models import District, normalise_street_name
from .tiles import TileParameterError, parse_district

MSG_STREET_OR_DISTRICT = gettext_lazy(
    "Give either street (a street name) or district (an id from /api/v1/districts/), not both."
)
MSG_STREET_LENGTH = gettext_lazy("A street name has at most {max} characters.")
STREET_MAX_LENGTH = 200
ATOM_ITEMS = 50
# The map opens at this zoom on an incident from the Atom feed (#map=zoom/lat/lon, as map.js reads it).
INCIDENT_LINK_ZOOM = 17
ICAL_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # Roadwork.weekdays: 0 = Monday
CALENDAR_CONTENT_TYPE = "text/calendar; charset=utf-8"


# --- iCalendar -------------------------------------------------------------------------------------------------


def calendar_roadworks(*, street: str = "", district: int | None = None) -> QuerySet[Roadwork]:
    """The public's roadworks on a street (any of a work's street names, folded like the street search: case,
    ß/ss, umlauts, 'str.', spaces and hyphens do not matter) or touching a district."""
    qs = roadworks_visible_to(None)
    if street:
        # street_keys holds each name folded by the same rules (auman_street_keys), so this is an exact match.
        qs = qs.filter(street_keys__contains=[normalise_street_name(street)])
    if district is not None:
        qs = qs.filter(geometry__intersects=District.objects.filter(pk=district).values("geometry")[:1])
    return qs.order_by("period__startswith", "reference")


def _fingerprint(qs: QuerySet[Roadwork]) -> str:
    """Changes when a roadwork of the calendar changes, appears or disappears (as traffic.feeds.wzdx does it)."""
    inner, params = (
        qs.order_by()
        .annotate(row_version=RawSQL("roadworks_roadwork.xmin::text::bigint", ()))
        .values("updated_at", "row_version")
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), max(r.updated_at), sum(r.row_version) FROM ({inner}) AS r", params)
        count, last_update, versions = cursor.fetchone()
    return f"{count}:{last_update.isoformat() if last_update else '-'}:{versions or 0}"


def _local(moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE))


def _first_window(roadwork: Roadwork) -> tuple[datetime, datetime] | None:
    """The first daily window of the work that reaches into its period: (start, end) in local time."""
    zone = ZoneInfo(settings.TIME_ZONE)
    start, end = roadwork.period.lower, roadwork.period.upper
    day: date = _local(start).date()
    last_day: date = _local(end).date()
    while day <= last_day:
        if not roadwork.weekdays or day.weekday() in roadwork.weekdays:
            window_start = datetime.combine(day, roadwork.daily_start, tzinfo=zone)
            window_end = datetime.combine(day, roadwork.daily_end, tzinfo=zone)
            if roadwork.daily_end < roadwork.daily_start:  # crosses midnight: belongs to the day it starts
                window_end = datetime.combine(day + timedelta(days=1), roadwork.daily_end, tzinfo=zone)
            if window_end > start and window_start < end:
                return window_start, window_end
        day += timedelta(days=1)
    return None


def _description(roadwork: Roadwork) -> str:
    period = roadwork.period
    lines = [
        roadwork.title,
        f"{_('Reference')}: {roadwork.reference}",
        f"{_('Traffic management')}: {roadwork.get_traffic_management_display()}",
        f"{_('Kind of works')}: {roadwork.get_work_kind_display()}",
        f"{_('Period')}: {formats.date_format(_local(period.lower), 'SHORT_DATETIME_FORMAT')} – "
        f"{formats.date_format(_local(period.upper), 'SHORT_DATETIME_FORMAT')}",
    ]
    if roadwork.daily_start is not None:
        window = f"{roadwork.daily_start:%H:%M}–{roadwork.daily_end:%H:%M}"
        lines.append(f"{_('Working hours')}: {window}")
    if roadwork.description:
        lines += ["", roadwork.description]
    return "\n".join(lines)


def _event(roadwork: Roadwork) -> Event:
    event = Event()
    # Stable across rebuilds and edits: calendar apps update the event instead of adding a second one.
    event.add("uid", f"roadwork-{roadwork.id}@auman")
    event.add("dtstamp", roadwork.updated_at)
    event.add("last-modified", roadwork.updated_at)
    event.add("sequence", roadwork.version)
    streets = ", ".join(roadwork.street_names)
    event.add("summary", f"{_('Roadwork')}: {roadwork.title}" + (f" ({streets})" if streets else ""))
    if streets:
        event.add("location", streets)
    event.add("description", _description(roadwork))
    event.add("status", "CONFIRMED")
    event.add("transp", "TRANSPARENT")  # a roadwork does not make the subscriber busy
    window = _first_window(roadwork) if roadwork.daily_start is not None else None
    if window is None:
        event.add("dtstart", roadwork.period.lower)
        event.add("dtend", roadwork.period.upper)
        return event
    # Working hours as a recurring event in local time (so 07:00 stays 07:00 across the change to summer time),
    # every day or on the work's weekdays, until the period ends. UNTIL is UTC, as RFC 5545 requires with a TZID.
    event.add("dtstart", window[0])
    event.add("dtend", window[1])
    rule: dict = {"freq": "daily", "until": roadwork.period.upper.astimezone(ZoneInfo("UTC"))}
    if roadwork.weekdays:
        rule = {
            "freq": "weekly",
            "byday": [ICAL_WEEKDAYS[d] for d in sorted(roadwork.weekdays)],
            "until": rule["until"],
        }
    event.add("rrule", rule)
    return event


def calendar_build(roadworks: QuerySet[Roadwork], *, name: str) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//AUMAn//Baustellen//DE")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    for roadwork in roadworks:
        calendar.add_component(_event(roadwork))
    calendar.add_missing_timezones()
    return calendar.to_ical()


@require_safe
def roadworks_calendar(request: HttpRequest) -> HttpResponse:
    """/abonnieren/baustellen.ics?street=<name> or ?district=<id>: the public's roadworks there, one VEVENT each."""
    street = request.GET.get("street", "").strip()
    raw_district = request.GET.get("district", "").strip()
    if bool(street) == bool(raw_district) or (street and not normalise_street_name(street)):
        return JsonResponse({"street": [str(MSG_STREET_OR_DISTRICT)]}, status=400)
    if len(street) > STREET_MAX_LENGTH:
        return JsonResponse({"street": [str(MSG_STREET_LENGTH).format(max=STREET_MAX_LENGTH)]}, status=400)
    try:
        district = parse_district(raw_district)
    except TileParameterError as exc:
        return JsonResponse(exc.errors, status=400)

    roadworks = calendar_roadworks(street=street, district=district)
    place = District.objects.values_list("name", flat=True).get(pk=district) if district is not None else street
    name = _("Roadworks in {city}: {place}").format(city=settings.AUMAN_CITY_NAME, place=place)
    language = get_language() or settings.LANGUAGE_CODE
    response = serve_feed(
        request,
        name="roadworks-ics",
        fingerprint=_fingerprint(roadworks),
        build=lambda now: calendar_build(roadworks, name=name),
        content_type=CALENDAR_CONTENT_TYPE,
        # Labels and the calendar's name are in the request's language.
        variant={"street": normalise_street_name(street), "district": str(district or ""), "language": language},
    )
    response["Content-Disposition"] = 'inline; filename="baustellen.ics"'
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response


# --- Atom ------------------------------------------------------------------------------------------------------


class IncidentsAtomFeed(Feed):
    """/abonnieren/ereignisse.atom: the newest incidents on the roads now, as the public sees them."""

    feed_type = Atom1Feed

    def title(self) -> str:
        return _("Traffic incidents in {city}").format(city=settings.AUMAN_CITY_NAME)

    def subtitle(self) -> str:
        return _("New accidents, breakdowns, obstructions and other incidents on the roads, newest first.")

    def link(self) -> str:
        return reverse("maps:index")

    def author_name(self) -> str:
        return settings.AUMAN_FEED_PUBLISHER

    def items(self) -> QuerySet[Incident]:
        return (
            incidents_visible_to(None)
            .filter(status__in=ACTIVE_INCIDENT_STATUSES)
            .order_by("-reported_at", "-created_at")[:ATOM_ITEMS]
        )

    def item_title(self, item: Incident) -> str:
        kind = item.get_kind_display()
        return f"{kind}: {item.street_name}" if item.street_name else str(kind)

    def item_description(self, item: Incident) -> str:
        # Plain text: the syndication framework escapes it for the feed.
        occurred = formats.date_format(timezone.localtime(item.occurred_at), "SHORT_DATETIME_FORMAT")
        lines = [f"{_('Occurred')}: {occurred}", f"{_('Status')}: {item.get_status_display()}"]
        if item.expected_clearance_at:
            clearance = formats.date_format(timezone.localtime(item.expected_clearance_at), "SHORT_DATETIME_FORMAT")
            lines.append(f"{_('Expected clearance')}: {clearance}")
        if item.description:
            lines.append(item.description)
        return "\n".join(lines)

    def item_link(self, item: Incident) -> str:
        point = item.location.transform(4326, clone=True)
        return f"{reverse('maps:index')}#map={INCIDENT_LINK_ZOOM}/{point.y:.5f}/{point.x:.5f}"

    def item_guid(self, item: Incident) -> str:
        return f"urn:uuid:{item.id}"

    item_guid_is_permalink = False

    def item_pubdate(self, item: Incident) -> datetime:
        return item.reported_at

    def item_updateddate(self, item: Incident) -> datetime:
        return item.updated_at

    def __call__(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().__call__(request, *args, **kwargs)
        patch_vary_headers(response, ("Accept-Language", "Cookie"))
        return response
