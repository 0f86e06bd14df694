"""What the feed tests share: the official schemas from ../shared, a clean feed cache, and data covering every kind.

Personas come from tests/conftest.py; the feeds themselves are read anonymously, as navigation apps read them.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.gis.geos import LineString, MultiLineString, Point
from django.core.cache import cache
from django.utils import timezone
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from roadworks.models import Detour, Direction, Roadwork, RoadworkStatus, TrafficManagement, WorkKind
from tests.conftest import KAISERRING, NECKARAU, line, make_incident, make_roadwork, period, shared_path
from traffic.feeds.http import CACHE_KEY_PREFIX
from traffic.models import Accident, Incident, IncidentDirection, IncidentKind, IncidentStatus

WZDX_URL = "/feeds/wzdx/v4.2/workzones.geojson"
TDX_URL = "/feeds/tdx/v1.1/incidents.geojson"
GEOJSON_URL = "/feeds/geojson/public.geojson"
MY_FEEDS = {"wzdx-workzones": WZDX_URL, "tdx-incidents": TDX_URL, "geojson-public": GEOJSON_URL}
# Luisenring, a street a few hundred metres from Kaiserring, for detours.
LUISENRING = [(8.4700, 49.4870), (8.4730, 49.4890), (8.4765, 49.4875)]


@pytest.fixture(autouse=True)
def _no_feed_left_in_the_cache():
    # The test Redis database outlives each test's rolled-back rows; old bytes must not leak in.
    cache.delete_pattern(f"{CACHE_KEY_PREFIX}:*")


def _registry(*folders: str) -> Registry:
    resources = []
    for folder in folders:
        for path in sorted(shared_path("data", "schemas", "wzdx", folder).glob("*.json")):
            contents = json.loads(path.read_text())
            resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


@pytest.fixture(scope="session")
def official() -> dict[str, list[Draft7Validator]]:
    """The official schemas in ../shared, per feed: WZDx 4.2 both bundled and as its multi-file set."""
    root = shared_path("data", "schemas", "wzdx")
    # FormatChecker checks "email" but not "date-time" (that needs rfc3339-validator); the business rule
    # tests check every time instead.
    checker = FormatChecker()
    return {
        "wzdx-workzones": [
            Draft7Validator(json.loads((root / "bundled" / "wzdx42.schema.json").read_text()), format_checker=checker),
            Draft7Validator(
                json.loads((root / "4.2" / "WorkZoneFeed.json").read_text()),
                registry=_registry("4.2", "geojson.org"),
                format_checker=checker,
            ),
        ],
        "tdx-incidents": [
            Draft7Validator(
                json.loads((root / "tdx-1.1" / "RoadIncidentFeed.json").read_text()),
                registry=_registry("tdx-1.1", "geojson.org"),
                format_checker=checker,
            )
        ],
        "geojson-public": [
            Draft7Validator(
                json.loads((root / "geojson.org" / "FeatureCollection.json").read_text()), format_checker=checker
            )
        ],
    }


def official_errors(official: dict[str, list[Draft7Validator]], key: str, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for validator in official[key]
        for error in validator.iter_errors(document)
    ]


def feed_of(client, url: str, **params: str) -> dict:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def by_id(document: dict) -> dict[str, dict]:
    return {feature["id"]: feature for feature in document["features"]}


def multi_line(*parts: list[tuple[float, float]]):
    return MultiLineString([LineString(part, srid=4326) for part in parts], srid=4326).transform(25832, clone=True)


def area_along(coords: list[tuple[float, float]], half_width_m: float = 4):
    return line(coords).buffer_with_style(half_width_m, end_cap_style=2)


@pytest.fixture
def every_roadwork(stadtwerke, telekom) -> dict[str, Roadwork]:
    """Published works covering every kind of works, traffic management and direction, the awkward geometries,
    limits, lanes and detours."""
    works: dict[str, Roadwork] = {}
    for kind in WorkKind:
        works[f"kind:{kind.value}"] = make_roadwork(stadtwerke, work_kind=kind, title=f"Arbeiten {kind.label}")
    for tm in TrafficManagement:
        works[f"tm:{tm.value}"] = make_roadwork(
            telekom, traffic_management=tm, title=f"Verkehr {tm.label}", lanes_affected=2, direction=Direction.FORWARD
        )
    for direction in Direction:
        works[f"dir:{direction.value}"] = make_roadwork(
            stadtwerke, direction=direction, status=RoadworkStatus.IN_PROGRESS
        )
    works["area"] = make_roadwork(telekom, geometry=area_along(KAISERRING), work_kind=WorkKind.BUILDING_SITE)
    works["two_streets"] = make_roadwork(telekom, geometry=multi_line(KAISERRING, NECKARAU), street_names=["A", "B"])
    works["limits"] = make_roadwork(
        stadtwerke,
        max_width_m=Decimal("2.55"),
        max_height_m=Decimal("3.80"),
        max_weight_t=Decimal("7.50"),
        speed_limit_kmh=30,
        description="Fahrbahnverengung, Tempo 30",
    )
    works["nameless"] = make_roadwork(stadtwerke, street_names=[], title="Hausanschluss Wasser")
    detoured = works["detoured"] = make_roadwork(
        stadtwerke, traffic_management=TrafficManagement.FULL_CLOSURE, direction=Direction.BOTH, lanes_affected=1
    )
    Detour.objects.create(roadwork=detoured, name="Umleitung über Luisenring", geometry=line(LUISENRING))
    Detour.objects.create(
        roadwork=detoured,
        name="Umleitung Süd",
        description="Für Lkw",
        geometry=multi_line(LUISENRING[:2], NECKARAU),
        period=period(detoured.period.lower + timedelta(days=1), 3),
    )
    return works


def point(lon: float, lat: float) -> Point:
    return Point(lon, lat, srid=4326).transform(25832, clone=True)


@pytest.fixture
def every_incident(police_org) -> dict[str, Incident]:
    """Active incidents of every kind and direction, with and without a stretch, and an accident with casualties."""
    incidents: dict[str, Incident] = {}
    for kind in IncidentKind:
        incidents[f"kind:{kind.value}"] = make_incident(kind=kind, organisation=police_org)
    for direction in IncidentDirection:
        incidents[f"dir:{direction.value}"] = make_incident(
            kind=IncidentKind.BREAKDOWN,
            affected_line=line(KAISERRING),
            direction=direction,
            lanes_blocked=1,
            status=IncidentStatus.CONFIRMED,
            confirmed_at=timezone.now(),
            expected_clearance_at=timezone.now() + timedelta(hours=2),
        )
    incidents["no_lanes"] = make_incident(kind=IncidentKind.HAZARD, lanes_blocked=0, street_name="")
    crash = incidents["injuries"] = make_incident(kind=IncidentKind.ACCIDENT, organisation=police_org)
    Accident.objects.create(
        incident=crash,
        location=crash.location,
        occurred_at=crash.occurred_at,
        category=2,
        kind=5,
        type=3,
        seriously_injured=1,
    )
    return incidents
