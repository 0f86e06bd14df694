"""Work-zone crashes: accidents in or next to a roadwork that was active when they happened.

An accident is a work-zone crash when a roadwork lies within AUMAN_WORK_ZONE_CRASH_DISTANCE_M of it, and the
roadwork was approved, in progress or (by now) completed, with a period that contains the accident's time.
"Completed" counts because imported accidents are often a year old: the works were active then, and finished
since. For accidents whose time is known only to the hour within a month (Unfallatlas, time_precision
"hour_in_month"), a roadwork counts when its period overlaps that month. Of several, the nearest wins.

Flagging is one PostGIS statement (GiST index on the roadworks' geometry and period). A newly flagged police
accident sends a notice to the applicant organisation and the permit authority's coordinators; bulk flagging after
an import does not, because notices about accidents of a past year would be noise.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts.models import Role, User
from auman.geo import WGS84
from jobs import outbox
from roadworks.models import Roadwork, RoadworkStatus

from .models import Accident, TimePrecision

logger = logging.getLogger(__name__)

WORK_ZONE_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS, RoadworkStatus.COMPLETED)

# The roadwork an accident `a` happened at, or NULL. Used per accident and in bulk; parameters by name.
_MATCH_SQL = f"""
    SELECT r.id
      FROM roadworks_roadwork r
     WHERE r.status = ANY(%(statuses)s)
       AND ST_DWithin(r.geometry, a.location, %(distance)s)
       AND CASE WHEN a.time_precision = '{TimePrecision.EXACT.value}' THEN r.period @> a.occurred_at
                ELSE r.period && tstzrange(
                    date_trunc('month', a.occurred_at AT TIME ZONE 'Europe/Berlin') AT TIME ZONE 'Europe/Berlin',
                    (date_trunc('month', a.occurred_at AT TIME ZONE 'Europe/Berlin') + interval '1 month')
                        AT TIME ZONE 'Europe/Berlin')
           END
     ORDER BY ST_Distance(r.geometry, a.location), lower(r.period), r.id
     LIMIT 1
"""

# Sets (or clears) work_zone where it differs from the match and returns what changed.
_FLAG_SQL = f"""
    WITH matched AS (
        SELECT a.id, ({_MATCH_SQL}) AS roadwork
          FROM traffic_accident a
         WHERE {{condition}}
    )
    UPDATE traffic_accident t
       SET work_zone_id = m.roadwork, updated_at = now()
      FROM matched m
     WHERE t.id = m.id AND t.work_zone_id IS DISTINCT FROM m.roadwork
    RETURNING t.id, t.work_zone_id
"""


def _params(**extra: Any) -> dict[str, Any]:
    return {
        "statuses": [str(s) for s in WORK_ZONE_STATUSES],
        "distance": settings.AUMAN_WORK_ZONE_CRASH_DISTANCE_M,
        **extra,
    }


@transaction.atomic
def accident_flag_work_zone(*, accident_id: uuid.UUID | str, notify: bool = True) -> uuid.UUID | None:
    """Flag one accident as a work-zone crash (or clear a flag that no longer holds); returns the roadwork id.

    Call it after an accident is created or moved (traffic.tasks.accident_flag_work_zone does, on commit).
    Running it again changes nothing and sends nothing. Notices go out after the commit, only when the accident
    newly lies at a roadwork.
    """
    with connection.cursor() as cursor:
        cursor.execute(_FLAG_SQL.format(condition="a.id = %(id)s"), _params(id=str(accident_id)))
        changed = cursor.fetchone()
    if changed is None:
        return Accident.objects.filter(pk=accident_id).values_list("work_zone_id", flat=True).first()
    roadwork_id = changed[1]
    if roadwork_id is not None and notify:
        transaction.on_commit(
            lambda: work_zone_crash_notify(accident_id=accident_id, roadwork_id=roadwork_id), robust=True
        )
    return roadwork_id


@transaction.atomic
def accidents_flag_work_zones(*, source: str | None = None, created_since: datetime | None = None) -> int:
    """Flag many accidents in one statement, without notices (imports: the accidents are history by now).

    Returns how many accidents got (or lost) a work zone.
    """
    condition, extra = ["TRUE"], {}
    if source is not None:
        condition.append("a.source = %(source)s")
        extra["source"] = str(source)
    if created_since is not None:
        condition.append("a.created_at >= %(since)s")
        extra["since"] = created_since
    with connection.cursor() as cursor:
        cursor.execute(_FLAG_SQL.format(condition=" AND ".join(condition)), _params(**extra))
        return cursor.rowcount


def accident_flag_work_zone_on_commit(*, accident_id: uuid.UUID | str) -> None:
    """For services that create or move an accident: check it for a work zone once their transaction commits."""
    from .tasks import accident_flag_work_zone as task

    # Through the outbox: committed with the write, sent when the broker is there (jobs/outbox.py).
    outbox.enqueue(task, str(accident_id))


def coordinator_emails() -> list[str]:
    """The permit authority's coordinators: active users with the authority role and an address."""
    return sorted(
        User.objects.filter(role=Role.AUTHORITY, is_active=True).exclude(email="").values_list("email", flat=True)
    )


def work_zone_crash_notify(*, accident_id: uuid.UUID | str, roadwork_id: uuid.UUID | str) -> int:
    """E-mail the roadwork's applicant organisation and the coordinators about a crash at the works.

    Two separate mails, so neither side sees the other's addresses. Returns the number of mails sent.
    """
    accident = Accident.objects.filter(pk=accident_id).first()
    roadwork = Roadwork.objects.select_related("organisation").filter(pk=roadwork_id).first()
    if accident is None or roadwork is None:
        return 0
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Accident at roadwork {reference}").format(reference=roadwork.reference)
        body = _work_zone_crash_body(accident, roadwork)
    sent = 0
    groups = [[roadwork.organisation.email] if roadwork.organisation.email else [], coordinator_emails()]
    for recipients in groups:
        if recipients:
            sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
    logger.info("work-zone crash %s at %s: %d notices", accident.pk, roadwork.reference, sent)
    return sent


def _work_zone_crash_body(accident: Accident, roadwork: Roadwork) -> str:
    occurred = timezone.localtime(accident.occurred_at)
    when = date_format(occurred, "DATETIME_FORMAT")
    if accident.time_precision != TimePrecision.EXACT:
        when = _("{month}, at {hour}:00 (Unfallatlas: hour and month only)").format(
            month=date_format(occurred, "YEAR_MONTH_FORMAT"), hour=occurred.hour
        )
    # Both geometries are in the metric storage SRID: the planar distance is in metres.
    metres = round(accident.location.distance(roadwork.geometry))
    point = accident.location.transform(WGS84, clone=True)
    map_url = f"{settings.SITE_URL}{reverse('maps:index')}#map=18/{point.y:.5f}/{point.x:.5f}"
    lines = [
        _("An accident happened at or next to the roadwork {reference} ({title}).").format(
            reference=roadwork.reference, title=roadwork.title
        ),
        "",
        _("Time: {when}").format(when=when),
        _("Category: {label}").format(label=accident.get_category_display()),
        _("Type: {label}").format(label=accident.get_type_display()),
        _("Distance from the works: {metres} m").format(metres=metres),
        _("Map: {url}").format(url=map_url),
        "",
        _("Please check the traffic management at the site."),
    ]
    return "\n".join(lines) + "\n"
