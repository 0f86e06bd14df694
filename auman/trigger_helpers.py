"""Faster versions of the two helper functions every history trigger calls, installed after each migrate.

django-pghistory's _pgh_attach_context() and django-pgtrigger's _pgtrigger_should_ignore() read a session setting
inside a PL/pgSQL block with an EXCEPTION clause (for a setting that was never set). Such a block opens a
subtransaction on every call, that is twice for every history row: a conflict sweep writing 25,000 rows took 47.6 s
instead of 3.1 s at 100,000 works (bench/conflict_rules.py), and a transaction with more than 64 subtransactions
slows every snapshot in the database. current_setting(name, true) answers NULL for a missing setting without
raising; the results are the same.

pgtrigger writes its version again whenever a trigger is installed (a migration adding history to a model), so
these are installed after every migrate (post_migrate, connected in roadworks.apps), not once.
"""

from __future__ import annotations

from django.db import connections

ATTACH_CONTEXT_SQL = """
CREATE OR REPLACE FUNCTION _pgh_attach_context() RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    _pgh_context_id uuid := NULLIF(current_setting('pghistory.context_id', true), '')::uuid;
    _pgh_context_metadata jsonb := NULLIF(current_setting('pghistory.context_metadata', true), '')::jsonb;
BEGIN
    IF _pgh_context_id IS NOT NULL AND _pgh_context_metadata IS NOT NULL THEN
        INSERT INTO pghistory_context (id, metadata, created_at, updated_at)
            VALUES (_pgh_context_id, _pgh_context_metadata, NOW(), NOW())
            ON CONFLICT (id) DO UPDATE
                SET metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at
                WHERE pghistory_context.metadata != EXCLUDED.metadata;
        RETURN _pgh_context_id;
    END IF;
    RETURN NULL;
END;
$$;
"""

SHOULD_IGNORE_SQL = """
CREATE OR REPLACE FUNCTION "public"._pgtrigger_should_ignore(trigger_name name) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    _pgtrigger_ignore text[] := NULLIF(current_setting('pgtrigger.ignore', true), '')::text[];
BEGIN
    RETURN COALESCE(trigger_name = ANY(_pgtrigger_ignore), false);
END;
$$;
"""


def install(using: str = "default") -> None:
    with connections[using].cursor() as cursor:
        cursor.execute(ATTACH_CONTEXT_SQL)
        cursor.execute(SHOULD_IGNORE_SQL)


def install_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate receiver, connected for one app: runs once at the end of every migrate."""
    install(using)
