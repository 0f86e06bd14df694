"""The accident grid (maps/accident_grid.py): low-zoom accident tiles from pre-aggregated squares.

The grid must draw what the direct path (thinning the accidents at request time) draws for the same accidents,
follow accident writes through the outbox and its rebuild, and keep the layer staff-only.
"""

from __future__ import annotations

import io
import math
import random
from datetime import date, datetime, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from maps import tasks
from maps.accident_grid import accident_grid_rebuild, accident_grid_update, grid_point, grid_years
from maps.models import ACCIDENT_GRID_MAX_ZOOM, AccidentCell
from maps.tiles import parse_tile_request, tile_build, tile_rows, uses_accident_grid
from tests.conftest import BERLIN, make_incident
from tests.maps.mvt import decode
from traffic.models import Accident, IncidentKind, IncidentStatus
from traffic.services import incident_create, incident_transition, incident_update

pytestmark = pytest.mark.django_db

CENTRE = (8.4750, 49.4846)  # Kaiserring, Mannheim
# A day whose window is whole calendar years (the N years up to its end), where grid and direct path agree exactly.
YEAR_END = date(2025, 12, 31)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def make_accident(lon: float, lat: float, **overrides) -> Accident:
    values = {
        "location": Point(lon, lat, srid=4326).transform(25832, clone=True),
        "occurred_at": timezone.now() - timedelta(days=30),
        "category": 3,
        "kind": 5,
        "type": 2,
    }
    values.update(overrides)
    return Accident.objects.create(**values)


def scatter(count: int, *, seed: int = 7) -> None:
    """Accidents around the centre, some on the very same spot, over the years of YEAR_END's window and beyond."""
    rng = random.Random(seed)
    for index in range(count):
        if index % 5 == 0:
            lon, lat = CENTRE  # a pile-up of squares: count and representative matter
        else:
            lon, lat = CENTRE[0] + rng.gauss(0, 0.02), CENTRE[1] + rng.gauss(0, 0.012)
        when = datetime(rng.randint(2021, 2026), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                        tzinfo=BERLIN)  # fmt: skip
        make_accident(lon, lat, occurred_at=when, category=rng.randint(1, 6), kind=rng.randint(0, 9),
                      type=rng.randint(1, 7))  # fmt: skip


def drawn(body: bytes) -> set[tuple]:
    layers = decode(body)
    if not layers:
        return set()
    return {(tuple(map(tuple, f.geometry)), tuple(sorted(f.properties.items()))) for f in layers["accidents"].features}


def build(user, z: int, x: int, y: int, *, direct: bool, **params) -> bytes:
    request = parse_tile_request("accidents", z, x, y, params)
    now = timezone.now()
    return tile_build(request, user, now=now, rows=tile_rows(request, user, now=now, direct=direct))


def browser(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def tile_response(user, tile, **params):
    url = reverse("maps:tile", kwargs={"layer": "accidents", "z": tile[0], "x": tile[1], "y": tile[2]})
    response = browser(user).get(url, params)
    assert response.status_code == 200, response.content
    return response


def ids(user, tile, **params) -> set[str]:
    return {dict(props)["id"] for _, props in drawn(tile_response(user, tile, **params).content)}


@pytest.fixture(autouse=True)
def empty_cache():
    cache.delete_pattern("*")


@pytest.fixture
def run_grid_tasks(monkeypatch):
    """The outbox hands the rebuild and the updates to Celery; here they run at once, in the test's transaction."""
    for task in (tasks.accident_grid_rebuild_task, tasks.accident_grid_update_task):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task(*args))


# --- The same picture as the direct path ----------------------------------------------------------------------


@pytest.mark.parametrize("z", [10, 11, 12, 13])
def test_it_draws_the_same_squares_counts_and_representatives_as_thinning_the_accidents(bob, settings, z):
    settings.AUMAN_TILE_ACCIDENT_YEARS = 3
    scatter(400)
    accident_grid_rebuild()
    tiles = {tile_of(CENTRE[0] + dx, CENTRE[1] + dy, z) for dx in (-0.03, 0, 0.03) for dy in (-0.02, 0, 0.02)}
    for tile in sorted(tiles):
        assert uses_accident_grid(parse_tile_request("accidents", *tile, {"on": YEAR_END.isoformat()}))
        from_grid = drawn(build(bob, *tile, direct=False, on=YEAR_END.isoformat()))
        from_accidents = drawn(build(bob, *tile, direct=True, on=YEAR_END.isoformat()))
        assert from_grid == from_accidents
    centre = drawn(build(bob, *tile_of(*CENTRE, z), direct=False, on=YEAR_END.isoformat()))
    assert any(dict(props)["count"] > 1 for _, props in centre)  # the pile-up was merged, not just copied


