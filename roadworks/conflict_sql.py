"""The one statement shape every conflict rule uses: upsert what holds now, resolve what no longer holds.

A rule supplies `found`: a SELECT naming, per conflict, its sides and its overlap period and place.
The statement inserts new conflicts, updates changed ones in place (keeping their status, or reopening
them if they had been resolved), and marks conflicts of that rule in scope that are no longer found as
resolved, instead of deleting them, so their history stays. Running it twice gives the same rows.

Pair rules (two roadworks) find columns a, b, overlap, place; layer rules (a roadwork and a layer item)
find roadwork, item, overlap, place. A rule whose severity depends on the case (C7: a closure is worse)
passes severity=None and finds a `severity` column as well.

What no longer holds is found with NOT IN over the found rows, which PostgreSQL answers from a hash of them
whatever its row estimates say (an anti-join planned on a stale estimate of one stored row turned into a nested
loop over every pair).

Found rows that equal their stored conflict (same overlap, place and severity, not resolved) are dropped
before the upsert: in a steady-state sweep almost every row is such a row, and the speculative insertion of
ON CONFLICT costs far more per row than a look-up. The look-up is a LATERAL subquery fenced with OFFSET 0, so
it always goes through the unique index with all its keys: `found` is estimated at a handful of rows whatever it
holds, and a plain join planned on that estimate scanned every stored conflict of the rule once per found row.
Places are compared exactly (the `=` of PostGIS: same coordinates in the same order), which holds because every
rule computes its place deterministically from the stored geometries; ST_Equals would run a GEOS relate per row.

Per-roadwork runs execute as prepared statements with a generic plan (execute_prepared): planning would cost
more than running.

A conflict seen for the first time, or reopened, starts a new open episode: opened_at is set to the database's
clock (clock_timestamp(), not the transaction's start, so that two episodes within one transaction differ and the
notification stamp, taken from the same clock, compares with it). The fourth count the statement returns is how
many episodes it opened, and run_rule_sql has them e-mailed after the commit (roadworks.notifications), once each.
"""

from __future__ import annotations

import hashlib
import re

_REOPEN = """
               status = CASE WHEN roadworks_conflict.status = 'resolved' THEN 'open'
                             ELSE roadworks_conflict.status END,
               reason = CASE WHEN roadworks_conflict.status = 'resolved' THEN ''
                             ELSE roadworks_conflict.reason END,
               status_changed_at = CASE WHEN roadworks_conflict.status = 'resolved' THEN now()
                                        ELSE roadworks_conflict.status_changed_at END,
               status_changed_by_id = CASE WHEN roadworks_conflict.status = 'resolved' THEN NULL
                                           ELSE roadworks_conflict.status_changed_by_id END,
               opened_at = CASE WHEN roadworks_conflict.status = 'resolved' THEN clock_timestamp()
                                ELSE roadworks_conflict.opened_at END"""

_TEMPLATE = """
    WITH found AS ({found}),
    fresh AS (
        SELECT f.*, {severity} AS severity_value
          FROM found f
          LEFT JOIN LATERAL (
              SELECT c.id, c.status, c.severity, c.overlap_period, c.place FROM roadworks_conflict c
               WHERE c.rule = '{rule}' AND {stored_match}
              OFFSET 0
          ) c ON true
         WHERE c.id IS NULL OR c.status = 'resolved' OR c.severity <> {severity}
            OR c.overlap_period IS DISTINCT FROM f.overlap OR c.place IS DISTINCT FROM f.place
    ),
    upserted AS (
        INSERT INTO roadworks_conflict
            (rule, severity, roadwork_a_id, roadwork_b_id, layer, layer_object_id, overlap_period, place,
             status, reason, detected_at, updated_at, opened_at)
        SELECT '{rule}', severity_value, {sides}, overlap, place, 'open', '', now(), now(), clock_timestamp()
          FROM fresh
        ON CONFLICT {conflict_target} DO UPDATE
           SET overlap_period = EXCLUDED.overlap_period, place = EXCLUDED.place, severity = EXCLUDED.severity,
               updated_at = now(),{reopen}
         WHERE roadworks_conflict.overlap_period IS DISTINCT FROM EXCLUDED.overlap_period
            OR roadworks_conflict.place IS DISTINCT FROM EXCLUDED.place
            OR roadworks_conflict.severity <> EXCLUDED.severity
            OR roadworks_conflict.status = 'resolved'
        RETURNING opened_at >= statement_timestamp() AS opened
    ),
    resolved AS (
        UPDATE roadworks_conflict c
           SET status = 'resolved', status_changed_at = now(), status_changed_by_id = NULL, updated_at = now()
         WHERE c.rule = '{rule}' AND c.status <> 'resolved' {scope}
           AND ({stored_key}) NOT IN (SELECT {found_key} FROM found f)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM upserted), (SELECT count(*) FROM resolved),
           (SELECT count(*) FROM upserted WHERE opened)
"""

