"""python manage.py import_osm FILE.osm.pbf [--replace]: the street network from an OpenStreetMap extract."""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from maps.osm import DEFAULT_LOCATION_INDEX, ROAD_CLASSES, StreetImportResult, streets_import_osm


def report(result: StreetImportResult, seconds: float) -> str:
    return (
        f"{result.read} road ways read: {result.kept} streets in the service area "
        f"({result.created} new, {result.updated} changed, {result.unchanged} unchanged), "
        f"{result.outside} outside, {result.unnamed} without a name, {result.invalid} without a usable line; "
        f"{result.deleted} removed. {seconds:.1f} s."
    )


class Command(BaseCommand):
    help = (
        "Load the named streets that lie in or cross the service area from an OSM file (.osm.pbf, .osm, .opl). "
        f"Road classes: {', '.join(ROAD_CLASSES)}. Re-running updates the rows by OSM way id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="OSM extract, e.g. baden-wuerttemberg-latest.osm.pbf")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Also delete streets whose way is no longer in the file (or no longer in the service area).",
        )
        parser.add_argument(
            "--index",
            default=DEFAULT_LOCATION_INDEX,
            help="pyosmium node location index: flex_mem (default, in memory) or sparse_file_array,<file> (on disk).",
        )

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            result = streets_import_osm(
                path=options["file"], replace=options["replace"], location_index=options["index"]
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(report(result, time.monotonic() - started))
