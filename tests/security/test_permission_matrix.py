"""The permission matrix (tests/security/permission_matrix.py) against the running code, in full.

Each row is tried by each persona: pages with the persona's session, API endpoints with the persona's API token.
Writes carry a valid body, so that a refusal comes from the access rules and not from validation. Every URL
pattern of the project must have rows: a new page or endpoint without them fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Role, User
from gisio.models import ImportJob, ImportJobStatus
from interop.models import ExternalItem, ExternalSource
from maps.models import StreetSegment
from roadworks import tasks
from roadworks.models import Conflict, Roadwork, RoadworkStatus
from roadworks.services import conflicts_sweep, roadwork_attachment_add
from tests.conftest import (
    KAISERRING,
    KAISERRING_NEARBY,
    client_for,
    feature,
    geojson_line,
    line,
    make_incident,
    make_roadwork,
)
from traffic.models import BlackSpot, Incident

from . import permission_matrix as pm

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[8.4735, 49.4835], [8.4770, 49.4835], [8.4770, 49.4858], [8.4735, 49.4858], [8.4735, 49.4835]]],
}
CORRIDOR_LINE = geojson_line([(8.4730, 49.4834), (8.4770, 49.4856)])
EVENT_PERIOD = {"lower": "2027-03-05T10:00:00+01:00", "upper": "2027-03-05T22:00:00+01:00"}
POINT = {"type": "Point", "coordinates": [8.4750, 49.4846]}
DRAFT_REFERENCE = "BS-MATRIX-DRAFT"


def _future_period(days: int = 30, length: int = 5) -> dict[str, str]:
    start = timezone.now() + timedelta(days=days)
    return {"lower": start.isoformat(), "upper": (start + timedelta(days=length)).isoformat()}


@pytest.fixture
def leo(police_org) -> User:
    """leo watches the traffic control room (Verkehrsleitzentrale)."""
    return User.objects.create_user("leo", password="pw-leo-1", role=Role.CONTROL_ROOM)


@dataclass
class World:
    users: dict[str, User | None]
    objects: dict[str, Any]

    def kwargs(self, obj: str | None) -> dict[str, Any]:
        if obj is None:
            return {}
        if obj == "attachment":
            attachment = self.objects["attachment"]
            return {"pk": attachment.roadwork_id, "attachment_id": attachment.pk}
        return {"pk": self.objects[obj].pk}


@pytest.fixture
def world(alice, erin, bob, carol, dave, leo, stadtwerke, settings, tmp_path, monkeypatch) -> World:
    settings.MEDIA_ROOT = tmp_path
    settings.AUMAN_BLACKSPOTS_PUBLIC = False
    settings.AUMAN_HEALTH_WORKER_TIMEOUT = 0.1  # no worker runs here: do not wait for one
    StreetSegment.objects.create(osm_way_id=1, name="Kaiserring", highway="primary", geometry=line(KAISERRING))
    # Layer writes queue their rule's sweep; the sweep itself is tested elsewhere.
    monkeypatch.setattr(tasks.conflicts_sweep_rule, "delay", lambda code: None)
    draft = make_roadwork(
        stadtwerke,
        status=RoadworkStatus.DRAFT,
        geometry=line([(8.4860, 49.4520), (8.4880, 49.4530)]),
        reference=DRAFT_REFERENCE,
    )
    approved = make_roadwork(stadtwerke, status=RoadworkStatus.APPROVED, reference="BS-MATRIX-APPROVED")
    # Two submitted works of Stadtwerke collide: a conflict only Stadtwerke's applicants and staff see.
    submitted = make_roadwork(stadtwerke, status=RoadworkStatus.SUBMITTED, reference="BS-MATRIX-SUB-1")
    make_roadwork(
        stadtwerke, status=RoadworkStatus.SUBMITTED, geometry=line(KAISERRING_NEARBY), reference="BS-MATRIX-SUB-2"
    )
    conflicts_sweep()
    conflict = Conflict.objects.filter(roadwork_b__isnull=False).first()
    assert conflict is not None
    attachment = roadwork_attachment_add(
        user=alice, roadwork_id=draft.pk, uploaded_file=SimpleUploadedFile("plan.pdf", PDF), kind="other"
    )
    incident = make_incident()
    centre = Point(8.4750, 49.4846, srid=4326).transform(25832, clone=True)
    black_spot = BlackSpot.objects.create(
        key="matrix-1",
        rule="UHS-1J",
        period=DateTimeTZRange(timezone.now() - timedelta(days=365), timezone.now()),
        location=centre,
        area=centre.buffer(25),
        accident_count=5,
    )
    source = ExternalSource.objects.create(
        name="Nachbarstadt intern",
        file_path=str(tmp_path / "none.json"),
        format="wzdx",
        poll_interval=timedelta(minutes=5),
        enabled=True,
        public=False,
    )
    external_item = ExternalItem.objects.create(
        source=source,
        source_item_id="x-1",
        title="Sperrung",
        geometry=line(KAISERRING),
        period=DateTimeTZRange(timezone.now(), timezone.now() + timedelta(days=3)),
    )
    import_job = ImportJob.objects.create(
        user=alice, organisation=stadtwerke, feature_count=300, file_name="plan.geojson", status=ImportJobStatus.QUEUED
    )
    boss = client_for(bob)
    layers = {}
    for name, path, body in (
        ("corridor", "corridors", feature(CORRIDOR_LINE, name="Rheinquerung", max_simultaneous=1)),
        ("moratorium", "moratoria", feature(SQUARE, name="Kaiserring", resurfaced_on="2025-04-01")),
        ("event", "events", feature(SQUARE, name="Stadtfest", period=EVENT_PERIOD)),
    ):
        response = boss.post(f"/api/v1/{path}/", body, format="json")
        assert response.status_code == 201, response.content
        layers[name] = type("Ref", (), {"pk": response.json()["id"]})
    users = {
        pm.ANONYMOUS: None,
        pm.OWN: alice,
        pm.OTHER: erin,
        pm.AUTHORITY: bob,
        pm.POLICE: carol,
        pm.CONTROL_ROOM: leo,
        pm.NO_ROLE: dave,
    }
    objects = {
        "draft": draft,
        "approved": approved,
        "submitted": submitted,
        "attachment": attachment,
        "conflict": conflict,
        "incident": incident,
        "black_spot": black_spot,
        "external_item": external_item,
        "import_job": import_job,
        **layers,
    }
    return World(users, objects)


def _version(obj) -> int:
    return type(obj).objects.values_list("version", flat=True).get(pk=obj.pk)


def _request_for(rule: pm.Rule, world: World) -> tuple[dict[str, Any] | None, str | None]:
    """A valid body for the row's write (data, DRF format); reads have none."""
    objs = world.objects
    key = (rule.name, rule.method, rule.obj)
    roadwork = feature(geojson_line(KAISERRING), title="Fernwärme Luisenring", period=_future_period())
    bodies: dict[tuple[str, str, str | None], tuple[dict[str, Any], str | None]] = {
        ("login", "POST", None): ({"username": "alice", "password": "wrong"}, None),
        ("logout", "POST", None): ({}, None),
        ("set_language", "POST", None): ({"language": "de", "next": "/"}, None),
        ("roadworks:create", "POST", None): ({}, None),
        ("roadworks:edit", "POST", "draft"): ({}, None),
        ("roadworks:step", "POST", "draft"): ({"to": "submitted", "version": _version(objs["draft"])}, None),
        ("roadworks:attachments", "POST", "draft"): (
            {"file": SimpleUploadedFile("plan.pdf", PDF), "kind": "other"},
            None,
        ),
        ("roadworks:conflict-status", "POST", "conflict"): ({"status": "acknowledged"}, None),
        ("api:roadwork-list", "POST", None): (roadwork, "json"),
        ("api:roadwork-detail", "PATCH", "draft"): (
            {"properties": {"title": "Neu", "version": _version(objs["draft"])}},
            "json",
        ),
        ("api:roadwork-detail", "PUT", "draft"): (
            {**roadwork, "properties": {**roadwork["properties"], "version": _version(objs["draft"])}},
            "json",
        ),
        ("api:roadwork-detail", "PATCH", "approved"): (
            {"properties": {"title": "Neu", "version": _version(objs["approved"])}},
            "json",
        ),
        ("api:roadwork-attachments", "POST", "draft"): (
            {"file": SimpleUploadedFile("plan.pdf", PDF), "kind": "other"},
            "multipart",
        ),
        ("api:roadwork-transition", "POST", "draft"): (
            {"to": "submitted", "version": _version(objs["draft"])},
            "json",
        ),
        ("api:roadwork-report", "POST", "approved"): (
            {"actual_start": timezone.now().isoformat(), "version": _version(objs["approved"])},
            "json",
        ),
        ("api:conflict-set-status", "POST", "conflict"): ({"status": "acknowledged"}, "json"),
        ("api:incident-list", "POST", None): (feature(POINT, kind="accident"), "json"),
        ("api:incident-detail", "PATCH", "incident"): (
            {"properties": {"street_name": "Luisenring", "version": _version(objs["incident"])}},
            "json",
        ),
        ("api:incident-transition", "POST", "incident"): (
            {"to": "confirmed", "version": _version(objs["incident"])},
            "json",
        ),
        ("gisio-api:roadworks-import", "POST", None): (
            {
                "file": SimpleUploadedFile(
                    "works.geojson",
                    json.dumps({"type": "FeatureCollection", "features": [roadwork]}).encode(),
                    content_type="application/geo+json",
                ),
                "dry_run": "true",
            },
            "multipart",
        ),
        ("api:corridor-list", "POST", None): (feature(CORRIDOR_LINE, name="Zweite", max_simultaneous=2), "json"),
        ("api:moratorium-list", "POST", None): (feature(SQUARE, name="Zweite", resurfaced_on="2025-05-01"), "json"),
        ("api:event-list", "POST", None): (feature(SQUARE, name="Zweites", period=EVENT_PERIOD), "json"),
    }
    for layer in ("corridor", "moratorium", "event"):
        bodies[(f"api:{layer}-detail", "PATCH", layer)] = ({"properties": {"name": "Umbenannt"}}, "json")
        bodies[(f"api:{layer}-detail", "DELETE", layer)] = ({}, "json")
    if rule.method in ("GET", "HEAD"):
        return None, None
    if key not in bodies:
        pytest.fail(f"no body for {key}: add one to _request_for")
    return bodies[key]


