"""The catalogue of coordination rules: what makes two roadworks (or a roadwork and a rule layer) a conflict.

Each rule is a small object with a code, a name, a default severity and its parameters. Parameter values live in
settings.AUMAN_CONFLICT_RULES (defaults there, overridable per parameter through the environment as JSON) and are
checked at start-up (roadworks/checks.py). Each rule runs as ONE PostGIS statement built with conflict_sql, for one
roadwork (`for_roadwork`, after every change) or for all (`sweep`, periodically and after a layer or parameter
change); the GiST indexes on the roadworks' (geometry, period), the detours' and the layers' geometries drive the
joins.

| code | what | severity | other side |
|---|---|---|---|
| C1 | same place: within buffer_m, periods overlap, daily windows and weekdays meet | error | roadwork |
| C2 | same street nearby: a street name in common, within distance_m, active together | warning | roadwork |
| C3 | detour through works: a detour of one within buffer_m of the other's works, active together | error | roadwork |
| C4 | corridor: closes or restricts a corridor while max_simultaneous other works do | warning | corridor |
| C5 | moratorium: excavation in an area resurfaced within its years; emergency works exempt | error | moratorium |
| C6 | event: works within distance_m of an event's area while it runs | warning | event |
| C7 | public transport, emergency routes: works near a line, stop or route | warning; full closure: error | (1) |
| C8 | accident black spot (traffic.blackspots) | warning | black_spot |
| C9 | external works: a source's roadworks or closure within distance_m, active together | warning | external |
| C10 | collaboration: two excavations by different organisations on one street within months | info | roadwork |

(1) public_transport (tram and bus lines, stops) or emergency_route.

Time: "active together" means the periods overlap and the daily working windows and weekdays let both work at some
moment of that overlap (SQL function auman_active_together, migration 0004): a window crossing midnight (20:00-05:00)
belongs to the weekday it starts on; an overlap of 8 days or more is decided on the weekly pattern
(auman_windows_overlap), a shorter one exactly, day by day in local time (a weekend closure from Saturday 06:00 to
Monday 05:00 does not meet works on weekdays 07:00-16:00). C1, C2, C3, C6 and C9 use it; C4 counts works by their
periods; C5, C7 and C10 ask about days and months, not hours.

Place: a conflict's place is a polygon. Pair rules between works (C1, C2, C10) take the shortest line between the
two works, buffered: where they touch or come closest. It costs a fraction of intersecting two buffers per pair,
which the full sweep used to spend most of its time on (docs/benchmarks.md). Rules with a detour or a layer
(C3 to C7, C9) take the part of the detour or work within the rule's distance of the other side, widened by 2 m
(auman_place_near), which shows the stretch concerned.

Scope: a per-roadwork run resolves only conflicts of that rule touching that roadwork, except C4, where one work
changes whether the others on the same corridor exceed its limit: it recomputes and resolves the conflicts of the
corridors the work lies on now or had conflicts with.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .conflict_sql import NOTHING_LAYER, NOTHING_PAIRS, layer_rule_sql, pair_rule_sql, run_rule_sql
from .models import (
    CONFLICTING_STATUSES,
    IMPACT_BY_TRAFFIC_MANAGEMENT,
    ConflictLayer,
    Impact,
    NetworkKind,
    Severity,
)

Result = dict[str, int]

# --- Parameters ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a rule: its name, what values it takes and what it means (README shows the same)."""

    name: str
    kind: str  # "boolean", "severity", "number", "integer", "choices"
    help: Promise | str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, code: str, value: Any) -> Any:
        def fail(expected: str) -> None:
            raise ImproperlyConfigured(
                f"AUMAN_CONFLICT_RULES[{code!r}][{self.name!r}] must be {expected}, not {value!r}"
            )

        if self.kind == "boolean":
            if not isinstance(value, bool):
                fail("true or false")
            return value
        if self.kind == "severity":
            if value not in Severity.values:
                fail(f"one of {', '.join(Severity.values)}")
            return value
        if self.kind in ("number", "integer"):
            numeric = (int,) if self.kind == "integer" else (int, float)
            low = self.minimum if self.minimum is not None else float("-inf")
            high = self.maximum if self.maximum is not None else float("inf")
            if isinstance(value, bool) or not isinstance(value, numeric) or not low <= value <= high:
                what = "a whole number" if self.kind == "integer" else "a number"
                fail(f"{what} from {self.minimum:g} to {self.maximum:g}")
            return float(value) if self.kind == "number" else value
        if self.kind == "choices":
            if (
                not isinstance(value, list)
                or not value
                or any(item not in self.choices for item in value)
                or len(set(value)) != len(value)
            ):
                fail(f"a non-empty list of distinct values from {list(self.choices)}")
            return sorted(value)
        raise AssertionError(f"unknown parameter kind {self.kind}")  # pragma: no cover - a programming error


