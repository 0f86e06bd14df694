"""Project-wide promises: migrations match the models, the system check is clean, API docs work offline."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core.management import call_command


def test_migrations_match_the_models(db):
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_system_check_is_clean():
    out = StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_the_openapi_schema_lists_the_endpoints(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/roadworks/", "/api/v1/roadworks/{id}/", "/api/v1/incidents/", "/api/v1/conflicts/"):
        assert path in paths
    parameters = {p["name"] for p in paths["/api/v1/roadworks/"]["get"]["parameters"]}
    assert {"bbox", "status", "active_on", "updated_since", "page"} <= parameters


@pytest.mark.parametrize("url", ["/api/docs/"])
def test_the_api_docs_load_their_assets_locally(client, db, url):
    response = client.get(url)
    assert response.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
    assert sources, "the docs page loads no assets"
    assert all(not s.startswith(("http://", "https://", "//")) for s in sources), sources
