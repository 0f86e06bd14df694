"""Bulk import of roadworks from a GeoJSON or GeoPackage file (a utility's annual plan): all or nothing.

Every feature goes through the same validation as POST /api/v1/roadworks/ (roadworks.api.RoadworkSerializer, then
roadworks.services.roadwork_create with its model and workflow checks): no rule is repeated here. All features are
created inside one transaction, each in a savepoint so one bad feature does not hide the next one's problems; if any
feature is rejected, or on a dry run, the whole transaction is rolled back (and the conflict detection each creation
queued on commit never runs). The report lists every rejected feature with its index, id and the reasons.

Besides the API's own property names, two flat spellings that GIS files need are accepted, the same names the
export writes: starts_at + ends_at (for period) and streets ("A; B", for street_names); weekdays may be "0,1,2".

A file of more than AUMAN_IMPORT_SYNC_FEATURES features does not fit a web request (about 30 ms per feature, and
gunicorn ends a worker after 30 s): roadworks_import_start keeps it as an ImportJob and queues it through the jobs
outbox; a Celery worker runs it with import_job_run, the same roadworks_import as the synchronous path.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.gis.gdal import SpatialReference
from django.contrib.gis.geos import GEOSGeometry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.functions import Now
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from pyogrio.errors import DataLayerError, DataSourceError
from pyogrio.raw import read as ogr_read

from accounts.models import Organisation, User
from auman.geo import WGS84
from jobs import outbox
from roadworks import permissions as roadwork_permissions
from roadworks.api import RoadworkSerializer
from roadworks.services import roadwork_create

from .models import ImportJob, ImportJobStatus

logger = logging.getLogger(__name__)

MSG_FILE_UNREADABLE = _("The file is neither GeoJSON nor a GeoPackage that can be read.")
MSG_FILE_NO_FEATURES = _("The file contains no features.")
MSG_FILE_TOO_MANY = _("The file has {count} features; at most {limit} are imported at once. Split it.")
MSG_FILE_TOO_LARGE = _("The file is larger than {limit} bytes.")
MSG_FILE_CRS = _("GeoJSON coordinates must be WGS84 (lon/lat, RFC 7946); this file declares another CRS.")
MSG_NOT_ALLOWED = _("Only the permit authority and applicants may import roadworks.")
MSG_ORGANISATION_OTHER = _("Applicants import works for their own organisation only.")
MSG_ORGANISATION_REQUIRED = _("Choose the organisation the works are for.")
MSG_ORGANISATION_MISMATCH = _("This feature names another organisation than the import is for.")
MSG_PERIOD_HALF = _("Give both starts_at and ends_at, or period.")
MSG_REJECTED = _("{count} of {total} features were rejected; nothing was imported.")
MSG_DRY_RUN_OK = _("Dry run: all {total} features are valid; nothing was imported.")
MSG_IMPORTED = _("{total} roadworks were imported.")
MSG_JOB_CRASHED = _(
    "The import stopped because of an unexpected error; nothing was imported. Try again later or tell the operators."
)
MSG_JOB_INTERRUPTED = _("The import was interrupted (the server stopped); nothing was imported. Upload the file again.")

MAX_IMPORT_FEATURES = 5000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
GPKG_MAGIC = b"SQLite format 3\x00"
WGS84_CRS_NAMES = {"urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"}


class ImportFileError(Exception):
    """The file as a whole cannot be read: a 400 with this message, nothing checked further."""


@dataclass
class Rejection:
    index: int  # 1-based position in the file, as a person counts
    feature_id: str
    errors: list[str]


@dataclass
class ImportReport:
    total: int
    dry_run: bool
    created: list[dict[str, str]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    @property
    def imported(self) -> bool:
        return self.ok and not self.dry_run

    def summary(self) -> str:
        if self.rejected:
            return str(MSG_REJECTED).format(count=len(self.rejected), total=self.total)
        if self.dry_run:
            return str(MSG_DRY_RUN_OK).format(total=self.total)
        return str(MSG_IMPORTED).format(total=self.total)

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "dry_run": self.dry_run,
            "imported": self.imported,
            "total": self.total,
            "created": self.created if self.imported else [],
            "valid": len(self.created),
            "rejected": [{"index": r.index, "feature_id": r.feature_id, "errors": r.errors} for r in self.rejected],
        }


# --- reading ----------------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """numpy scalars and dates from GDAL as JSON-like Python values, as the API would receive them."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _read_geojson(data: bytes) -> list[dict[str, Any]]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportFileError(MSG_FILE_UNREADABLE) from exc
    if isinstance(document, dict) and document.get("type") == "Feature":
        document = {"type": "FeatureCollection", "features": [document]}
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise ImportFileError(MSG_FILE_UNREADABLE)
    crs = document.get("crs")
    if crs is not None:
        name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
        if name not in WGS84_CRS_NAMES:
            raise ImportFileError(MSG_FILE_CRS)
    return document["features"]


