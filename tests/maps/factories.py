"""Builders for the map tests that tests/conftest.py does not have: black spots as the nightly job stores them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.gis.geos import Point
from django.utils import timezone

from tests.conftest import period
from traffic.models import BlackSpot

# A junction on Kaiserring (where make_incident puts its accidents) and one in Neckarau, about 4 km south.
JUNCTION = (8.4750, 49.4846)
NECKARAU_JUNCTION = (8.4870, 49.4525)


def make_black_spot(*, at: tuple[float, float] = JUNCTION, radius_m: float = 30, **overrides: Any) -> BlackSpot:
    """A one-year black spot of 6 turning accidents (score 12) around `at` (lon, lat): an area of `radius_m`."""
    centre = Point(*at, srid=4326).transform(25832, clone=True)
    values: dict[str, Any] = {
        "key": f"UHS-1J/2/{round(centre.x)}/{round(centre.y)}",
        "rule": "UHS-1J",
        "period": period(timezone.now() - timedelta(days=365), 365),
        "location": centre,
        "area": centre.buffer(radius_m),
        "accident_count": 6,
        "score": 12,
        "accident_type": 2,
        "statistics": {"by_type": {"2": 6}, "by_category": {"3": 6}},
    }
    values.update(overrides)
    return BlackSpot.objects.create(**values)