# A `found` that finds nothing: a disabled rule runs it, so its conflicts in scope are resolved.
NOTHING_PAIRS = (
    "SELECT NULL::uuid AS a, NULL::uuid AS b, NULL::tstzrange AS overlap, NULL::geometry AS place WHERE false"
)
NOTHING_LAYER = (
    "SELECT NULL::uuid AS roadwork, NULL::text AS layer, NULL::text AS item, NULL::tstzrange AS overlap, "
    "NULL::geometry AS place WHERE false"
)


def _severity(severity: str | None) -> str:
    if severity is None:
        return "f.severity"
    if severity not in ("error", "warning", "info"):
        raise ValueError(f"unknown severity {severity!r}")
    return f"'{severity}'"


def pair_rule_sql(*, rule: str, severity: str | None, found: str, scope: str = "") -> str:
    """A rule between two roadworks; `found` yields a < b (ids), overlap, place (and severity if None here)."""
    return _TEMPLATE.format(
        found=found,
        rule=rule,
        severity=_severity(severity),
        sides="a, b, '', ''",
        conflict_target="(rule, roadwork_a_id, roadwork_b_id) WHERE roadwork_b_id IS NOT NULL",
        reopen=_REOPEN,
        scope=scope,
        stored_match="c.roadwork_a_id = f.a AND c.roadwork_b_id = f.b AND c.roadwork_b_id IS NOT NULL",
        stored_key="c.roadwork_a_id, c.roadwork_b_id",
        found_key="f.a, f.b",
    )


def layer_rule_sql(
    *,
    rule: str,
    severity: str | None,
    layer: str | None,
    found: str,
    scope: str = "",
    layers: tuple[str, ...] = (),
) -> str:
    """A rule between a roadwork and a layer item; `found` yields roadwork, item (text), overlap, place (and
    severity if None here). A rule over several layers passes layer=None, finds a `layer` column and names its
    layers in `layers`."""
    layers = layers or ((layer,) if layer else ())
    if not layers or any(not name.replace("_", "").isalnum() for name in layers):
        raise ValueError(f"layer names must be plain words, not {layers!r}")
    layer_value = f"'{layer}'" if layer else "f.layer"
    in_layers = ", ".join(f"'{name}'" for name in layers)
    return _TEMPLATE.format(
        found=found,
        rule=rule,
        severity=_severity(severity),
        sides=f"roadwork, NULL, {layer_value.replace('f.', '')}, item",
        conflict_target="(rule, roadwork_a_id, layer, layer_object_id) WHERE roadwork_b_id IS NULL",
        reopen=_REOPEN,
        scope=f"AND c.layer IN ({in_layers}) {scope}",
        stored_match=(
            f"c.roadwork_b_id IS NULL AND c.layer = {layer_value} AND c.roadwork_a_id = f.roadwork "
            "AND c.layer_object_id = f.item"
        ),
        stored_key="c.roadwork_a_id, c.layer_object_id, c.layer",
        found_key=f"f.roadwork, f.item, {layer_value}",
    )


_PARAMETER = re.compile(r"%\((\w+)\)s")


def _prepared_names(db) -> set[str]:
    """The statements prepared on this database connection (a new connection starts without any)."""
    raw = db.connection
    state = getattr(db, "_auman_prepared", None)
    if state is None or state[0] is not raw:
        state = (raw, set())
        db._auman_prepared = state
    return state[1]


def execute_prepared(cursor, sql: str, params: dict) -> None:
    """Run `sql` (with %(name)s parameters) as a prepared statement with a generic plan.

    Planning a rule's statement takes longer than running it for one roadwork (1 to 4 ms against a few tenths:
    PostGIS estimates every ST_DWithin from its statistics), and the task runs every rule. Prepared once per
    connection, each run only executes. A session-level PREPARE survives rollbacks; a new connection prepares
    again. (Behind a transaction-pooling proxy such as PgBouncer in transaction mode, run without it.)"""
    names: list[str] = []

    def placeholder(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = _PARAMETER.sub(placeholder, sql)
    key = "auman_rule_" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:20]
    prepared = _prepared_names(cursor.db)
    if key not in prepared:
        cursor.execute(f"PREPARE {key} AS {text}")
        prepared.add(key)
    # One plan for any roadwork: the statement's shape does not depend on which.
    cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    cursor.execute(f"EXECUTE {key}({', '.join(['%s'] * len(names))})", [params[name] for name in names])


def run_rule_sql(cursor, sql: str, params: dict, *, prepared: bool = False) -> dict[str, int]:
    """Run a rule's statement; conflicts it opened are e-mailed once the surrounding transaction commits.

    prepared: run it as a prepared statement (for the per-roadwork runs, which repeat with another id)."""
    if prepared:
        execute_prepared(cursor, sql, params)
    else:
        cursor.execute(sql, params)
    found, changed, resolved, opened = cursor.fetchone()
    if opened:
        from .notifications import conflicts_notify_on_commit

        conflicts_notify_on_commit()
    return {"found": found, "changed": changed, "resolved": resolved}
