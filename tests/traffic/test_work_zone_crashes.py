"""Work-zone crashes: an accident at a roadwork active at its time is flagged, and the applicant and the coordinators
hear of it once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import LineString, Point
from django.core import mail
from django.db import transaction
from django.test import override_settings

from roadworks.models import RoadworkStatus
from tests.conftest import local, make_roadwork, period, wait_until
from traffic import tasks
from traffic.models import Accident, AccidentSource, TimePrecision
from traffic.workzones import (
    accident_flag_work_zone,
    accident_flag_work_zone_on_commit,
    accidents_flag_work_zones,
    coordinator_emails,
)

# The works run along a 120 m stretch of road, 1 to 21 March 2027.
START = local(2027, 3, 1, 7)
ORIGIN = Point(8.4750, 49.4846, srid=4326).transform(25832, clone=True)


def works_geometry() -> LineString:
    return LineString((ORIGIN.x - 60, ORIGIN.y), (ORIGIN.x + 60, ORIGIN.y), srid=25832)


@pytest.fixture
def works(stadtwerke):
    stadtwerke.email = "baustellen@stadtwerke.example"
    stadtwerke.save()
    return make_roadwork(
        stadtwerke,
        reference="BS-2027-KR01",
        geometry=works_geometry(),
        period=period(START, 20),
        status=RoadworkStatus.IN_PROGRESS,
    )


@pytest.fixture
def coordinators(bob, django_user_model, authority_org):
    bob.email = "bob@stadt.example"
    bob.save()
    django_user_model.objects.create_user(
        "ina", email="ina@stadt.example", password="pw-ina-1", organisation=authority_org, role="authority"
    )
    # An inactive coordinator and one without an address get nothing.
    django_user_model.objects.create_user("old", email="old@stadt.example", role="authority", is_active=False)
    django_user_model.objects.create_user("nomail", role="authority")
    return ["bob@stadt.example", "ina@stadt.example"]


def make_accident(*, north: float = 5, when=None, precision=TimePrecision.EXACT, **extra) -> Accident:
    return Accident.objects.create(
        location=Point(ORIGIN.x, ORIGIN.y + north, srid=25832),
        occurred_at=when or START + timedelta(days=3, hours=2),
        time_precision=precision,
        category=3,
        kind=2,
        type=6,
        **extra,
    )


@pytest.mark.django_db
def test_an_accident_at_active_works_is_flagged_and_both_sides_are_told(
    works, coordinators, django_capture_on_commit_callbacks
):
    accident = make_accident()

    with django_capture_on_commit_callbacks(execute=True):
        assert accident_flag_work_zone(accident_id=accident.pk) == works.pk

    accident.refresh_from_db()
    assert accident.work_zone_id == works.pk
    assert [m.to for m in mail.outbox] == [["baustellen@stadtwerke.example"], coordinators]
    message = mail.outbox[0]
    assert "BS-2027-KR01" in message.subject
    assert "BS-2027-KR01" in message.body
    assert "#map=18/49.48" in message.body
    assert mail.outbox[1].body == message.body


@pytest.mark.django_db
def test_flagging_again_changes_nothing_and_sends_nothing(works, coordinators, django_capture_on_commit_callbacks):
    accident = make_accident()
    with django_capture_on_commit_callbacks(execute=True):
        accident_flag_work_zone(accident_id=accident.pk)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert accident_flag_work_zone(accident_id=accident.pk) == works.pk

    assert mail.outbox == []


@pytest.mark.django_db
@pytest.mark.parametrize(("north", "flagged"), [(0, True), (45, True), (55, False), (300, False)])
def test_the_distance_setting_decides_what_is_next_to_the_works(works, north, flagged):
    accident = make_accident(north=north)
    assert (accident_flag_work_zone(accident_id=accident.pk, notify=False) == works.pk) is flagged


@pytest.mark.django_db
def test_the_distance_is_a_setting(works):
    accident = make_accident(north=80)
    with override_settings(AUMAN_WORK_ZONE_CRASH_DISTANCE_M=100):
        assert accident_flag_work_zone(accident_id=accident.pk, notify=False) == works.pk


@pytest.mark.django_db
@pytest.mark.parametrize("days", [-1, 21])
def test_accidents_before_or_after_the_works_are_not_flagged(works, days):
    accident = make_accident(when=START + timedelta(days=days))
    assert accident_flag_work_zone(accident_id=accident.pk, notify=False) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "flagged"),
    [
        (RoadworkStatus.DRAFT, False),
        (RoadworkStatus.SUBMITTED, False),
        (RoadworkStatus.REFUSED, False),
        (RoadworkStatus.CANCELLED, False),
        (RoadworkStatus.APPROVED, True),
        (RoadworkStatus.IN_PROGRESS, True),
        (RoadworkStatus.COMPLETED, True),
    ],
)
def test_only_works_that_were_really_on_the_road_count(works, status, flagged):
    works.status = status
    works.save()
    accident = make_accident()
    assert (accident_flag_work_zone(accident_id=accident.pk, notify=False) is not None) is flagged


@pytest.mark.django_db
def test_the_nearest_of_two_works_is_named(works, telekom):
    nearer = make_roadwork(
        telekom,
        geometry=LineString((ORIGIN.x - 60, ORIGIN.y + 20), (ORIGIN.x + 60, ORIGIN.y + 20), srid=25832),
        period=period(START, 20),
    )
    accident = make_accident(north=18)
    assert accident_flag_work_zone(accident_id=accident.pk, notify=False) == nearer.pk


@pytest.mark.django_db
def test_a_flag_that_no_longer_holds_is_cleared(works, django_capture_on_commit_callbacks):
    accident = make_accident()
    accident_flag_work_zone(accident_id=accident.pk, notify=False)
    accident.location = Point(ORIGIN.x, ORIGIN.y + 500, srid=25832)
    accident.save()

    with django_capture_on_commit_callbacks(execute=True):
        assert accident_flag_work_zone(accident_id=accident.pk) is None

    accident.refresh_from_db()
    assert accident.work_zone_id is None
    assert mail.outbox == []


@pytest.mark.django_db
def test_an_unfallatlas_accident_counts_when_the_works_overlap_its_month(works):
    # Known only as "a Saturday in March 2027 at 17:00"; stored as the first one, 6 March, inside the works.
    in_march = make_accident(when=local(2027, 3, 6, 17), precision=TimePrecision.HOUR_IN_MONTH)
    # "A Saturday in February": the works had not begun.
    in_february = make_accident(when=local(2027, 2, 6, 17), precision=TimePrecision.HOUR_IN_MONTH)
    # Exact times use the period itself: 30 March lies after the works.
    exact_after = make_accident(when=local(2027, 3, 30, 17))

    assert accident_flag_work_zone(accident_id=in_march.pk, notify=False) == works.pk
    assert accident_flag_work_zone(accident_id=in_february.pk, notify=False) is None
    assert accident_flag_work_zone(accident_id=exact_after.pk, notify=False) is None


@pytest.mark.django_db
def test_bulk_flagging_flags_many_at_once_without_mail(works, coordinators):
    imported = [
        make_accident(north=n, source=AccidentSource.UNFALLATLAS, source_key=f"2027:uid:{n}") for n in (1, 2, 3)
    ]
    police = make_accident(north=4)

    assert accidents_flag_work_zones(source=AccidentSource.UNFALLATLAS) == 3

    assert {a.work_zone_id for a in Accident.objects.filter(pk__in=[a.pk for a in imported])} == {works.pk}
    assert Accident.objects.get(pk=police.pk).work_zone_id is None
    assert mail.outbox == []
    assert accidents_flag_work_zones(source=AccidentSource.UNFALLATLAS) == 0


@pytest.mark.django_db
def test_the_task_flags_the_accident(works):
    accident = make_accident()
    assert tasks.accident_flag_work_zone(str(accident.pk)) == str(works.pk)
    assert tasks.accident_flag_work_zone(str(make_accident(north=400).pk)) is None


@pytest.mark.django_db
def test_an_organisation_without_an_address_leaves_only_the_coordinators(
    works, coordinators, django_capture_on_commit_callbacks
):
    works.organisation.email = ""
    works.organisation.save()
    with django_capture_on_commit_callbacks(execute=True):
        accident_flag_work_zone(accident_id=make_accident().pk)
    assert [m.to for m in mail.outbox] == [coordinators]


@pytest.mark.django_db
def test_coordinators_are_the_active_authority_users_with_an_address(coordinators, alice):
    alice.email = "alice@stadtwerke.example"
    alice.save()
    assert coordinator_emails() == coordinators


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_worker_flags_an_accident_after_the_commit(celery_worker_process, works):
    with transaction.atomic():
        accident = make_accident()
        accident_flag_work_zone_on_commit(accident_id=accident.pk)
        assert Accident.objects.get(pk=accident.pk).work_zone_id is None

    wait_until(lambda: Accident.objects.get(pk=accident.pk).work_zone_id == works.pk)