def _read_gpkg(data: bytes) -> list[dict[str, Any]]:
    """The first layer of a GeoPackage as GeoJSON Features in WGS84 (transformed from the layer's CRS)."""
    with tempfile.NamedTemporaryFile(suffix=".gpkg") as handle:
        handle.write(data)
        handle.flush()
        try:
            meta, fids, geometries, field_data = ogr_read(handle.name, return_fids=True, datetime_as_string=True)
        except (DataSourceError, DataLayerError, OSError) as exc:
            raise ImportFileError(MSG_FILE_UNREADABLE) from exc
    source_srs = SpatialReference(meta["crs"]) if meta.get("crs") else None
    features = []
    for position, fid in enumerate(fids):
        properties = {name: _plain(values[position]) for name, values in zip(meta["fields"], field_data, strict=True)}
        geometry = None
        if geometries is not None and geometries[position] is not None:
            geom = GEOSGeometry(memoryview(geometries[position]))
            if source_srs is not None and source_srs.srid != WGS84:
                geom.srid = source_srs.srid
                geom.transform(WGS84)
            geometry = json.loads(geom.json)
        features.append({"type": "Feature", "id": int(fid), "geometry": geometry, "properties": properties})
    return features


def read_features(data: bytes) -> list[dict[str, Any]]:
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFileError(str(MSG_FILE_TOO_LARGE).format(limit=MAX_IMPORT_BYTES))
    features = _read_gpkg(data) if data.startswith(GPKG_MAGIC) else _read_geojson(data)
    if not features:
        raise ImportFileError(MSG_FILE_NO_FEATURES)
    if len(features) > MAX_IMPORT_FEATURES:
        raise ImportFileError(str(MSG_FILE_TOO_MANY).format(count=len(features), limit=MAX_IMPORT_FEATURES))
    return features


# --- checking and creating -----------------------------------------------------------------------------------------


