"""The layers in the admin: pages render with a local map, saving and deleting re-run the layer's rule after the
commit, geometry is checked like in the API, and the rule state is read-only."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from auman.geo import MSG_GEOMETRY_OUTSIDE
from roadworks import tasks
from roadworks.models import Corridor, Event, MoratoriumArea, NetworkFeature, RuleState
from roadworks.services import conflicts_sweep_all
from tests.conftest import KAISERRING

pytestmark = pytest.mark.django_db

MULTILINE = {"type": "MultiLineString", "coordinates": [[list(c) for c in KAISERRING]]}
HEIDELBERG = {"type": "MultiLineString", "coordinates": [[[8.6940, 49.4100], [8.6960, 49.4110]]]}


@pytest.fixture
def admin_web(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.org", "pw-root-1"))
    return client


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(tasks.conflicts_sweep_rule, "delay", lambda code: calls.append(code))
    return calls


def corridor_form(geometry: dict, **overrides) -> dict:
    return {
        "name": "Rheinquerung",
        "description": "",
        "geometry": json.dumps(geometry),
        "max_simultaneous": 1,
        "active": "on",
        **overrides,
    }


@pytest.mark.parametrize("model", [Corridor, MoratoriumArea, Event, NetworkFeature, RuleState])
def test_the_layer_pages_render(admin_web, model):
    name = f"admin:roadworks_{model._meta.model_name}"
    assert admin_web.get(reverse(f"{name}_changelist")).status_code == 200
    if model is not RuleState:
        page = admin_web.get(reverse(f"{name}_add"))
        assert page.status_code == 200 and "leaflet/leaflet.js" in page.content.decode()


def test_saving_a_corridor_re_runs_its_rule_after_the_commit(admin_web, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_web.post(reverse("admin:roadworks_corridor_add"), corridor_form(MULTILINE))
    assert response.status_code == 302, response.content.decode()[:2000]
    corridor = Corridor.objects.get()
    assert corridor.geometry.srid == 25832 and corridor.version == 1
    assert queued == ["C4"]

    with django_capture_on_commit_callbacks(execute=True):
        admin_web.post(
            reverse("admin:roadworks_corridor_change", args=[corridor.pk]), corridor_form(MULTILINE, max_simultaneous=2)
        )
    assert Corridor.objects.get().version == 2 and queued == ["C4", "C4"]

    with django_capture_on_commit_callbacks(execute=True):
        admin_web.post(reverse("admin:roadworks_corridor_delete", args=[corridor.pk]), {"post": "yes"})
    assert not Corridor.objects.exists() and queued == ["C4", "C4", "C4"]


def test_the_admin_refuses_a_corridor_outside_the_service_area(admin_web, queued, settings):
    response = admin_web.post(reverse("admin:roadworks_corridor_add"), corridor_form(HEIDELBERG))
    assert response.status_code == 200
    assert str(MSG_GEOMETRY_OUTSIDE).format(city=settings.AUMAN_CITY_NAME) in response.content.decode()
    assert not Corridor.objects.exists() and queued == []


def test_the_rule_state_is_read_only(admin_web):
    conflicts_sweep_all()
    state = RuleState.objects.get(code="C1")
    page = admin_web.get(reverse("admin:roadworks_rulestate_change", args=[state.pk]))
    assert page.status_code == 200 and 'name="fingerprint"' not in page.content.decode()
    assert admin_web.get(reverse("admin:roadworks_rulestate_add")).status_code == 403