def test_it_draws_the_same_as_the_direct_path_when_filtered_by_category(bob, settings):
    settings.AUMAN_TILE_ACCIDENT_YEARS = 2
    scatter(300, seed=11)
    accident_grid_rebuild()
    tile = tile_of(*CENTRE, 12)
    for categories in ("1", "2,3", "4,5,6"):
        params = {"on": YEAR_END.isoformat(), "category": categories}
        from_grid = drawn(build(bob, *tile, direct=False, **params))
        assert from_grid == drawn(build(bob, *tile, direct=True, **params))
        assert {dict(props)["category"] for _, props in from_grid} <= {int(c) for c in categories.split(",")}


def test_it_takes_whole_calendar_years_the_year_of_the_day_and_those_before(bob, settings):
    settings.AUMAN_TILE_ACCIDENT_YEARS = 3
    first_day = make_accident(*CENTRE, occurred_at=datetime(2024, 1, 1, 0, 30, tzinfo=BERLIN))
    make_accident(8.4690, 49.4880, occurred_at=datetime(2023, 12, 31, 23, 30, tzinfo=BERLIN))
    accident_grid_rebuild()
    assert grid_years(date(2026, 3, 1)) == (2024, 2026)
    tile = tile_of(*CENTRE, 11)
    # Local calendar years: half past midnight on New Year's Day in Berlin is still the old year in UTC.
    assert ids(bob, tile, on="2026-03-01") == {str(first_day.id)}
    # The direct path (zoom 14 and up) counts three years to the day, which here still holds the 2023 accident:
    # the precision the grid gives up (maps/accident_grid.py).
    assert len(ids(bob, tile_of(*CENTRE, 14), on="2026-03-01")) == 2


def test_it_leaves_kind_and_district_filters_and_high_zooms_to_the_direct_path():
    day = {"on": "2026-03-01"}
    assert uses_accident_grid(parse_tile_request("accidents", *tile_of(*CENTRE, ACCIDENT_GRID_MAX_ZOOM), day))
    assert not uses_accident_grid(parse_tile_request("accidents", *tile_of(*CENTRE, ACCIDENT_GRID_MAX_ZOOM + 1), day))
    assert not uses_accident_grid(parse_tile_request("accidents", *tile_of(*CENTRE, 11), {**day, "kind": "6"}))
    assert not uses_accident_grid(parse_tile_request("roadworks", *tile_of(*CENTRE, 11), day))


# --- Rebuilding -----------------------------------------------------------------------------------------------


def grid_rows() -> list[tuple]:
    return sorted(
        AccidentCell.objects.values_list(
            "zoom", "cx", "cy", "year", "category", "count", "accident_id", "kind", "type", "occurred_at"
        )
    )


def test_it_rebuilds_to_the_same_rows_every_time(bob):
    scatter(60)
    first = accident_grid_rebuild()
    rows = grid_rows()
    assert first == len(rows) > 0
    assert accident_grid_rebuild() == first
    assert grid_rows() == rows
    # Every zoom holds every accident once: the counts of each zoom add up to all of them.
    totals = dict.fromkeys(range(ACCIDENT_GRID_MAX_ZOOM + 1), 0)
    for row in rows:
        totals[row[0]] += row[5]
    assert set(totals.values()) == {60}


def test_updating_the_squares_of_changed_accidents_writes_the_rows_of_a_whole_rebuild_and_no_others(bob):
    scatter(60)
    accident_grid_rebuild()
    built = dict(AccidentCell.objects.values_list("pk", "built_at"))
    accidents = list(Accident.objects.order_by("occurred_at", "id"))
    points = []
    # Written past the services, as the services' hooks name them: before and after each change.
    new = make_accident(*CENTRE, occurred_at=datetime(2024, 6, 1, 12, tzinfo=BERLIN), category=1)
    points.append(grid_point(new.location, new.occurred_at, new.category))
    moved = accidents[3]
    points.append(grid_point(moved.location, moved.occurred_at, moved.category))
    moved.location = Point(8.50, 49.47, srid=4326).transform(25832, clone=True)
    moved.occurred_at = datetime(2026, 1, 1, 0, 30, tzinfo=BERLIN)  # 2025-12-31 23:30 UTC: Berlin's 2026
    moved.save()
    points.append(grid_point(moved.location, moved.occurred_at, moved.category))
    recategorised = accidents[10]
    points.append(grid_point(recategorised.location, recategorised.occurred_at, recategorised.category))
    recategorised.category = 1 if recategorised.category != 1 else 2
    recategorised.save()
    points.append(grid_point(recategorised.location, recategorised.occurred_at, recategorised.category))
    gone = accidents[20]
    points.append(grid_point(gone.location, gone.occurred_at, gone.category))
    gone.delete()

    assert accident_grid_update(points) >= 4
    updated = grid_rows()
    rewritten = AccidentCell.objects.exclude(pk__in=list(built)).count()
    assert 0 < rewritten < len(built) / 2  # the squares concerned at each zoom, not the grid
    kept = AccidentCell.objects.filter(pk__in=list(built)).values_list("pk", "built_at")
    assert all(built[pk] == at for pk, at in kept)

    accident_grid_rebuild()
    assert updated == grid_rows()


