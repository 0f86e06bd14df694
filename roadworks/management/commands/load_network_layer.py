"""python manage.py load_network_layer KIND FILE.geojson [--replace] [--strict]: tram and bus lines, stops and
emergency routes for rule C7 (roadworks/network_layers.py says what a file must hold)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from roadworks.models import NetworkKind
from roadworks.network_layers import NetworkFileError, network_layer_load, read_features
from roadworks.services import conflicts_sweep_rule


class Command(BaseCommand):
    help = "Load tram lines, bus lines, stops or emergency routes from a GeoJSON file (WGS84) and re-run rule C7."

    def add_arguments(self, parser) -> None:
        parser.add_argument("kind", choices=NetworkKind.values, help="What the file holds.")
        parser.add_argument("file", type=Path, help="A GeoJSON FeatureCollection in WGS84 (lon/lat).")
        parser.add_argument(
            "--replace", action="store_true", help="Remove the stored features of this kind that the file lacks."
        )
        parser.add_argument("--strict", action="store_true", help="Load nothing if any feature is rejected.")

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        try:
            features = read_features(options["file"])
            result = network_layer_load(
                kind=kind, features=features, replace=options["replace"], strict=options["strict"]
            )
        except NetworkFileError as exc:
            raise CommandError(str(exc)) from exc
        for line in result.rejected:
            self.stderr.write(f"rejected {line}")
        self.stdout.write(
            f"{kind}: {result.created} created, {result.updated} updated, {result.removed} removed, "
            f"{len(result.rejected)} rejected."
        )
        # Directly, not through Celery: the conflicts show at once, with or without a worker.
        sweep = conflicts_sweep_rule(code="C7")
        self.stdout.write(
            f"C7: {sweep['found']} conflicts hold; {sweep['changed']} new or changed, {sweep['resolved']} resolved."
        )
