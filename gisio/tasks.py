"""Thin Celery tasks for the GIS import: take a primary key, call a service."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


# A retry only helps before the job is claimed (the database was away); once claimed, import_job_run ends the job
# as done or failed itself, and a repeated message does nothing.
@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=10)
def import_job_run_task(job_id: str) -> str | None:
    return services.import_job_run(job_id=job_id)