def test_an_update_leaves_a_square_whose_only_accident_left_empty_and_counts_cancelled_reports_out(bob):
    accident = make_accident(*CENTRE)
    accident_grid_rebuild()
    point = grid_point(accident.location, accident.occurred_at, accident.category)
    incident = make_incident(kind=IncidentKind.ACCIDENT, status=IncidentStatus.CANCELLED)
    Accident.objects.filter(pk=accident.pk).update(incident=incident)

    accident_grid_update([point])

    assert not AccidentCell.objects.exists()


def test_it_shows_a_police_accident_after_the_rebuild_the_outbox_queues(bob, carol, run_grid_tasks,
                                                                       django_capture_on_commit_callbacks):  # fmt: skip
    tile = tile_of(*CENTRE, 12)
    old = make_accident(*CENTRE, category=5, occurred_at=timezone.now() - timedelta(days=400))
    accident_grid_rebuild()
    before = tile_response(bob, tile)
    assert ids(bob, tile) == {str(old.id)}

    data = {
        "kind": IncidentKind.ACCIDENT,
        "location": Point(*CENTRE, srid=4326).transform(25832, clone=True),
        "street_name": "Kaiserring",
        "occurred_at": timezone.now() - timedelta(minutes=5),
        "accident": {"category": 1, "kind": 6, "type": 4, "involves": ["car", "pedestrian"], "killed": 1},
    }
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_create(user=carol, data=data)
    new = Accident.objects.get(incident=incident)
    after = tile_response(bob, tile)
    assert after["ETag"] != before["ETag"]
    (square,) = [dict(props) for _, props in drawn(after.content)]
    assert square["id"] == str(new.id)  # killed outranks property damage
    assert square["count"] == 2

    # A false report: cancelled, its accident leaves the statistics and, after the rebuild, the grid.
    with django_capture_on_commit_callbacks(execute=True):
        incident_transition(
            user=carol, incident_id=incident.pk, to_status=IncidentStatus.CANCELLED, comment="false report",
            expected_version=incident.version,
        )  # fmt: skip
    assert ids(bob, tile) == {str(old.id)}


def test_it_changes_the_tile_when_the_grid_is_rebuilt_without_a_service(bob):
    tile = tile_of(*CENTRE, 11)
    make_accident(*CENTRE)
    accident_grid_rebuild()
    before = tile_response(bob, tile)
    assert len(ids(bob, tile)) == 1
    # Written past the services (a bulk load): the grid, and with it the tile, changes with the next rebuild.
    make_accident(8.4690, 49.4880)
    assert tile_response(bob, tile)["ETag"] == before["ETag"]
    out = io.StringIO()
    call_command("rebuild_accident_grid", stdout=out)
    assert "accident grid:" in out.getvalue()
    assert tile_response(bob, tile)["ETag"] != before["ETag"]
    assert len(ids(bob, tile)) == 2


# --- Visibility -----------------------------------------------------------------------------------------------


def test_it_shows_the_grid_to_staff_only(bob, carol, alice, dave):
    accident = make_accident(*CENTRE)
    accident_grid_rebuild()
    tile = tile_of(*CENTRE, 11)
    assert ids(bob, tile) == ids(carol, tile) == {str(accident.id)}
    for user in (None, alice, dave):
        assert tile_response(user, tile).content == b""
        # Also the statement itself gives nothing to them, should it ever be asked.
        assert build(user, *tile, direct=False) == b""


def test_it_leaves_accidents_of_cancelled_reports_out_of_the_grid(bob):
    incident = make_incident(kind=IncidentKind.ACCIDENT, status=IncidentStatus.CANCELLED)
    make_accident(*CENTRE, incident=incident)
    accident_grid_rebuild()
    assert not AccidentCell.objects.exists()


def test_a_police_entry_queues_an_update_of_its_squares(carol, monkeypatch, django_capture_on_commit_callbacks):
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.accident_grid_update_task, "delay", lambda *args: queued.append(args))
    place = Point(*CENTRE, srid=4326).transform(25832, clone=True)
    data = {
        "kind": IncidentKind.ACCIDENT,
        "location": place,
        "street_name": "Kaiserring",
        "occurred_at": datetime(2026, 1, 1, 0, 30, tzinfo=BERLIN),
        "accident": {"category": 3, "kind": 5, "type": 2, "involves": ["car"], "slightly_injured": 1},
    }
    with django_capture_on_commit_callbacks(execute=True):
        incident = incident_create(user=carol, data=data)
    ((point,),) = queued[0]
    assert (point[0], point[1]) == (pytest.approx(place.x), pytest.approx(place.y))
    assert (datetime.fromisoformat(point[2]), point[3]) == (data["occurred_at"], 3)

    queued.clear()
    later = datetime(2025, 12, 31, 22, tzinfo=BERLIN)
    with django_capture_on_commit_callbacks(execute=True):
        incident_update(user=carol, incident_id=incident.pk, data={"occurred_at": later},
                        expected_version=incident.version)  # fmt: skip
    (points,) = queued[0]  # the squares it lay in and those it lies in now
    assert [(datetime.fromisoformat(p[2]), p[3]) for p in points] == [(data["occurred_at"], 3), (later, 3)]
