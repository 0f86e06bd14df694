"""The one statement shape every conflict rule uses: upsert what holds now, resolve what no longer holds.

A rule supplies `found`: a SELECT naming, per conflict, its sides and its overlap period and place.
The statement inserts new conflicts, updates changed ones in place (keeping their status, or reopening
them if they had been resolved), and marks conflicts of that rule in scope that are no longer found as
resolved, instead of deleting them, so their history stays. Running it twice gives the same rows.

Pair rules (two roadworks) find columns a, b, overlap, place; layer rules (a roadwork and a layer item)
find roadwork, item, overlap, place.
"""

from __future__ import annotations

_REOPEN = """
               status = CASE WHEN roadworks_conflict.status = 'resolved' THEN 'open'
                             ELSE roadworks_conflict.status END,
               reason = CASE WHEN roadworks_conflict.status = 'resolved' THEN ''
                             ELSE roadworks_conflict.reason END,
               status_changed_at = CASE WHEN roadworks_conflict.status = 'resolved' THEN now()
                                        ELSE roadworks_conflict.status_changed_at END,
               status_changed_by_id = CASE WHEN roadworks_conflict.status = 'resolved' THEN NULL
                                           ELSE roadworks_conflict.status_changed_by_id END"""

_TEMPLATE = """
    WITH found AS ({found}),
    upserted AS (
        INSERT INTO roadworks_conflict
            (rule, severity, roadwork_a_id, roadwork_b_id, layer, layer_object_id, overlap_period, place,
             status, reason, detected_at, updated_at)
        SELECT '{rule}', '{severity}', {sides}, overlap, place, 'open', '', now(), now() FROM found
        ON CONFLICT {conflict_target} DO UPDATE
           SET overlap_period = EXCLUDED.overlap_period, place = EXCLUDED.place, updated_at = now(),{reopen}
         WHERE roadworks_conflict.overlap_period IS DISTINCT FROM EXCLUDED.overlap_period
            OR NOT ST_Equals(roadworks_conflict.place, EXCLUDED.place)
            OR roadworks_conflict.status = 'resolved'
        RETURNING 1
    ),
    resolved AS (
        UPDATE roadworks_conflict c
           SET status = 'resolved', status_changed_at = now(), status_changed_by_id = NULL, updated_at = now()
         WHERE c.rule = '{rule}' AND c.status <> 'resolved' {scope}
           AND NOT EXISTS (SELECT 1 FROM found f WHERE {match})
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM upserted), (SELECT count(*) FROM resolved)
"""


def pair_rule_sql(*, rule: str, severity: str, found: str, scope: str = "") -> str:
    """A rule between two roadworks; `found` yields a < b (ids), overlap, place."""
    return _TEMPLATE.format(
        found=found,
        rule=rule,
        severity=severity,
        sides="a, b, '', ''",
        conflict_target="(rule, roadwork_a_id, roadwork_b_id) WHERE roadwork_b_id IS NOT NULL",
        reopen=_REOPEN,
        scope=scope,
        match="f.a = c.roadwork_a_id AND f.b = c.roadwork_b_id",
    )


def layer_rule_sql(*, rule: str, severity: str, layer: str, found: str, scope: str = "") -> str:
    """A rule between a roadwork and a layer item; `found` yields roadwork, item (text), overlap, place."""
    return _TEMPLATE.format(
        found=found,
        rule=rule,
        severity=severity,
        sides=f"roadwork, NULL, '{layer}', item",
        conflict_target="(rule, roadwork_a_id, layer, layer_object_id) WHERE roadwork_b_id IS NULL",
        reopen=_REOPEN,
        scope=f"AND c.layer = '{layer}' {scope}",
        match="f.roadwork = c.roadwork_a_id AND f.item = c.layer_object_id",
    )


def run_rule_sql(cursor, sql: str, params: dict) -> dict[str, int]:
    cursor.execute(sql, params)
    found, changed, resolved = cursor.fetchone()
    return {"found": found, "changed": changed, "resolved": resolved}
