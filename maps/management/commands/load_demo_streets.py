"""python manage.py load_demo_streets: the demo city's main streets, so naming and street search work at once.

Loads maps/data/mannheim_streets.geojson (OpenStreetMap ways, see maps/data/SOURCES.md) the way import_osm
loads a real extract: matched by OSM way id, so it is idempotent and a later real import simply updates the
same rows. Streets outside the configured service area are skipped, so another city's installation gets none.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from maps.osm import streets_load_geojson

from .import_osm import report

DEMO_STREETS_FILE = Path(__file__).resolve().parents[2] / "data" / "mannheim_streets.geojson"


class Command(BaseCommand):
    help = "Load the demo streets (Mannheim's main streets from OpenStreetMap) into the street network."

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            result = streets_load_geojson(path=DEMO_STREETS_FILE)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(report(result, time.monotonic() - started))
