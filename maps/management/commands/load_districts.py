"""python manage.py load_districts: the city's districts from settings.AUMAN_DISTRICTS_FILE (idempotent).

Mannheim's file ships in the repository (auman/data/mannheim_districts.geojson, see auman/data/SOURCES.md);
another city points AUMAN_DISTRICTS_FILE, AUMAN_DISTRICTS_NAME_PROPERTY and AUMAN_DISTRICTS_NUMBER_PROPERTY at
its own.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from maps.services import districts_load


class Command(BaseCommand):
    help = "Load the city's districts (Stadtteile) from AUMAN_DISTRICTS_FILE; safe to run again."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", help="A GeoJSON FeatureCollection of polygons (default: AUMAN_DISTRICTS_FILE)")

    def handle(self, *args, **options) -> None:
        try:
            result = districts_load(path=options.get("file"))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            f"Districts: {result.created} new, {result.updated} changed, {result.unchanged} unchanged, "
            f"{result.deleted} removed."
        )
