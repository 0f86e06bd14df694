"""python manage.py compute_blackspots [--at DATE]: black spots by hand (Celery beat runs it nightly)."""

from __future__ import annotations

from datetime import datetime, time

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from traffic.blackspots import blackspots_compute


class Command(BaseCommand):
    help = "Recompute the accident black spots (Unfallhäufungsstellen) and their conflicts with roadworks now."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--at",
            metavar="DATE",
            help="compute as of this date (2024-01-01) or date and time, for example to look at imported years",
        )

    def handle(self, *args, **options) -> None:
        now = self._moment(options["at"]) if options["at"] else None
        try:
            result = blackspots_compute(now=now)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        for rule, count in result["rules"].items():
            self.stdout.write(f"{rule}: {count} black spots")
        conflicts = result["conflicts"]
        self.stdout.write(
            f"{result['created']} new, {result['kept']} kept, {result['deleted']} no longer hold; "
            f"conflicts C8: {conflicts['found']} hold, {conflicts['changed']} new or changed, "
            f"{conflicts['resolved']} resolved."
        )

    @staticmethod
    def _moment(value: str) -> datetime:
        try:
            moment = parse_datetime(value)
            day = parse_date(value) if moment is None else None
        except ValueError as exc:
            raise CommandError(f"--at: {exc}") from exc
        if moment is None and day is None:
            raise CommandError("--at takes a date (2024-01-01) or a date and time (2024-01-01T00:00:00+01:00)")
        if moment is None:
            moment = datetime.combine(day, time.min)
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
