"""python manage.py rebuild_accident_grid: rebuild the accident tiles' grid (maps/accident_grid.py) now."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from maps.accident_grid import accident_grid_rebuild


class Command(BaseCommand):
    help = "Rebuild the pre-aggregated accident grid that the accident tiles of low zooms read."

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        squares = accident_grid_rebuild()
        self.stdout.write(f"accident grid: {squares} squares in {time.monotonic() - started:.1f} s")
