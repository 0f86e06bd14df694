"""The relay loop every Celery worker runs, so pending outbox messages go out as soon as the broker is back.

Not a beat job alone: beat needs the same broker to send its jobs, and a site may run no beat at all. A worker is
the one process that is certainly running when tasks can be done, and it notices when the broker returns."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection

from . import outbox

logger = logging.getLogger(__name__)

_stop = threading.Event()


def relay_loop(stop: threading.Event, interval: float) -> None:
    runs = 0
    while not stop.wait(interval):
        try:
            close_old_connections()
            outbox.relay()
            runs += 1
            if runs % 1000 == 0:
                outbox.purge_sent()
        except Exception:  # database or broker down: try again at the next tick
            logger.warning("outbox relay failed; retrying in %s s", interval, exc_info=True)
            # A connection broken by a database restart is dropped, so the next tick connects afresh.
            connection.close()
    connection.close()


@worker_ready.connect
def start_relay_loop(sender=None, **kwargs) -> None:
    interval = settings.AUMAN_OUTBOX_RELAY_SECONDS
    if interval <= 0:
        return
    _stop.clear()
    thread = threading.Thread(target=relay_loop, args=(_stop, interval), name="outbox-relay", daemon=True)
    thread.start()
    logger.info("outbox relay runs every %s s", interval)


@worker_shutdown.connect
def stop_relay_loop(sender=None, **kwargs) -> None:
    _stop.set()