def _query_for(rule: pm.Rule) -> dict[str, str]:
    if rule.name == "streets-search":
        return {"q": "Kaiser"}
    if rule.name == "maps:features":
        return {"layers": "roadworks", "on": "2027-03-03"}  # within the draft's period (tests/conftest.py)
    if rule.name == "maps:roadworks-calendar":
        return {"street": "Kaiserring"}
    if rule.name == "streets-nearest":
        return {"lon": "8.4750", "lat": "49.4846"}
    return {}


def _client(rule: pm.Rule, user: User | None):
    if rule.api:
        return client_for(user)
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _url(rule: pm.Rule, world: World) -> str:
    # A list row's object is what the list must (not) hold, not part of its URL.
    kwargs = dict(rule.params)
    if rule.visible is None and rule.obj is not None:
        kwargs.update(world.kwargs(rule.obj))
        if "collection_id" in kwargs:  # an OGC item: the object is the feature
            kwargs["feature_id"] = kwargs.pop("pk")
    return reverse(rule.name, kwargs=kwargs)


def _granted(response) -> bool:
    if response.status_code in (401, 403, 404):
        return False
    location = response.get("Location", "") if response.status_code in (301, 302, 303) else ""
    return "/login/" not in location


def _send(rule: pm.Rule, world: World, persona: str):
    client = _client(rule, world.users[persona])
    url = _url(rule, world)
    data, fmt = _request_for(rule, world)
    method = getattr(client, rule.method.lower())
    if rule.method in ("GET", "HEAD"):
        return method(url, _query_for(rule))
    if rule.api:
        # Layers are versioned: If-Match with the current version, so the write is valid.
        headers = {}
        if rule.method in ("PATCH", "PUT", "DELETE") and rule.obj in ("corridor", "moratorium", "event"):
            current = client_for(world.users[pm.AUTHORITY]).get(url)
            headers["HTTP_IF_MATCH"] = current["ETag"]
        return method(url, data, format=fmt, **headers)
    return method(url, data)


