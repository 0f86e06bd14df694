"""Rule C1 in PostGIS against a brute-force reference (bench/_rules_data.py): on random works with daily windows,
weekdays and short periods (across the switch to summer time), the pairs are the same, for the sweep and for each
work's own run. The benchmark (bench/conflict_rules.py) does the same on 2,000 works."""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

import pytest
import shapely
from django.conf import settings
from django.contrib.gis.geos import LineString
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from bench._rules_data import ReferenceWork, c1_reference, synthetic_works
from roadworks import rules
from roadworks.models import CONFLICTING_STATUSES, Roadwork, RoadworkStatus
from tests.conftest import KAISERRING, line, local
from tests.roadworks.rule_helpers import pairs

pytestmark = pytest.mark.django_db

STATUSES = (*CONFLICTING_STATUSES, RoadworkStatus.DRAFT, RoadworkStatus.COMPLETED)


@pytest.fixture
def random_works(stadtwerke, telekom) -> list[Roadwork]:
    specs = synthetic_works(
        random.Random(4711),
        300,
        centre=line(KAISERRING).coords[0],
        spread_m=300,
        first_day=local(2027, 3, 1),
        span_days=60,
        statuses=tuple(str(s) for s in STATUSES),
        window_share=0.4,
        weekday_share=0.3,
    )
    organisations = (stadtwerke, telekom)
    return Roadwork.objects.bulk_create(
        Roadwork(
            organisation=organisations[spec.organisation],
            reference=f"REF-{spec.index:04d}",
            title="Zufall",
            street_names=[spec.street],
            geometry=LineString(spec.coords, srid=25832),
            period=DateTimeTZRange(spec.start, spec.end, "[)"),
            daily_start=spec.daily_start,
            daily_end=spec.daily_end,
            weekdays=list(spec.weekdays),
            status=spec.status,
        )
        for spec in specs
    )


def reference_for(works: list[Roadwork]):
    return c1_reference(
        [
            ReferenceWork(
                key=w.reference,
                geometry=shapely.from_wkb(bytes(w.geometry.wkb)),
                start=w.period.lower,
                end=w.period.upper,
                daily_start=w.daily_start,
                daily_end=w.daily_end,
                weekdays=tuple(w.weekdays),
                status=w.status,
            )
            for w in works
        ],
        buffer_m=settings.AUMAN_CONFLICT_RULES["C1"]["buffer_m"],
        statuses=[str(s) for s in CONFLICTING_STATUSES],
        tz=ZoneInfo(settings.TIME_ZONE),
    )


def test_the_sweep_finds_exactly_the_pairs_of_the_brute_force_reference(random_works):
    expected = reference_for(random_works)
    # The data must exercise the rule: enough pairs, and pairs that only the windows and weekdays keep apart.
    assert len(expected.pairs) >= 30 and expected.kept_apart_by_schedules >= 10, expected

    rules.get("C1").sweep()

    assert pairs("C1") == expected.pairs


def test_each_works_own_run_agrees_with_the_reference(random_works):
    expected = reference_for(random_works)
    for work in random_works:
        rules.get("C1").for_roadwork(work.pk)
    assert pairs("C1") == expected.pairs
    # And the sweep afterwards changes nothing.
    assert rules.get("C1").sweep() == {"found": len(expected.pairs), "changed": 0, "resolved": 0}
