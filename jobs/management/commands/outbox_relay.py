"""Hand pending outbox messages to the broker now (the workers do it by themselves; this is for operators)."""

from django.core.management.base import BaseCommand

from jobs import outbox


class Command(BaseCommand):
    help = "Hands pending outbox messages to the broker now and reports what is still pending."

    def handle(self, *args, **options) -> None:
        sent = outbox.relay()
        pending = outbox.pending_count()
        self.stdout.write(f"sent: {sent}, still pending: {pending}")
        if pending:
            # Non-zero exit: a script or monitor sees that the broker is still not taking them.
            raise SystemExit(1)
