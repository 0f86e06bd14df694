"""Data the Waze CIFS and DATEX II tests share beyond tests/feeds/conftest.py: daily windows and classified accidents.

Plain builders, not fixtures, so both test modules use them without a second conftest.
"""

from __future__ import annotations

from datetime import time
from functools import cache

from django.contrib.gis.geos import LineString
from lxml import etree

from accounts.models import Organisation
from roadworks.models import Roadwork, TrafficManagement
from tests.conftest import line, make_incident, make_roadwork, shared_path
from traffic.models import Accident, AccidentCategory, Incident, IncidentKind

# Casualties that fit each Unfallkategorie (the category is the most severe consequence).
CASUALTIES_BY_CATEGORY = {
    AccidentCategory.KILLED: {"killed": 1, "seriously_injured": 2},
    AccidentCategory.SERIOUSLY_INJURED: {"seriously_injured": 1, "slightly_injured": 1},
    AccidentCategory.SLIGHTLY_INJURED: {"slightly_injured": 3},
    AccidentCategory.SERIOUS_PROPERTY_DAMAGE: {},
    AccidentCategory.OTHER_PROPERTY_DAMAGE: {},
    AccidentCategory.INTOXICATED_OTHER: {},
}


def make_windowed_works(organisation: Organisation) -> dict[str, Roadwork]:
    """Works with daily windows: weekdays by day, every day, across midnight, and weekdays without a window."""
    return {
        "weekdays": make_roadwork(
            organisation,
            title="Tagesbaustelle",
            daily_start=time(7, 0),
            daily_end=time(17, 0),
            weekdays=[0, 1, 2, 3, 4],
        ),
        "everyday": make_roadwork(organisation, title="Jeden Tag", daily_start=time(9, 0), daily_end=time(15, 30)),
        "night": make_roadwork(
            organisation,
            title="Nachtbaustelle",
            traffic_management=TrafficManagement.FULL_CLOSURE,
            daily_start=time(20, 0),
            daily_end=time(5, 0),
            weekdays=[4, 6],
        ),
        "night_everyday": make_roadwork(
            organisation, title="Jede Nacht", daily_start=time(22, 0), daily_end=time(4, 0)
        ),
        "saturdays": make_roadwork(organisation, title="Samstags", weekdays=[5]),
    }


def make_accident(category: int, *, kind: int = 2, type_: int = 6, **flags: bool) -> Incident:
    """An accident incident with its classification; casualties fit the category."""
    incident = make_incident(kind=IncidentKind.ACCIDENT, lanes_blocked=1)
    Accident.objects.create(
        incident=incident,
        location=incident.location,
        occurred_at=incident.occurred_at,
        category=category,
        kind=kind,
        type=type_,
        **CASUALTIES_BY_CATEGORY[AccidentCategory(category)],
        **flags,
    )
    return incident


def make_every_accident() -> dict[int, Incident]:
    return {category.value: make_accident(category.value) for category in AccidentCategory}


def straight_line(length_m: float) -> LineString:
    """A straight east-west line of about length_m metres in the metric CRS, inside the service area."""
    start = line([(8.4740, 49.4840), (8.4741, 49.4840)])
    x, y = start.coords[0]
    return LineString([(x, y), (x + length_m, y)], srid=start.srid)


@cache
def official_schema(*parts: str) -> etree.XMLSchema:
    """An official XSD from ../shared (not the copy in auman/data), loaded once."""
    return etree.XMLSchema(etree.parse(str(shared_path("data", "schemas", *parts))))


def official_errors(schema: etree.XMLSchema, body: bytes) -> list[str]:
    document = etree.fromstring(body)
    if schema.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]
