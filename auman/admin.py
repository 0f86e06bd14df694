"""Admin pieces shared by the apps: geometry forms that check like the API, and period display."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import ValidationError
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .geo import clean_geometry


def format_period(value: DateTimeTZRange | None) -> str:
    """A range as 'start – end' in local time; an open end reads as 'open'."""
    if value is None or value.isempty:
        return "–"

    def local(moment: Any) -> str:
        return timezone.localtime(moment).strftime("%d.%m.%Y %H:%M") if moment else str(_("open"))

    return f"{local(value.lower)} – {local(value.upper)}"


class ServiceAreaGeometryForm(forms.ModelForm):
    """ModelForm that checks its geometry fields like the API does: type, validity, size, service area.

    Subclasses name their geometry fields and the types each accepts in `geometry_types`.
    """

    geometry_types: ClassVar[dict[str, tuple[str, ...]]] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name, allowed_types in self.geometry_types.items():
            geom = cleaned.get(name)
            if not isinstance(geom, GEOSGeometry):
                continue  # empty, or already refused by the field itself
            try:
                cleaned[name] = clean_geometry(geom, allowed_types=allowed_types)
            except ValidationError as exc:
                self.add_error(name, exc)
        return cleaned
