"""The application form of the pages (/baustellen/neu/, /baustellen/<id>/bearbeiten/) and the small forms of the
detail and conflict pages.

The form checks what a person typed (types, ranges, a period that ends after it starts, geometry drawn on the map);
the services check everything again and have the last word: the views map their errors back onto these fields.
The works area and the detours arrive as GeoJSON (WGS84) in hidden inputs that roadwork_form.js writes; they go
through auman.geo like the API's geometry, so the page cannot store what the API would refuse.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils.dates import WEEKDAYS as WEEKDAY_NAMES
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from auman.api import MAX_YEAR, MIN_YEAR, MSG_PERIOD_ORDER, MSG_YEAR_RANGE
from auman.geo import WGS84, clean_geometry, parse_geojson_geometry

from .api import MAX_DETOURS
from .models import (
    DETOUR_TYPES,
    LINE_AND_AREA_TYPES,
    PEDESTRIAN_ROUTE_TYPES,
    AttachmentKind,
    Detour,
    Direction,
    Roadwork,
    TrafficManagement,
    WorkKind,
)
from .services import MSG_DAILY_WINDOW_EMPTY, MSG_DAILY_WINDOW_INCOMPLETE

MSG_GEOMETRY_REQUIRED = _("Draw the works area on the map, or find a street above and use it as the works area.")
MSG_DETOURS_MALFORMED = _("The detours could not be read. Draw them on the map again.")
MSG_DETOURS_TOO_MANY = _("At most {limit} detours per application.")
MSG_DETOUR_INVALID = _("Detour {number}: {message}")
MSG_DETOUR_NAME_TOO_LONG = _("Detour {number}: the name has at most 200 characters.")
MSG_STREET_NAME_TOO_LONG = _("A street name has at most 200 characters: {name}")
MSG_STREET_NAMES_TOO_MANY = _("At most 20 street names.")
MSG_PEDESTRIAN_ROUTE_INVALID = _("Pedestrian route: {message}")
MSG_VERSION_MISSING = _("The form is incomplete (its version is missing). Open the application again.")
DEFAULT_DETOUR_NAME = _("Detour {number}")

MAX_STREET_NAMES = 20
# Geometry in WGS84 with 7 decimals is about a centimetre: plenty for a works area, and short in the page.
GEOJSON_PRECISION = 7

# datetime-local sends "2027-03-01T07:00" (seconds only when the step asks for them); parsed in the current time
# zone (Europe/Berlin), as a person on this page means it.
DATETIME_LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


def geometry_to_geojson(geometry: GEOSGeometry | None) -> dict[str, Any] | None:
    """A stored geometry (storage SRID) as a GeoJSON geometry object in WGS84, for the maps of the pages."""
    if geometry is None:
        return None
    wgs84 = geometry.transform(WGS84, clone=True) if geometry.srid != WGS84 else geometry
    data = json.loads(wgs84.json)

    def round_coordinates(value: Any) -> Any:
        if isinstance(value, list):
            return [round_coordinates(item) for item in value]
        return round(value, GEOJSON_PRECISION) if isinstance(value, float) else value

    if "coordinates" in data:
        data["coordinates"] = round_coordinates(data["coordinates"])
    return data


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format=DATETIME_LOCAL_FORMATS[0])


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%H:%M")


def _in_year_range(value: datetime | None) -> None:
    if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValidationError(MSG_YEAR_RANGE)


class RoadworkForm(forms.Form):
    """All fields of an application. `organisation` is offered to the authority only (applicants act for their own)."""

    organisation = forms.ModelChoiceField(
        label=_("Applicant organisation"),
        queryset=Organisation.objects.exclude(kind__in=[Organisation.Kind.POLICE]).order_by("name"),
        empty_label=_("Choose …"),
    )
    title = forms.CharField(
        label=_("Title"), max_length=200, help_text=_("Short and specific, e.g. 'Gas main renewal Kaiserring'.")
    )
    purpose = forms.CharField(
        label=_("Purpose of the works"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    description = forms.CharField(
        label=_("Description"), max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    work_kind = forms.ChoiceField(label=_("Kind of works"), choices=WorkKind.choices, initial=WorkKind.OTHER)
    excavation = forms.BooleanField(label=_("The works dig up the road or footway (excavation)"), required=False)

    street_names = forms.CharField(
        label=_("Street names"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
        help_text=_("One street per line. The street search above adds streets here."),
    )
    geometry = forms.CharField(required=False, widget=forms.HiddenInput)
    detours = forms.CharField(required=False, widget=forms.HiddenInput)
    # With a footway closure: the route pedestrians take, a line drawn on the map like a detour.
    pedestrian_route = forms.CharField(required=False, widget=forms.HiddenInput)
    # Only when the application is created: emergency works run at once and are decided afterwards.
    is_emergency = forms.BooleanField(
        label=_("Emergency works (already running; the authority decides afterwards)"), required=False
    )

    period_start = forms.DateTimeField(
        label=_("Start"), input_formats=DATETIME_LOCAL_FORMATS, widget=DateTimeLocalInput()
    )
    period_end = forms.DateTimeField(label=_("End"), input_formats=DATETIME_LOCAL_FORMATS, widget=DateTimeLocalInput())
    daily_start = forms.TimeField(
        label=_("Daily from"),
        required=False,
        widget=TimeInput(),
        help_text=_(
            "Only if the works take up road space at certain hours; a window may cross midnight (20:00-05:00)."
        ),
    )
    daily_end = forms.TimeField(label=_("Daily until"), required=False, widget=TimeInput())
    weekdays = forms.TypedMultipleChoiceField(
        label=_("Working days"),
        choices=[(day, name) for day, name in WEEKDAY_NAMES.items()],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every day."),
    )

    traffic_management = forms.ChoiceField(
        label=_("Traffic management"), choices=TrafficManagement.choices, initial=TrafficManagement.LANE_CLOSURE
    )
    direction = forms.ChoiceField(label=_("Direction affected"), choices=Direction.choices, initial=Direction.BOTH)
    lanes_affected = forms.IntegerField(label=_("Lanes affected"), required=False, min_value=0, max_value=20)
    max_width_m = forms.DecimalField(
        label=_("Width limit (m)"), required=False, max_digits=4, decimal_places=2, min_value=Decimal("0.01")
    )
    max_height_m = forms.DecimalField(
        label=_("Height limit (m)"), required=False, max_digits=4, decimal_places=2, min_value=Decimal("0.01")
    )
    max_weight_t = forms.DecimalField(
        label=_("Weight limit (t)"), required=False, max_digits=5, decimal_places=2, min_value=Decimal("0.01")
    )
    # The same range as the database constraint roadwork_speed_limit_range.
    speed_limit_kmh = forms.IntegerField(label=_("Speed limit (km/h)"), required=False, min_value=5, max_value=130)

    contact_name = forms.CharField(
        label=_("Contact (office or site manager)"),
        max_length=200,
        required=False,
        help_text=_("A business contact for the works, not a private person."),
    )
    contact_phone = forms.CharField(label=_("Contact phone"), max_length=64, required=False)
    contact_email = forms.EmailField(label=_("Contact e-mail"), required=False)

    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    # Service field names whose messages belong to another form field (the rest map by name or to the top).
    SERVICE_FIELD_MAP = {"period": "period_end"}

    def __init__(
        self,
        *args: Any,
        choose_organisation: bool,
        roadwork: Roadwork | None = None,
        **kwargs: Any,
    ) -> None:
        self.roadwork = roadwork
        if roadwork is not None and "initial" not in kwargs:
            kwargs["initial"] = self.initial_from(roadwork)
        super().__init__(*args, **kwargs)
        if not choose_organisation:
            del self.fields["organisation"]
        if roadwork is not None:
            # Fixed once the work exists (services.MSG_EMERGENCY_FIXED); the page shows it as text.
            del self.fields["is_emergency"]
        # Detours the form does not show (description, period) are carried over by id when saved.
        self._existing_detours: dict[int, Detour] = (
            {detour.pk: detour for detour in roadwork.detours.all()} if roadwork is not None else {}
        )
        self.fields["street_names"].widget.attrs["maxlength"] = MAX_STREET_NAMES * 201

    @staticmethod
    def initial_from(roadwork: Roadwork) -> dict[str, Any]:
        detours = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"id": detour.pk, "name": detour.name},
                    "geometry": geometry_to_geojson(detour.geometry),
                }
                for detour in roadwork.detours.all()
            ],
        }
        initial: dict[str, Any] = {
            name: getattr(roadwork, name)
            for name in (
                "title",
                "purpose",
                "description",
                "work_kind",
                "excavation",
                "traffic_management",
                "direction",
                "lanes_affected",
                "max_width_m",
                "max_height_m",
                "max_weight_t",
                "speed_limit_kmh",
                "contact_name",
                "contact_phone",
                "contact_email",
                "daily_start",
                "daily_end",
                "weekdays",
                "version",
            )
        }
        initial.update(
            organisation=roadwork.organisation_id,
            street_names="\n".join(roadwork.street_names),
            geometry=json.dumps(geometry_to_geojson(roadwork.geometry)),
            detours=json.dumps(detours),
            pedestrian_route=(
                json.dumps(geometry_to_geojson(roadwork.pedestrian_route)) if roadwork.pedestrian_route else ""
            ),
            period_start=roadwork.period.lower,
            period_end=roadwork.period.upper,
        )
        return initial

    # --- Field checks -----------------------------------------------------------------------------------------

    def clean_street_names(self) -> list[str]:
        raw = self.cleaned_data.get("street_names") or ""
        names: list[str] = []
        for line in raw.replace(";", "\n").splitlines():
            name = " ".join(line.split())
            if not name or name in names:
                continue
            if len(name) > 200:
                raise ValidationError(str(MSG_STREET_NAME_TOO_LONG).format(name=name[:40] + "…"))
            names.append(name)
        if len(names) > MAX_STREET_NAMES:
            raise ValidationError(MSG_STREET_NAMES_TOO_MANY)
        return names

    def clean_geometry(self) -> GEOSGeometry:
        raw = (self.cleaned_data.get("geometry") or "").strip()
        if not raw or raw == "null":
            raise ValidationError(MSG_GEOMETRY_REQUIRED)
        return clean_geometry(parse_geojson_geometry(raw), allowed_types=LINE_AND_AREA_TYPES)

    def clean_detours(self) -> list[dict[str, Any]]:
        raw = (self.cleaned_data.get("detours") or "").strip()
        if not raw:
            return []
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ValidationError(MSG_DETOURS_MALFORMED) from exc
        features = data.get("features") if isinstance(data, dict) else data
        if not isinstance(features, list) or not all(isinstance(item, dict) for item in features):
            raise ValidationError(MSG_DETOURS_MALFORMED)
        if len(features) > MAX_DETOURS:
            raise ValidationError(str(MSG_DETOURS_TOO_MANY).format(limit=MAX_DETOURS))
        detours: list[dict[str, Any]] = []
        for number, feature in enumerate(features, start=1):
            properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
            try:
                geometry = clean_geometry(parse_geojson_geometry(feature.get("geometry")), allowed_types=DETOUR_TYPES)
            except ValidationError as exc:
                message = " ".join(exc.messages)
                raise ValidationError(str(MSG_DETOUR_INVALID).format(number=number, message=message)) from exc
            name = " ".join(str(properties.get("name") or "").split()) or str(DEFAULT_DETOUR_NAME).format(number=number)
            if len(name) > 200:
                raise ValidationError(str(MSG_DETOUR_NAME_TOO_LONG).format(number=number))
            detour: dict[str, Any] = {"name": name, "geometry": geometry, "description": "", "period": None}
            existing = (
                self._existing_detours.get(properties.get("id")) if isinstance(properties.get("id"), int) else None
            )
            if existing is not None:
                # The map draws only the line and the name: the rest stays, and the detour keeps its id.
                detour.update(id=existing.pk, description=existing.description, period=existing.period)
            detours.append(detour)
        return detours

    def clean_pedestrian_route(self) -> GEOSGeometry | None:
        raw = (self.cleaned_data.get("pedestrian_route") or "").strip()
        if not raw or raw == "null":
            return None
        try:
            return clean_geometry(parse_geojson_geometry(raw), allowed_types=PEDESTRIAN_ROUTE_TYPES)
        except ValidationError as exc:
            raise ValidationError(str(MSG_PEDESTRIAN_ROUTE_INVALID).format(message=" ".join(exc.messages))) from exc

    def clean_period_start(self) -> datetime:
        value = self.cleaned_data["period_start"]
        _in_year_range(value)
        return value

    def clean_period_end(self) -> datetime:
        value = self.cleaned_data["period_end"]
        _in_year_range(value)
        return value

    def clean_weekdays(self) -> list[int]:
        return sorted(set(self.cleaned_data.get("weekdays") or []))

    def clean_version(self) -> int | None:
        version = self.cleaned_data.get("version")
        if self.roadwork is not None and version is None:
            raise ValidationError(MSG_VERSION_MISSING)
        return version

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start is not None and end is not None and end <= start:
            self.add_error("period_end", MSG_PERIOD_ORDER)
        daily_start, daily_end = cleaned.get("daily_start"), cleaned.get("daily_end")
        if "daily_start" not in self.errors and "daily_end" not in self.errors:
            if (daily_start is None) != (daily_end is None):
                self.add_error("daily_end" if daily_end is None else "daily_start", MSG_DAILY_WINDOW_INCOMPLETE)
            elif daily_start is not None and daily_start == daily_end:
                self.add_error("daily_end", MSG_DAILY_WINDOW_EMPTY)
        return cleaned

    # --- To the services --------------------------------------------------------------------------------------

    def service_data(self) -> dict[str, Any]:
        """What roadwork_create / roadwork_update take, from a valid form."""
        cleaned = self.cleaned_data
        data = {
            name: cleaned[name]
            for name in (
                "title",
                "purpose",
                "description",
                "street_names",
                "geometry",
                "work_kind",
                "excavation",
                "traffic_management",
                "direction",
                "lanes_affected",
                "max_width_m",
                "max_height_m",
                "max_weight_t",
                "speed_limit_kmh",
                "contact_name",
                "contact_phone",
                "contact_email",
                "daily_start",
                "daily_end",
                "weekdays",
                "detours",
                "pedestrian_route",
            )
        }
        if "is_emergency" in self.fields and cleaned.get("is_emergency"):
            data["is_emergency"] = True
        data["period"] = DateTimeTZRange(cleaned["period_start"], cleaned["period_end"], "[)")
        if "organisation" in self.fields:
            data["organisation"] = cleaned["organisation"]
        return data

    def add_service_errors(self, error: ValidationError) -> None:
        """A service's ValidationError, each message beside the field it concerns (or above the form)."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for name, messages in error.message_dict.items():
            field = self.SERVICE_FIELD_MAP.get(name, name)
            self.add_error(field if field in self.fields else None, messages)


class AttachmentForm(forms.Form):
    """The traffic sign plan (or another file) for an application; roadwork_attachment_add checks the content."""

    file = forms.FileField(
        label=_("File (PDF, PNG or JPEG)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.png,.jpg,.jpeg,application/pdf,image/png,image/jpeg"}),
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=AttachmentKind.choices, initial=AttachmentKind.TRAFFIC_SIGN_PLAN)


class TransitionForm(forms.Form):
    """One workflow step offered on the detail page; the workflow decides whether it may be taken."""

    to = forms.CharField(max_length=32, widget=forms.HiddenInput)
    version = forms.IntegerField(widget=forms.HiddenInput)
    comment = forms.CharField(label=_("Comment"), max_length=2000, required=False, widget=forms.Textarea)
    override_reason = forms.CharField(
        label=_("Reason for the override"), max_length=2000, required=False, widget=forms.Textarea
    )


class ConflictStatusForm(forms.Form):
    status = forms.CharField(max_length=16, widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Reason"), max_length=2000, required=False, widget=forms.Textarea)
