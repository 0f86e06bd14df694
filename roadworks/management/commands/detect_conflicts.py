"""python manage.py detect_conflicts: the full conflict sweep, by hand (Celery beat runs it periodically)."""

from django.core.management.base import BaseCommand

from roadworks.services import conflicts_sweep_all


class Command(BaseCommand):
    help = "Recompute every conflict of every rule now."

    def handle(self, *args, **options) -> None:
        for rule, result in conflicts_sweep_all().items():
            self.stdout.write(
                f"{rule}: {result['found']} conflicts hold; {result['changed']} new or changed, "
                f"{result['resolved']} resolved (no longer hold)."
            )