class _Undo(Exception):
    """Raised to roll back one persona's request, so the next persona meets the same world."""


def _outcome(rule: pm.Rule, world: World, persona: str) -> str | None:
    """None when the persona met the matrix's expectation, else what went wrong."""
    response = _send(rule, world, persona)
    # The health check answers 503 while no Celery worker runs (tests start none here): that is its content.
    if response.status_code >= 500 and not (rule.name == "healthz" and response.status_code == 503):
        return f"{persona}: {response.status_code} {response.content[:1000]!r}"
    if response.status_code == 405:
        return f"{rule.method} is not offered by {rule.name}"
    if rule.method == "GET" and response.status_code == 400:
        return f"{persona}: the row's request is bad: {response.content[:300]!r}"
    expected = persona in rule.allowed
    if _granted(response) != expected:
        verb = "should" if expected else "should not"
        return f"{persona} {verb} {rule.action or rule.method}: {response.status_code} {response.content[:300]!r}"
    if rule.shows_draft is not None and expected:
        reference = world.objects[rule.shows_obj].reference.encode()
        body = b"".join(response.streaming_content) if response.streaming else response.content
        found = reference in body
        if found != (persona in rule.shows_draft):
            return f"{persona} {'finds' if found else 'misses'} the {rule.shows_obj} work in {rule.name}"
    if rule.visible is not None and expected:
        ids = {str(f["id"]) for f in response.json()["features"]}
        found = str(world.objects[rule.obj].pk) in ids
        if found != (persona in rule.visible):
            return f"{persona} {'sees' if found else 'misses'} {rule.obj} in {rule.name}"
    return None


