"""python manage.py detect_conflicts: the full conflict sweep, by hand (Celery beat runs it periodically)."""

from django.core.management.base import BaseCommand

from roadworks.services import conflicts_sweep


class Command(BaseCommand):
    help = "Recompute every conflict between roadworks now."

    def handle(self, *args, **options) -> None:
        result = conflicts_sweep()
        self.stdout.write(
            f"{result['found']} conflicts hold; {result['changed']} new or changed, {result['removed']} removed."
        )
