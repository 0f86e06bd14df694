"""The Celery app `auman`: `celery -A auman worker` / `celery -A auman beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auman.settings")

app = Celery("auman")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
