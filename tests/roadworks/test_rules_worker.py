"""End to end: a layer written through the API → on_commit → Redis → a real Celery worker re-runs the layer's rule →
Conflict rows in PostGIS; and a roadwork change re-checks every rule of the catalogue."""

from __future__ import annotations

import pytest

from roadworks.models import Conflict, ConflictStatus, MoratoriumArea
from tests.conftest import KAISERRING, feature, geojson_line, make_roadwork, wait_until
from tests.roadworks.rule_helpers import wait_for_idle_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[8.4735, 49.4835], [8.4770, 49.4835], [8.4770, 49.4858], [8.4735, 49.4858], [8.4735, 49.4835]]],
}


def test_a_worker_re_runs_the_corridor_rule_after_a_corridor_is_recorded(
    celery_worker_process, api, bob, stadtwerke, telekom
):
    make_roadwork(stadtwerke, reference="A")
    make_roadwork(telekom, reference="B")
    response = api(bob).post(
        "/api/v1/corridors/",
        feature(geojson_line(KAISERRING), name="Ring", max_simultaneous=1),
        format="json",
    )
    assert response.status_code == 201, response.json()

    wait_until(lambda: Conflict.objects.filter(rule="C4").count() == 2)
    corridor_id = response.json()["id"]
    assert api(bob).delete(f"/api/v1/corridors/{corridor_id}/").status_code == 204
    wait_until(
        lambda: set(Conflict.objects.filter(rule="C4").values_list("status", flat=True)) == {ConflictStatus.RESOLVED}
    )


def test_a_worker_checks_a_changed_roadwork_against_every_rule(celery_worker_process, api, alice, bob):
    api(bob).post("/api/v1/moratoria/", feature(SQUARE, name="Kaiserring", resurfaced_on="2025-01-01"), format="json")
    assert MoratoriumArea.objects.exists()
    created = api(alice).post(
        "/api/v1/roadworks/",
        feature(
            geojson_line(KAISERRING),
            title="Gasleitung Kaiserring",
            period={"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-12T17:00:00+01:00"},
            excavation=True,
            status="submitted",
        ),
        format="json",
    )
    assert created.status_code == 201, created.json()
    conflict = wait_until(lambda: Conflict.objects.filter(rule="C5").first())
    assert str(conflict.roadwork_a_id) == created.json()["id"]
    wait_for_idle_worker()