ENABLED = Param("enabled", "boolean", _("false: the rule finds nothing, and its open conflicts become resolved"))
SEVERITY = Param("severity", "severity", _("the severity of its conflicts: error, warning or info"))


def metres(name: str, help: Promise | str, *, maximum: float = 5000) -> Param:
    return Param(name, "number", help, minimum=0, maximum=maximum)


# --- Rules ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A rule of the catalogue. Subclasses run it; this class knows its parameters."""

    code: str
    name: Promise
    severity: str  # the default (settings may change it)
    params: tuple[Param, ...] = ()
    layer: str = ""  # the layer of its other side; empty: another roadwork
    # Raised whenever the rule's statement changes meaning: the fingerprint changes, and the next start re-runs
    # the rule over all roadworks, as a parameter change does.
    revision: int = 1

    def parameters(self) -> dict[str, Any]:
        """The effective parameters from settings.AUMAN_CONFLICT_RULES, checked (ImproperlyConfigured if wrong)."""
        configured = settings.AUMAN_CONFLICT_RULES
        if not isinstance(configured, dict):
            raise ImproperlyConfigured("AUMAN_CONFLICT_RULES must be a dict: rule code -> {parameter: value}")
        raw = configured.get(self.code, {})
        if not isinstance(raw, dict):
            raise ImproperlyConfigured(f"AUMAN_CONFLICT_RULES[{self.code!r}] must be an object, not {raw!r}")
        known = {param.name: param for param in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ImproperlyConfigured(
                f"AUMAN_CONFLICT_RULES[{self.code!r}]: unknown parameters {unknown}; {self.code} has {sorted(known)}"
            )
        missing = sorted(set(known) - set(raw))
        if missing:
            raise ImproperlyConfigured(f"AUMAN_CONFLICT_RULES[{self.code!r}]: parameters {missing} are missing")
        return {name: param.check(self.code, raw[name]) for name, param in known.items()}

    def fingerprint_data(self) -> dict[str, Any]:
        """Everything the rule's results depend on besides the data: parameters, and what else it reads."""
        return self.parameters()

    def fingerprint(self) -> str:
        payload = {"rule": self.code, "revision": self.revision, "parameters": self.fingerprint_data()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def effective_severity(self) -> str:
        return self.parameters().get("severity", self.severity)

    def for_roadwork(self, roadwork_id: uuid.UUID | str) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError

    def sweep(self) -> Result:  # pragma: no cover - abstract
        raise NotImplementedError


SWEEP_WORK_MEM = "64MB"


def _common_params() -> dict[str, Any]:
    return {"statuses": [str(s) for s in CONFLICTING_STATUSES], "tz": settings.TIME_ZONE}


# Both works take road space at some moment of their overlap (daily windows and weekdays; see the docstring).
TOGETHER = (
    "auman_active_together({during}, {x}.daily_start, {x}.daily_end, {x}.weekdays, "
    "{y}.daily_start, {y}.daily_end, {y}.weekdays, %(tz)s)"
)
# The place of a pair rule: where the two works touch or come closest, widened (docstring: Place). From the work with
# the smaller id to the other, so a per-roadwork run and the sweep compute the same polygon.
SHORTEST_LINE_PLACE = (
    "ST_Multi(ST_Buffer(ST_ShortestLine("
    "CASE WHEN {x}.id < {y}.id THEN {x}.geometry ELSE {y}.geometry END, "
    "CASE WHEN {x}.id < {y}.id THEN {y}.geometry ELSE {x}.geometry END), %(place_m)s, 'quad_segs=4'))"
)


@dataclass(frozen=True)
class SqlRule(Rule):
    """A rule that is one conflict_sql statement. Subclasses give `found` for one roadwork (%(id)s) or for all."""

    def found(self, p: dict[str, Any], *, one: bool) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        return p

    def scope(self) -> str:
        """The conflicts a per-roadwork run may resolve (besides rule and layer)."""
        if self.layer:
            return "AND c.roadwork_a_id = %(id)s"
        return "AND (c.roadwork_a_id = %(id)s OR c.roadwork_b_id = %(id)s)"

    def severity_for_sql(self, p: dict[str, Any]) -> str | None:
        """The severity literal, or None when `found` yields a severity column."""
        return p["severity"]

    def statement(self, *, one: bool) -> tuple[str, dict[str, Any]]:
        p = self.parameters()
        enabled = p.get("enabled", True)
        nothing = NOTHING_LAYER if self.layer else NOTHING_PAIRS
        found = self.found(p, one=one) if enabled else nothing
        scope = self.scope() if one else ""
        severity = self.severity_for_sql(p) if enabled else p["severity"]
        if self.layer:
            sql = layer_rule_sql(
                rule=self.code,
                severity=severity,
                layer=self.layer_sql(),
                found=found,
                scope=scope,
                layers=self.layers(),
            )
        else:
            sql = pair_rule_sql(rule=self.code, severity=severity, found=found, scope=scope)
        return sql, {**_common_params(), **self.sql_params(p)}

    def layer_sql(self) -> str | None:
        """The layer of every conflict, or None when `found` yields a `layer` column (C7: two layers)."""
        return self.layer

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def for_roadwork(self, roadwork_id: uuid.UUID | str) -> Result:
        sql, params = self.statement(one=True)
        with connection.cursor() as cursor:
            return run_rule_sql(cursor, sql, {**params, "id": str(roadwork_id)}, prepared=True)

    def sweep(self) -> Result:
        sql, params = self.statement(one=False)
        with connection.cursor() as cursor:
            # Room for the hash of everything found: with less, PostgreSQL may test each stored conflict against
            # the found rows one by one (NOT IN without a hash), which is quadratic in a city-wide sweep.
            if connection.in_atomic_block:
                cursor.execute(f"SET LOCAL work_mem = '{SWEEP_WORK_MEM}'")
            return run_rule_sql(cursor, sql, params)


def _pair(one: bool) -> tuple[str, str]:
    """The join condition between x and y and the condition on x: x is the roadwork (one), or each pair once."""
    return ("y.id <> x.id", "AND x.id = %(id)s") if one else ("y.id > x.id", "")


# --- C1 same place -------------------------------------------------------------------------------------------

_C1_FOUND = """
    SELECT LEAST(x.id, y.id) AS a, GREATEST(x.id, y.id) AS b, x.period * y.period AS overlap, {place} AS place
      FROM roadworks_roadwork x
      JOIN roadworks_roadwork y
        ON {pair} AND y.status = ANY(%(statuses)s) AND y.period && x.period
       AND ST_DWithin(y.geometry, x.geometry, %(buffer_m)s)
       AND {together}
     WHERE x.status = ANY(%(statuses)s) {one}
"""


@dataclass(frozen=True)
class SamePlace(SqlRule):
    def found(self, p: dict[str, Any], *, one: bool) -> str:
        pair, condition = _pair(one)
        return _C1_FOUND.format(
            pair=pair,
            one=condition,
            place=SHORTEST_LINE_PLACE.format(x="x", y="y"),
            together=TOGETHER.format(during="x.period * y.period", x="x", y="y"),
        )

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        return {**p, "place_m": p["buffer_m"] + 2}


# --- C2 same street nearby -----------------------------------------------------------------------------------

_C2_FOUND = """
    SELECT LEAST(x.id, y.id) AS a, GREATEST(x.id, y.id) AS b, x.period * y.period AS overlap, {place} AS place
      FROM roadworks_roadwork x
      JOIN roadworks_roadwork y
        ON {pair} AND y.status = ANY(%(statuses)s) AND y.period && x.period
       AND ST_DWithin(y.geometry, x.geometry, %(distance_m)s)
       AND y.street_keys && x.street_keys
       AND {together} {skip}
     WHERE x.status = ANY(%(statuses)s) AND cardinality(x.street_keys) > 0 {one}
"""


@dataclass(frozen=True)
class SameStreet(SqlRule):
    """C2. By default a pair that C1 reports (within C1's buffer and active together) is left to C1: the error
    says more than the warning, and two rows for one collision would make people handle it twice."""

    def _c1_buffer(self, p: dict[str, Any]) -> float | None:
        if not p["skip_when_c1"]:
            return None
        c1 = get("C1").parameters()
        return c1["buffer_m"] if c1["enabled"] else None

    def fingerprint_data(self) -> dict[str, Any]:
        p = self.parameters()
        return {**p, "c1_buffer_m": self._c1_buffer(p)}

    def found(self, p: dict[str, Any], *, one: bool) -> str:
        pair, condition = _pair(one)
        skip = "AND NOT ST_DWithin(y.geometry, x.geometry, %(c1_buffer_m)s)" if self._c1_buffer(p) is not None else ""
        return _C2_FOUND.format(
            pair=pair,
            one=condition,
            skip=skip,
            place=SHORTEST_LINE_PLACE.format(x="x", y="y"),
            together=TOGETHER.format(during="x.period * y.period", x="x", y="y"),
        )

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        return {**p, "place_m": 5, "c1_buffer_m": self._c1_buffer(p)}


# --- C3 detour through works ---------------------------------------------------------------------------------

# One branch: detours of works w that pass within the buffer of other works y, at a time both take road space
# (the detour's own period, or its work's). Grouped to one row per pair of works, whichever way the detour runs.
_C3_BRANCH = """
    SELECT w.id AS w, y.id AS o, d.id AS detour, COALESCE(d.period, w.period) * y.period AS overlap,
           auman_place_near(d.geometry, y.geometry, %(buffer_m)s) AS place
      FROM roadworks_detour d
      JOIN roadworks_roadwork w ON w.id = d.roadwork_id AND w.status = ANY(%(statuses)s)
      JOIN roadworks_roadwork y
        ON y.id <> w.id AND y.status = ANY(%(statuses)s) AND y.period && COALESCE(d.period, w.period)
       AND ST_DWithin(y.geometry, d.geometry, %(buffer_m)s)
       AND {together}
     WHERE {condition}
"""
_C3_FOUND = """
    SELECT LEAST(h.w, h.o) AS a, GREATEST(h.w, h.o) AS b, range_merge(range_agg(h.overlap)) AS overlap,
           ST_Multi(ST_Union(h.place ORDER BY h.detour, h.o)) AS place
      FROM ({branches}) h
     GROUP BY LEAST(h.w, h.o), GREATEST(h.w, h.o)
"""


@dataclass(frozen=True)
class DetourThroughWorks(SqlRule):
    def found(self, p: dict[str, Any], *, one: bool) -> str:
        together = TOGETHER.format(during="COALESCE(d.period, w.period) * y.period", x="w", y="y")
        if one:
            # The roadwork's own detours through others, and others' detours through the roadwork.
            branches = " UNION ALL ".join(
                _C3_BRANCH.format(together=together, condition=condition)
                for condition in ("w.id = %(id)s", "y.id = %(id)s")
            )
        else:
            branches = _C3_BRANCH.format(together=together, condition="TRUE")
        return _C3_FOUND.format(branches=branches)


# --- C4 corridors --------------------------------------------------------------------------------------------

# Works on a corridor are found along its roads cut into pieces of at most 50 m: the box of a whole corridor (a few
# kilometres of road) would take thousands of works from the index, each tested against every vertex.
# For each work x that closes or restricts a corridor: the instants where the number of works on the corridor can
# change within x's period (x's own bounds and the others' bounds inside it) cut x's period into pieces; during a
# piece the same works overlap it, so counting the other works that overlap a piece counts them at every instant of
# it. Where that count reaches the corridor's max_simultaneous, x is one work too many: its conflict's period spans
# those pieces (from the first to the last).
_C4_FOUND = """
    WITH {scope}on_corridor AS (
        SELECT DISTINCT k.id AS corridor, k.max_simultaneous AS allowed, r.id AS roadwork, r.period
          FROM {corridors}
         CROSS JOIN LATERAL ST_DumpSegments(ST_Segmentize(k.geometry, 50)) AS piece
          JOIN roadworks_roadwork r
            ON ST_DWithin(r.geometry, piece.geom, %(buffer_m)s)
           AND r.status = ANY(%(statuses)s) AND r.traffic_management = ANY(%(managements)s)
         WHERE k.active
    ),
    subjects AS (
        SELECT * FROM on_corridor {subjects}
    ),
    instants AS (
        SELECT x.corridor, x.roadwork, t.at
          FROM subjects x
          JOIN on_corridor y ON y.corridor = x.corridor AND y.roadwork <> x.roadwork AND y.period && x.period
         CROSS JOIN LATERAL (VALUES (lower(y.period)), (upper(y.period))) AS t(at)
         WHERE t.at > lower(x.period) AND t.at < upper(x.period)
        UNION
        SELECT corridor, roadwork, lower(period) FROM subjects
        UNION
        SELECT corridor, roadwork, upper(period) FROM subjects
    ),
    pieces AS (
        SELECT corridor, roadwork, at AS piece_start,
               lead(at) OVER (PARTITION BY corridor, roadwork ORDER BY at) AS piece_end
          FROM instants
    ),
    crowded AS (
        SELECT p.corridor, p.roadwork, tstzrange(p.piece_start, p.piece_end) AS piece
          FROM pieces p
          JOIN subjects x ON x.corridor = p.corridor AND x.roadwork = p.roadwork
          JOIN on_corridor y
            ON y.corridor = p.corridor AND y.roadwork <> p.roadwork
           AND y.period && tstzrange(p.piece_start, p.piece_end)
         WHERE p.piece_end IS NOT NULL
         GROUP BY p.corridor, p.roadwork, p.piece_start, p.piece_end, x.allowed
        HAVING count(*) >= x.allowed
    )
    SELECT g.roadwork, g.corridor::text AS item, g.overlap,
           auman_place_near(r.geometry, k.geometry, %(buffer_m)s) AS place
      FROM (SELECT roadwork, corridor, range_merge(range_agg(piece)) AS overlap
              FROM crowded GROUP BY roadwork, corridor) g
      JOIN roadworks_roadwork r ON r.id = g.roadwork
      JOIN roadworks_corridor k ON k.id = g.corridor
"""
# For one roadwork x: the corridors its change can affect are those it lies on now and those it had conflicts with;
# on them, only works whose period meets x's period or the periods of x's conflicts so far. A work y is one too many
# at a moment only if, counting x, the corridor was over its limit then, so x was too: x's old share of any crowding
# lies within its old conflicts' periods, its new share within its period. Their conflicts are recomputed against
# every work on the corridor; the others' cannot have changed.
_C4_CORRIDORS_OF_ROADWORK = """
    SELECT k2.id FROM roadworks_corridor k2 JOIN roadworks_roadwork x2
        ON x2.id = %(id)s AND ST_DWithin(x2.geometry, k2.geometry, %(buffer_m)s)
    UNION
    SELECT c2.layer_object_id::bigint FROM roadworks_conflict c2
     WHERE c2.rule = '{rule}' AND c2.layer = '{layer}' AND c2.roadwork_a_id = %(id)s AND c2.status <> 'resolved'
"""
_C4_WINDOW_OF_ROADWORK = """
    SELECT range_agg(p) FROM (
        SELECT x3.period AS p FROM roadworks_roadwork x3 WHERE x3.id = %(id)s
        UNION ALL
        SELECT c3.overlap_period FROM roadworks_conflict c3
         WHERE c3.rule = '{rule}' AND c3.layer = '{layer}' AND c3.roadwork_a_id = %(id)s AND c3.status <> 'resolved'
    ) w
"""


@dataclass(frozen=True)
class CorridorCapacity(SqlRule):
    def _corridors(self) -> str:
        return _C4_CORRIDORS_OF_ROADWORK.format(rule=self.code, layer=self.layer)

    def _window(self) -> str:
        return _C4_WINDOW_OF_ROADWORK.format(rule=self.code, layer=self.layer)

    def found(self, p: dict[str, Any], *, one: bool) -> str:
        if not one:
            return _C4_FOUND.format(scope="", corridors="roadworks_corridor k", subjects="")
        # The scope and the window first, materialised: the prepared statement's generic plan then starts from these
        # few corridors instead of finding the works along every corridor and filtering afterwards.
        return _C4_FOUND.format(
            scope=f"scope AS MATERIALIZED ({self._corridors()}), window_ AS MATERIALIZED ({self._window()}),",
            # LATERAL and OFFSET 0: each corridor in scope drives its own look-up; a join lets the planner find
            # the works along every corridor first and match the scope afterwards (34 ms at 100,000 works).
            corridors="scope s CROSS JOIN LATERAL (SELECT * FROM roadworks_corridor k0 WHERE k0.id = s.id OFFSET 0) k",
            subjects="WHERE roadwork = %(id)s OR period && (SELECT range_agg FROM window_)",
        )

    def scope(self) -> str:
        return (
            f"AND c.layer_object_id IN (SELECT id::text FROM ({self._corridors()}) s) "
            f"AND (c.roadwork_a_id = %(id)s OR EXISTS (SELECT 1 FROM roadworks_roadwork r4 "
            f"WHERE r4.id = c.roadwork_a_id AND r4.period && ({self._window()})))"
        )

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        managements = [str(tm) for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items() if impact in p["impacts"]]
        return {**p, "managements": managements}


# --- C5 moratorium -------------------------------------------------------------------------------------------

_C5_FOUND = """
    SELECT r.id AS roadwork, m.id::text AS item, r.period * mp.during AS overlap,
           auman_place_near(r.geometry, m.geometry, %(buffer_m)s) AS place
      FROM roadworks_moratoriumarea m
     CROSS JOIN LATERAL (
        SELECT tstzrange(m.resurfaced_on::timestamp AT TIME ZONE %(tz)s,
                         (m.resurfaced_on + make_interval(years => m.years)) AT TIME ZONE %(tz)s) AS during
     ) mp
      JOIN roadworks_roadwork r
        ON ST_DWithin(r.geometry, m.geometry, %(buffer_m)s) AND r.period && mp.during
       AND r.status = ANY(%(statuses)s) AND r.excavation {exempt}
     WHERE TRUE {one}
"""


@dataclass(frozen=True)
class Moratorium(SqlRule):
    def found(self, p: dict[str, Any], *, one: bool) -> str:
        return _C5_FOUND.format(
            exempt="AND NOT r.is_emergency" if p["exempt_emergency"] else "",
            one="AND r.id = %(id)s" if one else "",
        )


# --- C6 events -----------------------------------------------------------------------------------------------

_C6_FOUND = """
    SELECT r.id AS roadwork, e.id::text AS item, r.period * e.period AS overlap,
           auman_place_near(r.geometry, e.area, %(distance_m)s) AS place
      FROM roadworks_event e
      JOIN roadworks_roadwork r
        ON ST_DWithin(r.geometry, e.area, %(distance_m)s) AND r.period && e.period
       AND r.status = ANY(%(statuses)s)
       AND auman_active_together(r.period * e.period, r.daily_start, r.daily_end, r.weekdays,
                                 NULL::time, NULL::time, '{{}}'::smallint[], %(tz)s)
     WHERE TRUE {one}
"""


@dataclass(frozen=True)
class EventNearby(SqlRule):
    def found(self, p: dict[str, Any], *, one: bool) -> str:
        return _C6_FOUND.format(one="AND r.id = %(id)s" if one else "")


# --- C7 public transport and emergency routes ----------------------------------------------------------------

# Severity by impact: closing the road (full closure) cuts the line or route: error; anything else narrows it or
# its stop: warning. Both configurable. Network features have no period: the overlap is the work's period.
# Per roadwork the index on the features' geometry finds the few lines near the work; for all works the lines are
# cut into pieces of at most 50 m first (stops stay points), as for corridors.
_C7_SWEEP_PAIRS = """
    SELECT DISTINCT n.id AS feature, r.id AS roadwork
      FROM roadworks_networkfeature n
     CROSS JOIN LATERAL (
        SELECT s.geom FROM ST_DumpSegments(ST_Segmentize(n.geometry, 50)) AS s
        UNION ALL
        SELECT n.geometry WHERE ST_Dimension(n.geometry) = 0
     ) AS piece
      JOIN roadworks_roadwork r ON ST_DWithin(r.geometry, piece.geom, %(reach_m)s) AND r.status = ANY(%(statuses)s)
     WHERE n.kind = ANY(%(kinds)s)
"""
_C7_SWEEP_JOIN = """
      FROM ({pairs}) hit
      JOIN roadworks_networkfeature n ON n.id = hit.feature
      JOIN roadworks_roadwork r ON r.id = hit.roadwork
       AND ST_Distance(r.geometry, n.geometry)
           <= CASE WHEN n.kind = 'stop' THEN %(stop_buffer_m)s::float8 ELSE %(buffer_m)s::float8 END
"""
_C7_FOUND = """
    SELECT r.id AS roadwork,
           CASE WHEN n.kind = 'emergency_route' THEN 'emergency_route' ELSE 'public_transport' END AS layer,
           n.id::text AS item, r.period AS overlap,
           auman_place_near(r.geometry, n.geometry,
                            CASE WHEN n.kind = 'stop' THEN %(stop_buffer_m)s::float8 ELSE %(buffer_m)s::float8 END)
               AS place,
           CASE WHEN r.traffic_management = ANY(%(closing)s) THEN %(closure_severity)s::text
                ELSE %(severity)s::text END AS severity
      {source}
"""
_C7_ONE_JOIN = """
      FROM roadworks_networkfeature n
      JOIN roadworks_roadwork r
        ON ST_DWithin(r.geometry, n.geometry, %(reach_m)s)
       AND ST_Distance(r.geometry, n.geometry)
           <= CASE WHEN n.kind = 'stop' THEN %(stop_buffer_m)s::float8 ELSE %(buffer_m)s::float8 END
       AND r.status = ANY(%(statuses)s)
     WHERE n.kind = ANY(%(kinds)s) AND r.id = %(id)s
"""


@dataclass(frozen=True)
class NetworkTouch(SqlRule):
    LAYERS: ClassVar[tuple[str, ...]] = (ConflictLayer.PUBLIC_TRANSPORT.value, ConflictLayer.EMERGENCY_ROUTE.value)

    def found(self, p: dict[str, Any], *, one: bool) -> str:
        source = _C7_ONE_JOIN if one else _C7_SWEEP_JOIN.format(pairs=_C7_SWEEP_PAIRS)
        return _C7_FOUND.format(source=source)

    def layer_sql(self) -> str | None:
        return None

    def layers(self) -> tuple[str, ...]:
        return self.LAYERS

    def severity_for_sql(self, p: dict[str, Any]) -> str | None:
        return None

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        closing = [str(tm) for tm, impact in IMPACT_BY_TRAFFIC_MANAGEMENT.items() if impact == Impact.CLOSURE]
        return {**p, "closing": closing, "reach_m": max(p["buffer_m"], p["stop_buffer_m"])}


# --- C10 collaboration ---------------------------------------------------------------------------------------

# "Within N months of each other": the gap between the periods is shorter than N months (or they overlap); the
# conflict's period is the span of both works. On one street: a street name in common within street_distance_m,
# or any two works within distance_m (names may be missing or spelled apart).
_C10_FOUND = """
    SELECT LEAST(x.id, y.id) AS a, GREATEST(x.id, y.id) AS b, range_merge(x.period, y.period) AS overlap,
           {place} AS place
      FROM roadworks_roadwork x
      JOIN roadworks_roadwork y
        ON {pair} AND y.status = ANY(%(statuses)s) AND y.excavation AND y.organisation_id <> x.organisation_id
       AND y.period && tstzrange(lower(x.period) - make_interval(months => %(months)s),
                                 upper(x.period) + make_interval(months => %(months)s))
       AND ST_DWithin(y.geometry, x.geometry, %(reach_m)s)
       AND ((y.street_keys && x.street_keys AND ST_DWithin(y.geometry, x.geometry, %(street_distance_m)s))
            OR ST_DWithin(y.geometry, x.geometry, %(distance_m)s))
     WHERE x.status = ANY(%(statuses)s) AND x.excavation {one}
"""


@dataclass(frozen=True)
class SharedTrench(SqlRule):
    def found(self, p: dict[str, Any], *, one: bool) -> str:
        pair, condition = _pair(one)
        return _C10_FOUND.format(pair=pair, one=condition, place=SHORTEST_LINE_PLACE.format(x="x", y="y"))

    def sql_params(self, p: dict[str, Any]) -> dict[str, Any]:
        return {**p, "place_m": 5, "reach_m": max(p["distance_m"], p["street_distance_m"])}


# --- C9 external works (interop) -----------------------------------------------------------------------------

# What external sources publish (the Autobahn company, the state, neighbouring cities: interop.models.ExternalItem)
# near a work while it runs. Items of disabled sources do not count. An item with an open start or end (the source
# did not say) counts for the whole of the work's period on that side. The values of interop.models.ItemKind:
EXTERNAL_KINDS = ("roadworks", "closure", "warning", "incident", "other")

_C9_FOUND = """
    SELECT r.id AS roadwork, e.id::text AS item, r.period * e.period AS overlap,
           auman_place_near(r.geometry, e.geometry, %(distance_m)s) AS place
      FROM interop_externalitem e
      JOIN interop_externalsource s ON s.id = e.source_id AND s.enabled
      JOIN roadworks_roadwork r
        ON ST_DWithin(r.geometry, e.geometry, %(distance_m)s) AND r.period && e.period
       AND r.status = ANY(%(statuses)s)
       AND auman_active_together(r.period * e.period, r.daily_start, r.daily_end, r.weekdays,
                                 NULL::time, NULL::time, '{{}}'::smallint[], %(tz)s)
     WHERE e.kind = ANY(%(kinds)s) {one}
"""


@dataclass(frozen=True)
class ExternalWorks(SqlRule):
    """C9. Besides the runs for one roadwork and the sweep, `for_source` runs it for the items of one external source
    after that source was polled (interop.services): it resolves the conflicts of the source's items and of items that
    no longer exist, and leaves those of other sources alone."""

    def found(self, p: dict[str, Any], *, one: bool) -> str:
        return _C9_FOUND.format(one="AND r.id = %(id)s" if one else "")

    def for_source(self, source_id: int) -> Result:
        p = self.parameters()
        found = _C9_FOUND.format(one="AND e.source_id = %(source)s") if p["enabled"] else NOTHING_LAYER
        scope = (
            "AND NOT EXISTS (SELECT 1 FROM interop_externalitem o "
            "WHERE o.id = CASE WHEN c.layer_object_id ~ '^[0-9]+$' THEN c.layer_object_id::bigint END "
            "AND o.source_id <> %(source)s)"
        )
        sql = layer_rule_sql(rule=self.code, severity=p["severity"], layer=self.layer, found=found, scope=scope)
        with connection.cursor() as cursor:
            return run_rule_sql(cursor, sql, {**_common_params(), **p, "source": source_id})


# --- C8 black spots (traffic.blackspots) ---------------------------------------------------------------------


@dataclass(frozen=True)
class BlackSpotNearby(Rule):
    """Rule C8 lives with its data in traffic.blackspots (its buffer is AUMAN_CONFLICT_BUFFER_M); registered here
    so that every run over the catalogue includes it."""

    def parameters(self) -> dict[str, Any]:
        super().parameters()  # no parameters of its own; refuses any given
        return {"severity": self.severity}

    def fingerprint_data(self) -> dict[str, Any]:
        return {"buffer_m": settings.AUMAN_CONFLICT_BUFFER_M}

    def for_roadwork(self, roadwork_id: uuid.UUID | str) -> Result:
        from traffic.blackspots import conflicts_detect_black_spots_for

        return conflicts_detect_black_spots_for(roadwork_id=roadwork_id)

    def sweep(self) -> Result:
        from traffic.blackspots import conflicts_detect_black_spots

        return conflicts_detect_black_spots()


# --- The catalogue -------------------------------------------------------------------------------------------

CATALOGUE: tuple[Rule, ...] = (
    SamePlace(
        "C1",
        _("Same place"),
        Severity.ERROR,
        (ENABLED, SEVERITY, metres("buffer_m", _("works this close (metres) are at the same place"), maximum=500)),
    ),
    SameStreet(
        "C2",
        _("Same street nearby"),
        Severity.WARNING,
        (
            ENABLED,
            SEVERITY,
            metres("distance_m", _("works on a street in common this close (metres) are nearby")),
            Param("skip_when_c1", "boolean", _("leave pairs that C1 reports to C1")),
        ),
    ),
    DetourThroughWorks(
        "C3",
        _("Detour through works"),
        Severity.ERROR,
        (
            ENABLED,
            SEVERITY,
            metres("buffer_m", _("a detour this close (metres) to works runs through them"), maximum=500),
        ),
    ),
    CorridorCapacity(
        "C4",
        _("Corridor over capacity"),
        Severity.WARNING,
        (
            ENABLED,
            SEVERITY,
            metres("buffer_m", _("works this close (metres) to a corridor's roads close or restrict it"), maximum=500),
            Param(
                "impacts",
                "choices",
                _("which works count: closure, restriction, minor"),
                choices=tuple(Impact.values),
            ),
        ),
        layer=ConflictLayer.CORRIDOR.value,
    ),
    Moratorium(
        "C5",
        _("Excavation in a moratorium area"),
        Severity.ERROR,
        (
            ENABLED,
            SEVERITY,
            metres("buffer_m", _("excavation this close (metres) to the area counts; 0: touching it"), maximum=500),
            Param("exempt_emergency", "boolean", _("emergency works may dig")),
        ),
        layer=ConflictLayer.MORATORIUM.value,
    ),
    EventNearby(
        "C6",
        _("Works at an event"),
        Severity.WARNING,
        (ENABLED, SEVERITY, metres("distance_m", _("works this close (metres) to the event's area"))),
        layer=ConflictLayer.EVENT.value,
    ),
    NetworkTouch(
        "C7",
        _("Public transport or emergency route"),
        Severity.WARNING,
        (
            ENABLED,
            SEVERITY,
            Param("closure_severity", "severity", _("the severity when the works fully close the road")),
            metres("buffer_m", _("works this close (metres) to a line or route touch it"), maximum=500),
            metres("stop_buffer_m", _("works this close (metres) to a stop touch it"), maximum=500),
            Param("kinds", "choices", _("which layers count"), choices=tuple(NetworkKind.values)),
        ),
        layer=ConflictLayer.PUBLIC_TRANSPORT.value,
    ),
    BlackSpotNearby("C8", _("Accident black spot"), Severity.WARNING, layer=ConflictLayer.BLACK_SPOT.value),
    ExternalWorks(
        "C9",
        _("External works"),
        Severity.WARNING,
        (
            ENABLED,
            SEVERITY,
            metres("distance_m", _("works this close (metres) to an external source's item"), maximum=500),
            Param("kinds", "choices", _("which kinds of external items count"), choices=EXTERNAL_KINDS),
        ),
        layer=ConflictLayer.EXTERNAL.value,
    ),
    SharedTrench(
        "C10",
        _("Share the trench"),
        Severity.INFO,
        (
            ENABLED,
            SEVERITY,
            Param("months", "integer", _("excavations this many months apart or closer"), minimum=1, maximum=60),
            metres("distance_m", _("excavations this close (metres) are on one street, whatever its name")),
            metres("street_distance_m", _("excavations with a street name in common this close (metres)")),
        ),
    ),
)
_BY_CODE = {rule.code: rule for rule in CATALOGUE}


def get(code: str) -> Rule:
    try:
        return _BY_CODE[code]
    except KeyError:
        raise KeyError(f"no conflict rule {code!r}; the catalogue has {list(_BY_CODE)}") from None


def codes() -> list[str]:
    return list(_BY_CODE)


def check_configuration() -> list[str]:
    """Every problem with settings.AUMAN_CONFLICT_RULES, one message each (empty: all good)."""
    problems: list[str] = []
    configured = settings.AUMAN_CONFLICT_RULES
    if not isinstance(configured, dict):
        return ["AUMAN_CONFLICT_RULES must be a dict: rule code -> {parameter: value}"]
    unknown = sorted(set(configured) - set(_BY_CODE))
    if unknown:
        problems.append(f"AUMAN_CONFLICT_RULES: unknown rules {unknown}; the catalogue has {list(_BY_CODE)}")
    for rule in CATALOGUE:
        try:
            rule.parameters()
        except ImproperlyConfigured as exc:
            problems.append(str(exc))
    notify = settings.AUMAN_CONFLICT_NOTIFY_SEVERITIES
    unknown_severities = sorted(set(notify) - set(Severity.values))
    if unknown_severities:
        known = ", ".join(Severity.values)
        problems.append(f"AUMAN_CONFLICT_NOTIFY_SEVERITIES: unknown severities {unknown_severities}; use {known}")
    return problems


@dataclass(frozen=True)
class RuleInfo:
    """A rule as the documentation and the API describe it."""

    code: str
    name: str
    severity: str
    layer: str
    parameters: dict[str, Any] = field(default_factory=dict)


def describe() -> list[RuleInfo]:
    return [
        RuleInfo(rule.code, str(rule.name), rule.effective_severity(), rule.layer, rule.parameters())
        for rule in CATALOGUE
    ]
