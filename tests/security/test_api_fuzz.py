"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis), bounded in time.

Every operation of /api/schema/ gets generated requests (valid and invalid), sent through the WSGI application
inside the test's transaction, as the permit authority (who may call nearly everything). No answer may be a 5xx,
and documented answers must match the schema's body and content type. Undocumented status codes (401, 403, 404,
409, 412, 413, 415, 429) are not checked: drf-spectacular documents the success answers only.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode, checks

from auman.wsgi import application
from tests.conftest import make_incident, make_roadwork

pytestmark = pytest.mark.django_db

# About 40 operations x this many examples: the whole run stays well under a minute on a busy 2-core machine.
MAX_EXAMPLES = 15
# A budget for the whole run: once spent, the remaining operations get one example each.
BUDGET_S = 40.0

CHECKS = [checks.not_a_server_error, checks.response_schema_conformance, checks.content_type_conformance]


@pytest.fixture
def api_schema(db, settings):
    # The fuzzer sends hundreds of requests from one address: no rate limit may answer instead of the API.
    settings.AUMAN_RATE_API_ANON = settings.AUMAN_RATE_API_USER = "1000000/m"
    cache.delete_pattern("token-failures:*")
    # As Django's test client does: the end of a request must not close the test's connection (and transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def known_ids(stadtwerke, tmp_path, settings) -> dict[str, str]:
    """Real objects, so that generated calls on /roadworks/{id}/... reach the code behind the look-up."""
    settings.MEDIA_ROOT = tmp_path
    return {
        "/api/v1/roadworks/{id}": str(make_roadwork(stadtwerke).pk),
        "/api/v1/incidents/{id}": str(make_incident().pk),
    }


@pytest.fixture
def authority_token(bob) -> str:
    return Token.objects.get_or_create(user=bob)[0].key


def _pinned(path: str, known_ids: dict[str, str]) -> dict[str, str] | None:
    for prefix, pk in known_ids.items():
        if path.startswith(prefix):
            return {"id": pk}
    return None


def test_the_api_never_answers_5xx_and_keeps_to_its_schema(api_schema, authority_token, known_ids):
    """One hypothesis run per operation (schemathesis' pytest plugin does not run under pytest 9)."""
    headers = {"Authorization": f"Token {authority_token}"}
    failures: list[str] = []
    started = time.monotonic()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20, "the schema lists too few operations"
    runs = [
        (operation, mode) for operation in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    for operation, mode in runs:
        spent = time.monotonic() - started
        examples = MAX_EXAMPLES if spent < BUDGET_S else 1
        # Valid requests go to real objects; invalid ones may also carry invalid ids.
        pinned = _pinned(operation.path, known_ids) if mode is GenerationMode.POSITIVE else None

        @given(case=operation.as_strategy(mode, path_parameters=pinned))
        @hypothesis_settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            pass  # nothing in this operation can be made invalid (no parameters, no body)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected: one run names every failure
            failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
