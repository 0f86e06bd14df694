"""List filters: bbox, status, active_on (date or datetime), updated_since; pagination."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from roadworks.models import Roadwork, RoadworkStatus
from tests.conftest import NECKARAU, features_of, line, local, make_roadwork, period

pytestmark = pytest.mark.django_db

CITY_CENTRE_BBOX = "8.46,49.48,8.49,49.49"


def refs(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {f["properties"]["reference"] for f in features_of(response)}


@pytest.fixture
def works(stadtwerke):
    make_roadwork(stadtwerke, reference="CENTRE-MARCH", period=period(local(2027, 3, 1, 7), 10))
    make_roadwork(stadtwerke, reference="CENTRE-MAY", period=period(local(2027, 5, 1, 7), 10))
    make_roadwork(stadtwerke, reference="NECKARAU-MARCH", geometry=line(NECKARAU))
    make_roadwork(stadtwerke, reference="CENTRE-RUNNING", status=RoadworkStatus.IN_PROGRESS)


def test_bbox_keeps_works_inside_the_box(api, bob, works):
    assert refs(api(bob).get(f"/api/v1/roadworks/?bbox={CITY_CENTRE_BBOX}")) == {
        "CENTRE-MARCH",
        "CENTRE-MAY",
        "CENTRE-RUNNING",
    }


def test_status_takes_several_values(api, bob, works):
    assert refs(api(bob).get("/api/v1/roadworks/?status=in_progress")) == {"CENTRE-RUNNING"}
    assert len(refs(api(bob).get("/api/v1/roadworks/?status=in_progress,approved"))) == 4


def test_active_on_a_date_means_that_local_day(api, bob, works):
    assert "CENTRE-MAY" not in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-05"))
    assert refs(api(bob).get("/api/v1/roadworks/?active_on=2027-05-01")) == {"CENTRE-MAY"}
    # The March works start at 07:00 local time on 1 March: that day counts.
    assert "CENTRE-MARCH" in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-01"))
    # ... and they end at 07:00 on 11 March, so the 11th still counts but the 12th does not.
    assert "CENTRE-MARCH" in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-11"))
    assert "CENTRE-MARCH" not in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-12"))


def test_active_on_a_datetime_means_that_instant(api, bob, works):
    assert "CENTRE-MARCH" not in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-01T06:59:00%2B01:00"))
    assert "CENTRE-MARCH" in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-01T07:00:00%2B01:00"))
    assert "CENTRE-MARCH" in refs(api(bob).get("/api/v1/roadworks/?active_on=2027-03-01T06:00:00Z"))


def test_updated_since_returns_recent_changes(api, bob, works):
    Roadwork.objects.exclude(reference="CENTRE-MAY").update(updated_at=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    assert refs(api(bob).get("/api/v1/roadworks/", {"updated_since": since})) == {"CENTRE-MAY"}


@pytest.mark.parametrize(
    "query, field",
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=8.5,49.5,8.4,49.4", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("active_on=yesterday", "active_on"),
        ("active_on=2027-13-45", "active_on"),
        ("updated_since=soon", "updated_since"),
        ("status=paused", "status"),
    ],
)
def test_bad_filter_values_answer_400_naming_the_filter(api, bob, works, query, field):
    response = api(bob).get(f"/api/v1/roadworks/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_lists_are_paginated(api, bob, works):
    response = api(bob).get("/api/v1/roadworks/?page_size=2")
    data = response.json()
    assert data["count"] == 4
    assert len(data["features"]) == 2
    assert data["next"]
    assert len(features_of(api(bob).get(data["next"]))) == 2
