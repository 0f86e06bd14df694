"""Accident black spots (Unfallhäufungsstellen, UHS) and the warning conflict for roadworks planned through them.

The rules follow the FGSV "Merkblatt zur Örtlichen Unfalluntersuchung in Unfallkommissionen" (M Uko, 2012) and the
state decrees built on it; each is a dict in settings.AUMAN_BLACKSPOT_RULES:

- UHS-1J: one-year map, at least 5 accidents of the same type (Unfalltyp), any category;
- UHS-3J-SP: three-year map, at least 3 accidents with people killed or seriously injured (categories 1, 2);
- UHS-3J-SCORE: three-year map, 2 × accidents with slightly injured (category 3) + 5 × accidents with people
  killed or seriously injured >= 15.

Where: M Uko means a spot, a junction or a short stretch of road, not a district. A cluster is what PostGIS's
ST_ClusterDBSCAN finds with eps = radius_m and minpoints = the rule's minimum: some accident has that many accidents
(itself included) within radius_m, and the cluster is everything reachable that way. The default radius of 25 m
gives spots about 50 m across, the usual extent of an inner-urban UHS; longer stretches along a road
(Unfallhäufungslinien, UHL) are not computed. Large radii chain dense city centres into one cluster, so keep it
small inside towns (a rural district may prefer 150 m, which matches the 300 m used for UHS outside towns).

When: rolling windows by default, the `years` before the time of computation; "window": "calendar" takes the last
complete calendar years instead, as the commissions' printed one- and three-year maps do.

Keys: a black spot keeps its id and key as long as it holds. After each computation new clusters are matched to
existing black spots of the same rule (and type) whose area they overlap, the largest overlap first; a match keeps
the old row and refreshes its members, counts and area. Member accidents do change (the window moves on), so the
key does not name them: a new black spot gets "<rule>/<type or *>/<easting>/<northing>" of its first centre (metres,
storage SRID). Black spots that no longer hold are deleted, and the whole set is replaced in one transaction.

Conflict C8 (severity warning, layer "black_spot"): a roadwork that is submitted, under review, approved or in
progress, not over yet, and lies within AUMAN_CONFLICT_BUFFER_M of a black spot's area. Written after every
computation for all roadworks, and for one roadwork by conflicts_detect_black_spots_for when it changes.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from roadworks.conflict_sql import layer_rule_sql, run_rule_sql
from roadworks.models import CONFLICTING_STATUSES, ConflictLayer, Severity

from .models import AccidentCategory, AccidentType

BLACK_SPOT_CONFLICT_RULE = "C8"
# M Uko's weights: an accident with people killed or seriously injured counts 5, with slightly injured 2.
DEFAULT_WEIGHTS = {
    AccidentCategory.KILLED: 5,
    AccidentCategory.SERIOUSLY_INJURED: 5,
    AccidentCategory.SLIGHTLY_INJURED: 2,
}
WINDOW_ROLLING = "rolling"
WINDOW_CALENDAR = "calendar"

RULE_LABELS = {
    "UHS-1J": _("One-year map: accidents of the same type"),
    "UHS-3J-SP": _("Three-year map: accidents with people killed or seriously injured"),
    "UHS-3J-SCORE": _("Three-year map: weighted score of accidents with injuries"),
}

_RULE_KEYS = {
    "code",
    "label",
    "years",
    "radius_m",
    "min_accidents",
    "min_score",
    "same_type",
    "categories",
    "weights",
    "window",
}
_CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
# Serialises computations across workers: two at once would fight over the same rows.
_LOCK_KEY = 0x41554D42  # "AUMB"


@dataclass(frozen=True)
class BlackSpotRule:
    code: str
    years: int
    radius_m: float
    min_accidents: int | None = None
    min_score: int | None = None
    same_type: bool = False
    categories: tuple[int, ...] | None = None
    weights: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    window: str = WINDOW_ROLLING
    label: str = ""

    @property
    def display_label(self) -> str:
        return self.label or str(RULE_LABELS.get(self.code, self.code))

    @property
    def min_points(self) -> int:
        """DBSCAN's minpoints: the fewest accidents that can meet the rule.

        For a score rule that is the score divided by the highest weight: fewer accidents can never reach it, and
        clusters below the score are dropped after counting.
        """
        needed = self.min_accidents or 1
        if self.min_score is not None:
            counted = [w for c, w in self.weights.items() if self.categories is None or c in self.categories]
            top = max(counted, default=0)
            needed = max(needed, math.ceil(self.min_score / top) if top else 1)
        return needed

    def window_bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end) of the accidents this rule looks at, computed at `now`."""
        if self.window == WINDOW_CALENDAR:
            local = timezone.localtime(now)
            end = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
            return end.replace(year=end.year - self.years), end
        return _years_before(now, self.years), now

    def describe(self) -> str:
        """The thresholds in words, for the commission's page."""
        parts = []
        if self.min_accidents:
            if self.same_type:
                parts.append(str(_("at least {n} accidents of the same type")).format(n=self.min_accidents))
            else:
                parts.append(str(_("at least {n} accidents")).format(n=self.min_accidents))
        if self.min_score is not None:
            weights = ", ".join(f"{_category_short(c)} × {w}" for c, w in sorted(self.weights.items()) if w)
            parts.append(str(_("score ({weights}) at least {n}")).format(weights=weights, n=self.min_score))
        if self.categories:
            categories = ", ".join(str(c) for c in self.categories)
            parts.append(str(_("categories {categories}")).format(categories=categories))
        parts.append(str(_("within {radius} m")).format(radius=f"{self.radius_m:g}"))
        if self.window == WINDOW_CALENDAR:
            parts.append(str(_("in the last {years} calendar year(s)")).format(years=self.years))
        else:
            parts.append(str(_("in the last {years} year(s)")).format(years=self.years))
        return "; ".join(parts)


