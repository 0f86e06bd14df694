"""Security headers, the Content-Security-Policy, cookies, and `manage.py check --deploy` in production."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]


def _directives(header: str) -> dict[str, list[str]]:
    result = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            result[words[0]] = words[1:]
    return result


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/api/v1/roadworks/", "/feeds/wzdx/v4.2/workzones.geojson"])
def test_every_answer_carries_the_security_headers(path):
    response = Client().get(path)
    assert response.status_code == 200
    policy = _directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_the_swagger_page_loads_its_start_script_from_a_url():
    page = Client().get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert "<style" not in page
    script = Client().get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


def test_the_session_and_csrf_cookies_are_http_only_and_same_site(alice):
    client = Client(REMOTE_ADDR="198.51.100.70")
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-1"})
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["httponly"] and client.cookies["csrftoken"]["samesite"] == "Lax"


def test_logins_need_the_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    assert client.post("/accounts/login/", {"username": "alice", "password": "pw-alice-1"}).status_code == 403


# Inline scripts, handlers and style attributes would be refused by the policy: none may be written.
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I), "on* handler attribute"),
    (re.compile(r"\sstyle\s*=\s*[\"']", re.I), "style attribute"),
    (re.compile(r"<style", re.I), "<style> block"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def _own_templates() -> list[Path]:
    roots = [REPO / "templates", *(REPO / app / "templates" for app in ("accounts", "roadworks", "traffic", "maps"))]
    return [path for root in roots if root.exists() for path in root.rglob("*.html")]


def test_no_template_has_inline_scripts_handlers_or_styles():
    found = [
        f"{path.relative_to(REPO)}: {label}"
        for path in _own_templates()
        for pattern, label in INLINE
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_no_own_script_writes_inline_handlers_or_style_attributes():
    own = [path for path in (REPO / "static").rglob("*.js") if "vendor" not in path.parts]
    assert own, "no scripts found"
    bad = re.compile(r"setAttribute\(\s*[\"'](style|on[a-z]+)[\"']|\beval\(|new Function\(|\.innerHTML\s*=")
    found = [str(path.relative_to(REPO)) for path in own if bad.search(path.read_text(encoding="utf-8"))]
    assert found == []


def _production_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AUMAN_", "DJANGO_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "auman.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "AUMAN_REQUIRE_SECRET_KEY": "true",
            "SITE_URL": "https://auman.example.org",
            "ALLOWED_HOSTS": "auman.example.org",
        }
    )
    env.pop("SECURE_COOKIES", None)
    return env


def test_check_deploy_is_clean_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "SECRET_KEY must be set in production" in result.stderr


def test_production_settings_are_secure():
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=REPO,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1].split() == ["True", "True", "True", "True"], result.stderr
