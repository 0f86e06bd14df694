"""python manage.py import_unfallatlas FILE... [--region CODE ...]: Destatis Unfallatlas CSV files -> accidents.

The parsing and the rules (columns per year, time, keys) are in traffic/importers/unfallatlas.py.
"""

from __future__ import annotations

import argparse
import time

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from maps.accident_grid import accident_grid_rebuild_on_commit
from traffic.importers.unfallatlas import (
    ImportResult,
    Rejection,
    UnfallatlasFileError,
    UnfallatlasImporter,
    database_now,
    paths_checked,
    validate_region_codes,
)
from traffic.models import AccidentSource
from traffic.workzones import accidents_flag_work_zones


class _Unstyled:
    """stderr for the progress bar: no added line end (it redraws with \\r) and no error colour."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, style_func=lambda message: message, ending="")

    def flush(self) -> None:
        self.wrapper.flush()


class Command(BaseCommand):
    help = (
        "Import Destatis Unfallatlas CSV files (any year). Importing a file again adds nothing. "
        "Rows that cannot be read are listed on stderr with file, line and reason."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="Unfallatlas CSV files (unzipped)")
        parser.add_argument(
            "--region",
            action="extend",
            nargs="+",
            default=[],
            metavar="CODE",
            help="only these regions: 08 (Land), 082 (Regierungsbezirk), 08222 (Kreis), 08222000 (Gemeinde)",
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="rows per database batch (default 5000)")
        parser.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar on stderr (default: when stderr is a terminal)",
        )

    def handle(self, *args, **options) -> None:
        try:
            regions = validate_region_codes(options["region"])
            layouts = paths_checked(options["files"])
        except (ValueError, UnfallatlasFileError) as exc:
            raise CommandError(str(exc)) from exc
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")

        show_progress = options["progress"] if options["progress"] is not None else self.stderr.isatty()
        importer = UnfallatlasImporter(
            regions=regions,
            batch_size=options["batch_size"],
            on_reject=self._report_rejection,
            progress_stream=_Unstyled(self.stderr) if show_progress else None,
        )
        started_at = database_now()
        clock = time.perf_counter()
        total = ImportResult()
        for layout in layouts:
            result = importer.import_file(layout.path, layout)
            self.stdout.write(f"{layout.path}: {self._summary(result)}")
            total += result
        flagged = accidents_flag_work_zones(source=AccidentSource.UNFALLATLAS, created_since=started_at)
        if total.imported:
            # The accident tiles of low zooms read a pre-aggregated grid; a worker rebuilds it (jobs outbox).
            accident_grid_rebuild_on_commit()
        seconds = time.perf_counter() - clock
        if len(layouts) > 1:
            self.stdout.write(f"All files: {self._summary(total)}")
        self.stdout.write(f"Work-zone crashes flagged: {flagged}. Took {seconds:.1f} s.")

    def _report_rejection(self, rejection: Rejection) -> None:
        self.stderr.write(f"rejected {rejection}")

    @staticmethod
    def _summary(result: ImportResult) -> str:
        return (
            f"read {result.read:,}, imported {result.imported:,}, already present {result.already_present:,}, "
            f"outside region {result.outside_region:,}, outside service area {result.outside_area:,}, "
            f"rejected {result.rejected:,}"
        )