@pytest.mark.parametrize("rule", pm.MATRIX, ids=lambda rule: f"{rule.name}-{rule.method}-{rule.obj or '-'}")
def test_it_grants_and_refuses_as_the_matrix_says(world, rule):
    problems = []
    for persona in pm.PERSONAS:
        try:
            with transaction.atomic():
                problems.append(_outcome(rule, world, persona))
                raise _Undo
        except _Undo:
            pass
    problems = [problem for problem in problems if problem]
    assert not problems, "\n".join(problems)


def test_a_token_does_not_open_the_pages(world):
    """Pages know sessions only: a token in the header leaves the caller anonymous there."""
    response = client_for(world.users[pm.AUTHORITY]).get(reverse("roadworks:dashboard"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_deactivated_users_token_opens_nothing(world):
    bob = world.users[pm.AUTHORITY]
    client = client_for(bob)
    User.objects.filter(pk=bob.pk).update(is_active=False)
    assert client.get(reverse("api:roadwork-detail", kwargs={"pk": world.objects["draft"].pk})).status_code == 401


# --- Every URL pattern has rows --------------------------------------------------------------------------------------


def _patterns(resolvers, prefix: str = "", namespace: str = ""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            ns = ":".join(part for part in (namespace, entry.namespace or "") if part)
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else (entry.name or "")
            yield prefix + str(entry.pattern), name


def test_every_url_pattern_declares_its_access():
    declared = {rule.name for rule in pm.MATRIX}
    missing = sorted(
        f"{route} ({name or 'unnamed'})"
        for route, name in _patterns(get_resolver().url_patterns)
        if not (name.split(":")[0] == pm.ADMIN_NAMESPACE or route.startswith("admin/")) and name not in declared
    )
    assert not missing, "URL patterns without rows in tests/security/permission_matrix.py: " + ", ".join(missing)


def test_every_row_names_a_url_that_exists(world):
    for rule in pm.MATRIX:
        _url(rule, world)


def test_docs_permissions_md_is_generated_from_the_matrix():
    assert pm.DOC_PATH.read_text(encoding="utf-8") == pm.render_markdown(), (
        "docs/permissions.md is out of date: run python -m tests.security.permission_matrix"
    )


# --- The admin -----------------------------------------------------------------------------------------------------

_ROUTE_ARGS = (
    (re.compile(r"<path:[a-z_]+>"), "1"),
    (re.compile(r"<[a-z_]+>"), "1"),
    (re.compile(r"\^\(\?P<app_label>[^)]*\)/\$"), "accounts/"),
    (re.compile(r"\(\?P<url>\.\*\)\$"), "nothing-here/"),
)


def _admin_urls() -> list[tuple[str, str]]:
    urls = []
    for route, name in _patterns(get_resolver().url_patterns):
        if not route.startswith("admin/"):
            continue
        for pattern, value in _ROUTE_ARGS:
            route = pattern.sub(value, route)
        urls.append(("/" + route, name))
    return urls


@pytest.mark.parametrize("persona", pm.PERSONAS)
def test_the_admin_is_closed_to_every_persona(world, persona):
    client = Client()
    if world.users[persona] is not None:
        client.force_login(world.users[persona])
    for url, name in _admin_urls():
        response = client.get(url)
        assert response.status_code < 500, url
        if name in pm.ADMIN_OPEN:
            continue
        if name == "admin:logout":
            continue  # logging out is no access
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (url, response.status_code)
    # The same for writes: nothing is stored through the admin.
    before = Roadwork.objects.count(), Incident.objects.count()
    response = client.post("/admin/roadworks/roadwork/add/", {"title": "x"})
    assert response.status_code == 302 and (Roadwork.objects.count(), Incident.objects.count()) == before


def test_the_admin_opens_for_a_superuser_so_the_check_above_is_not_empty(world):
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root-1"))
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/roadworks/roadwork/").status_code == 200