def _flat_to_api(properties: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map the flat spellings of a GIS file onto the API's properties; nulls (empty attribute cells) are left out."""
    props = {key: value for key, value in properties.items() if value is not None and value != ""}
    problems: list[str] = []
    starts, ends = props.pop("starts_at", None), props.pop("ends_at", None)
    if starts is not None or ends is not None:
        if starts is None or ends is None or "period" in props:
            problems.append(f"period: {MSG_PERIOD_HALF}")
        else:
            props["period"] = {"lower": starts, "upper": ends}
    streets = props.pop("streets", None)
    if isinstance(streets, str) and "street_names" not in props:
        props["street_names"] = [name.strip() for name in streets.split(";") if name.strip()]
    if isinstance(props.get("weekdays"), str):
        props["weekdays"] = [part.strip() for part in props["weekdays"].split(",") if part.strip()]
    return props, problems


def _messages(detail: Any, prefix: str = "") -> list[str]:
    """DRF's or Django's nested errors as 'field: message' lines."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            lines += _messages(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return lines
    if isinstance(detail, list):
        lines = []
        for position, value in enumerate(detail):
            inner = f"{prefix}[{position + 1}]" if isinstance(value, dict) else prefix
            lines += _messages(value, inner)
        return lines
    text = str(detail)
    return [f"{prefix}: {text}" if prefix else text]


def _feature_label(feature: Any, index: int) -> str:
    if isinstance(feature, dict):
        properties = feature.get("properties") if isinstance(feature.get("properties"), dict) else {}
        for candidate in (feature.get("id"), properties.get("reference")):
            if candidate not in (None, ""):
                return str(candidate)
    return f"#{index}"


def import_organisation_for(*, user: User, organisation: Organisation | None) -> Organisation:
    if not roadwork_permissions.can_create_roadwork(user):
        raise PermissionDenied(MSG_NOT_ALLOWED)
    if organisation is not None and organisation.pk != user.organisation_id:
        if not roadwork_permissions.can_choose_organisation(user):
            raise PermissionDenied(MSG_ORGANISATION_OTHER)
        return organisation
    chosen = organisation or user.organisation
    if chosen is None:
        raise ValidationError({"organisation": [MSG_ORGANISATION_REQUIRED]})
    return chosen


def _check_and_create(*, user: User, organisation: Organisation, feature: Any) -> tuple[Any, list[str]]:
    if isinstance(feature, dict) and isinstance(feature.get("properties"), dict):
        properties, problems = _flat_to_api(feature["properties"])
        given = properties.get("organisation")
        if given not in (None, organisation.pk, str(organisation.pk)):
            problems.append(f"organisation: {MSG_ORGANISATION_MISMATCH}")
        properties["organisation"] = organisation.pk
        feature = {**feature, "properties": properties}
        if problems:
            return None, problems
    serializer = RoadworkSerializer(data=feature, context={"request": None})
    if not serializer.is_valid():
        return None, _messages(serializer.errors)
    try:
        # A savepoint per feature: a failed one rolls back alone, and the next features are still checked.
        with transaction.atomic():
            roadwork = roadwork_create(user=user, data=serializer.validated_data)
    except ValidationError as exc:
        return None, _messages(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    except PermissionDenied as exc:
        return None, [str(exc)]
    return roadwork, []


def roadworks_import(
    *, user: User, data: bytes, organisation: Organisation | None = None, dry_run: bool = False
) -> ImportReport:
    """Import every feature of a GeoJSON or GeoPackage file as a roadwork of `organisation`, or none.

    Raises ImportFileError when the file cannot be read at all, PermissionDenied when `user` may not import (for
    that organisation). Otherwise returns the report; the roadworks exist afterwards only if report.imported.
    """
    chosen = import_organisation_for(user=user, organisation=organisation)
    return _import_features(user=user, organisation=chosen, features=read_features(data), dry_run=dry_run)


def _import_features(*, user: User, organisation: Organisation, features: list[Any], dry_run: bool) -> ImportReport:
    report = ImportReport(total=len(features), dry_run=dry_run)
    with transaction.atomic():
        for index, feature in enumerate(features, start=1):
            roadwork, errors = _check_and_create(user=user, organisation=organisation, feature=feature)
            if errors:
                report.rejected.append(Rejection(index=index, feature_id=_feature_label(feature, index), errors=errors))
            else:
                report.created.append({"index": index, "id": str(roadwork.pk), "reference": roadwork.reference})
        if not report.imported:
            # All or nothing: a rejected feature, or a dry run, leaves the database as it was.
            transaction.set_rollback(True)
    return report


# --- large files: a job for a Celery worker -----------------------------------------------------------------------

# A running job whose row is not locked was left by a worker that died (its transaction rolled back, nothing was
# imported). The grace covers the moment between claiming the job and locking its row, and clocks of other hosts.
INTERRUPTED_AFTER = timedelta(seconds=60)


def roadworks_import_start(
    *,
    user: User,
    data: bytes,
    file_name: str = "",
    organisation: Organisation | None = None,
    dry_run: bool = False,
) -> ImportReport | ImportJob:
    """Import a small file at once (the report), or keep a large one as a queued ImportJob (returned).

    Who may import, and whether the file can be read at all, is decided here for both: a refusal or an unreadable
    file is an immediate error (PermissionDenied, ValidationError, ImportFileError), never a job that fails later."""
    chosen = import_organisation_for(user=user, organisation=organisation)
    features = read_features(data)
    if len(features) <= settings.AUMAN_IMPORT_SYNC_FEATURES:
        return _import_features(user=user, organisation=chosen, features=features, dry_run=dry_run)
    with transaction.atomic():
        job = ImportJob.objects.create(
            user=user,
            organisation=chosen,
            dry_run=dry_run,
            data=data,
            file_name=file_name[:255],
            feature_count=len(features),
            language=translation.get_language() or "",
        )
        from .tasks import import_job_run_task  # the task module imports this one

        outbox.enqueue(import_job_run_task, str(job.pk))
    return job


def _job_failed(job_id: Any, message: str) -> None:
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportJobStatus.FAILED, error=message, data=b"", finished_at=Now()
    )


def _job_fail_if_interrupted(job_id: Any) -> None:
    with transaction.atomic():
        stale = (
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(pk=job_id, status=ImportJobStatus.RUNNING, started_at__lt=Now() - INTERRUPTED_AFTER)
            .first()
        )
        if stale is not None:
            logger.warning("import job %s was interrupted; marked failed", job_id)
            _job_failed(job_id, str(MSG_JOB_INTERRUPTED))


def _job_import(job: ImportJob) -> ImportReport:
    if not job.user.is_active:
        raise PermissionDenied(MSG_NOT_ALLOWED)
    # The user's rights now, not at the upload: one who lost them meanwhile imports nothing.
    return roadworks_import(user=job.user, data=bytes(job.data), organisation=job.organisation, dry_run=job.dry_run)


def import_job_run(*, job_id: Any) -> str | None:
    """Run a queued import job; returns the status it ended in, or None when it was not this call's to run.

    Celery acknowledges late, so a message may come twice: only the call that moves the job out of `queued` runs it.
    That call holds the job's row lock for the whole import, so a redelivery after a worker's death (nothing was
    imported: its transaction rolled back) finds the job running and unlocked, and marks it failed instead of
    leaving it running forever."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, started_at=Now()
    )
    if not claimed:
        _job_fail_if_interrupted(job_id)
        return None
    job = ImportJob.objects.select_related("user", "organisation").get(pk=job_id)
    with translation.override(job.language or settings.LANGUAGE_CODE):
        try:
            with transaction.atomic():
                ImportJob.objects.select_for_update().only("pk").get(pk=job_id)
                report = _job_import(job)
                # In the import's transaction: the roadworks and the report that names them commit together.
                ImportJob.objects.filter(pk=job_id).update(
                    status=ImportJobStatus.DONE, report=report.as_dict(), data=b"", finished_at=Now()
                )
        except ImportFileError as exc:
            _job_failed(job_id, str(exc))
            return ImportJobStatus.FAILED
        except PermissionDenied as exc:
            _job_failed(job_id, str(exc) or str(MSG_NOT_ALLOWED))
            return ImportJobStatus.FAILED
        except ValidationError as exc:
            _job_failed(job_id, " ".join(_messages(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)))
            return ImportJobStatus.FAILED
        except Exception:
            # The user gets a message they can act on; the traceback goes to the log, for the operators.
            logger.exception("import job %s failed", job_id)
            _job_failed(job_id, str(MSG_JOB_CRASHED))
            return ImportJobStatus.FAILED
    return ImportJobStatus.DONE