def _category_short(category: int) -> str:
    return str(_("category {n}")).format(n=category)


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def _fail(index: int, message: str) -> None:
    raise ImproperlyConfigured(f"AUMAN_BLACKSPOT_RULES[{index}]: {message}")


def _int(value: Any, index: int, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(index, f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return value


def parse_rule(index: int, raw: Any) -> BlackSpotRule:
    if not isinstance(raw, dict):
        _fail(index, f"each rule is an object (dict), not {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        _fail(index, f"unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    code = raw.get("code")
    if not isinstance(code, str) or not _CODE_PATTERN.match(code):
        _fail(index, f"code must be 1-24 letters, digits, '-' or '_', not {code!r}")
    years = _int(raw.get("years"), index, "years", 1, 10)
    radius = raw.get("radius_m", settings.AUMAN_BLACKSPOT_RADIUS_M)
    if isinstance(radius, bool) or not isinstance(radius, int | float) or not 0 < radius <= 1000:
        _fail(index, f"radius_m must be a number of metres above 0 and up to 1000, not {radius!r}")
    min_accidents = raw.get("min_accidents")
    if min_accidents is not None:
        min_accidents = _int(min_accidents, index, "min_accidents", 1, 1000)
    min_score = raw.get("min_score")
    if min_score is not None:
        min_score = _int(min_score, index, "min_score", 1, 100000)
    if min_accidents is None and min_score is None:
        _fail(index, "give min_accidents, min_score or both")
    categories = raw.get("categories")
    if categories is not None:
        if not isinstance(categories, list) or not categories:
            _fail(index, f"categories must be a non-empty list of accident categories 1-6, not {categories!r}")
        categories = tuple(sorted({_int(c, index, "a category", 1, 6) for c in categories}))
    weights = dict(DEFAULT_WEIGHTS)
    if "weights" in raw:
        if not isinstance(raw["weights"], dict):
            _fail(index, f"weights must map categories to points, such as {{'1': 5, '3': 2}}, not {raw['weights']!r}")
        weights = {}
        for key, points in raw["weights"].items():
            category = int(key) if isinstance(key, str) and key.isdigit() else key
            weights[_int(category, index, "a weight's category", 1, 6)] = _int(points, index, "a weight", 0, 1000)
    same_type = raw.get("same_type", False)
    if not isinstance(same_type, bool):
        _fail(index, f"same_type must be true or false, not {same_type!r}")
    window = raw.get("window", WINDOW_ROLLING)
    if window not in (WINDOW_ROLLING, WINDOW_CALENDAR):
        _fail(index, f"window must be '{WINDOW_ROLLING}' or '{WINDOW_CALENDAR}', not {window!r}")
    label = raw.get("label", "")
    if not isinstance(label, str):
        _fail(index, f"label must be text, not {label!r}")
    return BlackSpotRule(
        code=code,
        years=years,
        radius_m=float(radius),
        min_accidents=min_accidents,
        min_score=min_score,
        same_type=same_type,
        categories=categories,
        weights=weights,
        window=window,
        label=label,
    )


def blackspot_rules() -> list[BlackSpotRule]:
    """settings.AUMAN_BLACKSPOT_RULES, checked; raises ImproperlyConfigured naming the rule and the problem."""
    raw = settings.AUMAN_BLACKSPOT_RULES
    if not isinstance(raw, list):
        raise ImproperlyConfigured("AUMAN_BLACKSPOT_RULES must be a list of rules")
    rules = [parse_rule(i, item) for i, item in enumerate(raw)]
    codes = [r.code for r in rules]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ImproperlyConfigured(f"AUMAN_BLACKSPOT_RULES: each code once; repeated: {duplicates}")
    return rules


def rule_labels() -> dict[str, str]:
    return {rule.code: rule.display_label for rule in blackspot_rules()}


# --- Computation -----------------------------------------------------------------------------------------------

_FOUND_DDL = (
    "DROP TABLE IF EXISTS pg_temp.blackspot_found",
    "DROP TABLE IF EXISTS pg_temp.blackspot_members",
    """
    CREATE TEMP TABLE blackspot_found (
        n serial PRIMARY KEY,
        rule text NOT NULL,
        accident_type smallint,
        period tstzrange NOT NULL,
        member_ids uuid[] NOT NULL,
        centre geometry NOT NULL,
        area geometry NOT NULL,
        accident_count integer NOT NULL,
        score integer NOT NULL,
        statistics jsonb NOT NULL,
        spot_id uuid,
        is_new boolean NOT NULL DEFAULT false
    )
    """,
)


def _count_by(column: str, values: list[int]) -> str:
    return ", ".join(f"'{v}', count(*) FILTER (WHERE c.{column} = {v})" for v in values)


_INVOLVED = ("bicycle", "car", "pedestrian", "motorcycle", "goods_vehicle", "other")
_STATISTICS_SQL = (
    "jsonb_build_object("
    f"'by_type', jsonb_build_object({_count_by('type', list(AccidentType.values))}), "
    f"'by_category', jsonb_build_object({_count_by('category', list(AccidentCategory.values))}), "
    "'involves', jsonb_build_object("
    + ", ".join(f"'{name}', count(*) FILTER (WHERE c.involves_{name})" for name in _INVOLVED)
    + "))"
)

_CLUSTER_SQL = """
    INSERT INTO blackspot_found
        (rule, accident_type, period, member_ids, centre, area, accident_count, score, statistics)
    SELECT %(rule)s, {type_column}, tstzrange(%(start)s, %(end)s, '[)'),
           array_agg(c.id ORDER BY c.id),
           ST_Centroid(ST_Collect(c.location)),
           ST_Buffer(ST_ConvexHull(ST_Collect(c.location)), %(radius)s, 'quad_segs=4'),
           count(*), sum(c.weight), {statistics}
      FROM (
        SELECT a.id, a.location, a.type, a.category,
               {involves},
               COALESCE((%(weights)s::integer[])[a.category], 0) AS weight,
               ST_ClusterDBSCAN(a.location, eps := %(radius)s, minpoints := %(minpoints)s) OVER ({partition}) AS cid
          FROM traffic_accident a
          LEFT JOIN traffic_incident i ON i.id = a.incident_id
         WHERE a.occurred_at >= %(start)s AND a.occurred_at < %(end)s {category_condition}
           -- A report cancelled as false keeps its accident row but never counts (see
           -- traffic.selectors.accidents_for_statistics, the same rule for ORM reads).
           AND (i.status IS NULL OR i.status <> 'cancelled')
      ) c
     WHERE c.cid IS NOT NULL
     GROUP BY {group}
    HAVING count(*) >= %(min_accidents)s AND sum(c.weight) >= %(min_score)s
"""


def cluster_sql(rule: BlackSpotRule) -> str:
    """The one statement that finds a rule's clusters into blackspot_found (exposed for the benchmark)."""
    return _CLUSTER_SQL.format(
        type_column="c.type" if rule.same_type else "NULL::smallint",
        statistics=_STATISTICS_SQL,
        involves=", ".join(f"a.involves_{name}" for name in _INVOLVED),
        partition="PARTITION BY a.type" if rule.same_type else "",
        category_condition="AND a.category = ANY(%(categories)s)" if rule.categories else "",
        group="c.type, c.cid" if rule.same_type else "c.cid",
    )


def cluster_params(rule: BlackSpotRule, now: datetime) -> dict[str, Any]:
    start, end = rule.window_bounds(now)
    return {
        "rule": rule.code,
        "start": start,
        "end": end,
        "radius": rule.radius_m,
        "minpoints": rule.min_points,
        "weights": [rule.weights.get(category, 0) for category in AccidentCategory.values],
        "categories": list(rule.categories or ()),
        "min_accidents": rule.min_accidents or 1,
        "min_score": rule.min_score if rule.min_score is not None else -1,
    }


# Each new cluster takes the existing black spot (same rule and type) it overlaps most; an existing black spot goes
# to the cluster that overlaps it most. The rest are new.
_MATCH_SQL = (
    """
    WITH candidates AS (
        SELECT f.n, b.id, ST_Area(ST_Intersection(f.area, b.area)) AS overlap
          FROM blackspot_found f
          JOIN traffic_blackspot b
            ON b.rule = f.rule AND b.accident_type IS NOT DISTINCT FROM f.accident_type
           AND ST_Intersects(b.area, f.area)
    ),
    best_for_cluster AS (
        SELECT DISTINCT ON (n) n, id, overlap FROM candidates ORDER BY n, overlap DESC, id
    ),
    winners AS (
        SELECT DISTINCT ON (id) n, id FROM best_for_cluster ORDER BY id, overlap DESC, n
    )
    UPDATE blackspot_found f SET spot_id = w.id FROM winners w WHERE f.n = w.n
    """,
    "UPDATE blackspot_found SET spot_id = gen_random_uuid(), is_new = true WHERE spot_id IS NULL",
    """
    CREATE TEMP TABLE blackspot_members AS
    SELECT f.spot_id, unnest(f.member_ids) AS accident_id FROM blackspot_found f
    """,
    "ANALYZE blackspot_found",
    "ANALYZE blackspot_members",
)

# Members that left, then black spots that no longer hold (their members are gone by then: no cascade in the DB).
_DELETE_MEMBERS_SQL = """
    DELETE FROM {through} t
     WHERE NOT EXISTS (
        SELECT 1 FROM blackspot_members m WHERE m.spot_id = t.blackspot_id AND m.accident_id = t.accident_id)
"""
_DELETE_SPOTS_SQL = """
    DELETE FROM traffic_blackspot b WHERE NOT EXISTS (SELECT 1 FROM blackspot_found f WHERE f.spot_id = b.id)
"""

_UPDATE_SQL = """
    UPDATE traffic_blackspot b
       SET period = f.period, location = f.centre, area = f.area, accident_count = f.accident_count,
           score = f.score, statistics = f.statistics, computed_at = now()
      FROM blackspot_found f
     WHERE f.spot_id = b.id AND NOT f.is_new
"""

_INSERT_SQL = """
    INSERT INTO traffic_blackspot
        (id, key, rule, period, location, area, accident_count, score, accident_type, statistics, computed_at)
    SELECT k.spot_id,
           CASE WHEN k.rn = 1 AND NOT EXISTS (SELECT 1 FROM traffic_blackspot b WHERE b.key = k.key_base)
                THEN k.key_base ELSE k.key_base || '-' || left(k.spot_id::text, 8) END,
           k.rule, k.period, k.centre, k.area, k.accident_count, k.score, k.accident_type, k.statistics, now()
      FROM (
        SELECT f.*, row_number() OVER (PARTITION BY f.key_base ORDER BY f.n) AS rn
          FROM (
            SELECT f.*, f.rule || '/' || COALESCE(f.accident_type::text, '*') || '/'
                        || round(ST_X(f.centre))::bigint || '/' || round(ST_Y(f.centre))::bigint AS key_base
              FROM blackspot_found f WHERE f.is_new
          ) f
      ) k
"""

_INSERT_MEMBERS_SQL = """
    INSERT INTO {through} (blackspot_id, accident_id)
    SELECT m.spot_id, m.accident_id FROM blackspot_members m
    ON CONFLICT (blackspot_id, accident_id) DO NOTHING
"""


def _through_table() -> str:
    from .models import BlackSpot

    return connection.ops.quote_name(BlackSpot.accidents.through._meta.db_table)


@transaction.atomic
def blackspots_compute(*, now: datetime | None = None) -> dict[str, Any]:
    """Recompute every black spot under every configured rule, replacing the stored set in one transaction.

    Returns counts: black spots per rule, created, kept (updated), deleted, and the C8 conflict counts.
    """
    now = now or timezone.now()
    rules = blackspot_rules()
    through = _through_table()
    per_rule: dict[str, int] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        for statement in _FOUND_DDL:
            cursor.execute(statement)
        for rule in rules:
            cursor.execute(cluster_sql(rule), cluster_params(rule, now))
            per_rule[rule.code] = cursor.rowcount
        for statement in _MATCH_SQL:
            cursor.execute(statement)
        cursor.execute(_DELETE_MEMBERS_SQL.format(through=through))
        cursor.execute(_DELETE_SPOTS_SQL)
        deleted = cursor.rowcount
        cursor.execute(_UPDATE_SQL)
        kept = cursor.rowcount
        cursor.execute(_INSERT_SQL)
        created = cursor.rowcount
        cursor.execute(_INSERT_MEMBERS_SQL.format(through=through))
        cursor.execute("DROP TABLE blackspot_found, blackspot_members")
    conflicts = conflicts_detect_black_spots(now=now)
    return {"rules": per_rule, "created": created, "kept": kept, "deleted": deleted, "conflicts": conflicts}


# --- Conflict C8: roadworks planned through a black spot -------------------------------------------------------

# Roadworks that take (or will take) road space within the conflict buffer of a black spot's area.
_C8_FOUND_SQL = """
    SELECT r.id AS roadwork, b.id::text AS item, r.period AS overlap,
           ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Intersection(
               ST_Buffer(r.geometry, %(buffer)s + 0.01), b.area)), 3)) AS place
      FROM roadworks_roadwork r
      JOIN traffic_blackspot b ON ST_DWithin(r.geometry, b.area, %(buffer)s)
     WHERE r.status = ANY(%(statuses)s) AND upper(r.period) > %(now)s {roadwork_condition}
"""


def _c8_sql(*, roadwork_condition: str = "", scope: str = "") -> str:
    return layer_rule_sql(
        rule=BLACK_SPOT_CONFLICT_RULE,
        severity=Severity.WARNING.value,
        layer=ConflictLayer.BLACK_SPOT.value,
        found=_C8_FOUND_SQL.format(roadwork_condition=roadwork_condition),
        scope=scope,
    )


def _run_c8(sql: str, params: dict[str, Any], now: datetime | None) -> dict[str, int]:
    params = {
        "buffer": settings.AUMAN_CONFLICT_BUFFER_M,
        "statuses": [str(s) for s in CONFLICTING_STATUSES],
        "now": now or timezone.now(),
        **params,
    }
    with connection.cursor() as cursor:
        return run_rule_sql(cursor, sql, params)


@transaction.atomic
def conflicts_detect_black_spots_for(*, roadwork_id: uuid.UUID | str, now: datetime | None = None) -> dict[str, int]:
    """Rule C8 for one roadwork against every black spot: call it when a roadwork's geometry, period or status
    changes (the roadwork conflict task does)."""
    sql = _c8_sql(roadwork_condition="AND r.id = %(id)s", scope="AND c.roadwork_a_id = %(id)s")
    return _run_c8(sql, {"id": str(roadwork_id)}, now)


@transaction.atomic
def conflicts_detect_black_spots(*, now: datetime | None = None) -> dict[str, int]:
    """Rule C8 for every roadwork: after each black-spot computation, and in a full conflict sweep."""
    return _run_c8(_c8_sql(), {}, now)
