"""manage.py poll_sources [--source NAME]: poll external sources now, whatever their interval."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from interop import services
from interop.models import ExternalSource


class Command(BaseCommand):
    help = "Poll the external sources now (all enabled ones, or one by name) and print what each poll did."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--source", help="the name of one source (polled even when disabled)")

    def handle(self, *args, source: str | None = None, **options) -> None:
        if source:
            sources = list(ExternalSource.objects.filter(name=source))
            if not sources:
                raise CommandError(f"No external source named {source!r}.")
        else:
            sources = list(ExternalSource.objects.filter(enabled=True).order_by("name"))
        failed = 0
        for item in sources:
            result = services.source_poll(source_id=item.pk, force=True)
            line = (
                f"{item.name}: {result.status}, {result.items} items "
                f"({result.created} new, {result.updated} changed, {result.removed} removed), "
                f"{len(result.skipped)} skipped"
            )
            if result.status == "error":
                failed += 1
                self.stderr.write(f"{line}: {result.error}")
            else:
                self.stdout.write(line)
        if failed:
            raise CommandError(f"{failed} of {len(sources)} sources failed.")
