"""The authority's layers through the API: /api/v1/corridors/, /api/v1/moratoria/, /api/v1/events/ (GeoJSON in
WGS84, versioned like roadworks) and the rule catalogue at /api/v1/conflict-rules/. Every write re-runs the layer's
rule once it commits."""

from __future__ import annotations

import pytest

from roadworks import tasks
from roadworks.layer_api import MSG_LAYERS_AUTHORITY_ONLY, MSG_LAYERS_NOT_ALLOWED
from roadworks.models import Conflict, ConflictStatus, Corridor, Event, MoratoriumArea
from tests.conftest import KAISERRING, NECKARAU, feature, geojson_line, make_roadwork

pytestmark = pytest.mark.django_db

# Around Kaiserring in the city centre (WGS84).
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[8.4735, 49.4835], [8.4770, 49.4835], [8.4770, 49.4858], [8.4735, 49.4858], [8.4735, 49.4835]]],
}
CORRIDOR_LINE = geojson_line([(8.4730, 49.4834), (8.4770, 49.4856)])
EVENT_PERIOD = {"lower": "2027-03-05T10:00:00+01:00", "upper": "2027-03-05T22:00:00+01:00"}


@pytest.fixture
def queued(monkeypatch) -> list[str]:
    """The rule sweeps a layer write queues (the task itself is tested with the worker in test_rules_worker.py)."""
    calls: list[str] = []
    monkeypatch.setattr(tasks.conflicts_sweep_rule, "delay", lambda code: calls.append(code))
    return calls


def create_corridor(client, **properties):
    body = feature(CORRIDOR_LINE, name="Rheinquerung", max_simultaneous=1, **properties)
    return client.post("/api/v1/corridors/", body, format="json")


def test_the_authority_records_a_corridor_and_its_rule_re_runs(api, bob, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_corridor(api(bob), description="B 37")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["geometry"]["type"] == "MultiLineString"
    assert data["properties"]["max_simultaneous"] == 1 and data["properties"]["version"] == 1
    assert response["ETag"] == '"1"'
    corridor = Corridor.objects.get()
    assert corridor.geometry.srid == 25832
    assert queued == ["C4"]


def test_a_corridor_write_makes_its_conflicts_appear(
    api, bob, stadtwerke, telekom, queued, django_capture_on_commit_callbacks
):
    make_roadwork(stadtwerke, reference="A")
    make_roadwork(telekom, reference="B")
    with django_capture_on_commit_callbacks(execute=True):
        create_corridor(api(bob))
    tasks.conflicts_sweep_rule.apply(args=queued)
    assert set(Conflict.objects.filter(rule="C4").values_list("roadwork_a__reference", flat=True)) == {"A", "B"}


def test_a_stale_version_is_refused_and_a_current_one_updates(api, bob, queued):
    corridor_id = create_corridor(api(bob)).json()["id"]
    stale = api(bob).patch(
        f"/api/v1/corridors/{corridor_id}/", {"properties": {"max_simultaneous": 2, "version": 7}}, format="json"
    )
    assert stale.status_code == 412
    updated = api(bob).patch(
        f"/api/v1/corridors/{corridor_id}/", {"properties": {"max_simultaneous": 2, "version": 1}}, format="json"
    )
    assert updated.status_code == 200, updated.json()
    assert updated.json()["properties"]["version"] == 2
    assert Corridor.objects.get().max_simultaneous == 2


def test_deleting_a_layer_item_resolves_its_conflicts_in_the_sweep_that_follows(
    api, bob, stadtwerke, telekom, queued, django_capture_on_commit_callbacks
):
    make_roadwork(stadtwerke, reference="A")
    make_roadwork(telekom, reference="B")
    with django_capture_on_commit_callbacks(execute=True):
        corridor_id = create_corridor(api(bob)).json()["id"]
    tasks.conflicts_sweep_rule.apply(args=["C4"])
    with django_capture_on_commit_callbacks(execute=True):
        response = api(bob).delete(f"/api/v1/corridors/{corridor_id}/")
    assert response.status_code == 204
    assert queued == ["C4", "C4"]
    tasks.conflicts_sweep_rule.apply(args=["C4"])
    assert set(Conflict.objects.filter(rule="C4").values_list("status", flat=True)) == {ConflictStatus.RESOLVED}


@pytest.mark.parametrize("persona", ["alice", "carol"])
def test_only_the_authority_writes_layers(api, request, persona, queued):
    response = create_corridor(api(request.getfixturevalue(persona)))
    assert response.status_code == 403
    assert response.json()["detail"] == str(MSG_LAYERS_AUTHORITY_ONLY)
    assert not Corridor.objects.exists() and queued == []


def test_applicants_and_staff_read_layers_others_do_not(api, alice, carol, dave, bob, queued):
    create_corridor(api(bob))
    for user in (alice, carol):
        assert len(api(user).get("/api/v1/corridors/").json()["features"]) == 1
    assert api(None).get("/api/v1/corridors/").status_code == 401
    refused = api(dave).get("/api/v1/corridors/")
    assert refused.status_code == 403 and refused.json()["detail"] == str(MSG_LAYERS_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (feature(SQUARE, name="Fläche statt Linie"), "geometry"),
        (feature(geojson_line([(8.70, 49.40), (8.71, 49.41)]), name="Heidelberg"), "geometry"),
        (feature(CORRIDOR_LINE, name="Null", max_simultaneous=0), "max_simultaneous"),
        (feature(CORRIDOR_LINE, name="Tippfehler", max_simultanous=2), "max_simultanous"),
        (feature(CORRIDOR_LINE), "name"),
    ],
)
def test_bad_corridors_are_refused_with_a_message_per_field(api, bob, body, field, queued):
    response = api(bob).post("/api/v1/corridors/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert not Corridor.objects.exists()


def test_the_authority_records_a_moratorium_with_the_default_years(
    api, bob, settings, queued, django_capture_on_commit_callbacks
):
    settings.AUMAN_MORATORIUM_YEARS = 5
    with django_capture_on_commit_callbacks(execute=True):
        response = api(bob).post(
            "/api/v1/moratoria/",
            feature(SQUARE, name="Kaiserring", resurfaced_on="2025-04-01", reason="Deckenerneuerung"),
            format="json",
        )
    assert response.status_code == 201, response.json()
    properties = response.json()["properties"]
    assert (properties["years"], properties["ends_on"]) == (5, "2030-04-01")
    assert response.json()["geometry"]["type"] == "MultiPolygon"
    assert queued == ["C5"]


def test_a_moratorium_of_more_than_thirty_years_is_refused(api, bob, queued):
    response = api(bob).post(
        "/api/v1/moratoria/", feature(SQUARE, name="Ewig", resurfaced_on="2025-04-01", years=50), format="json"
    )
    assert response.status_code == 400 and "years" in response.json()


def test_moratoria_filter_by_the_day_they_are_in_force(api, bob, queued):
    for name, day in (("Alt", "2015-01-01"), ("Neu", "2025-01-01")):
        api(bob).post("/api/v1/moratoria/", feature(SQUARE, name=name, resurfaced_on=day), format="json")
    names = [
        f["properties"]["name"] for f in api(bob).get("/api/v1/moratoria/?in_force_on=2026-06-01").json()["features"]
    ]
    assert names == ["Neu"]
    assert api(bob).get("/api/v1/moratoria/?in_force_on=gestern").status_code == 400


def test_the_authority_records_an_event(api, bob, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(bob).post(
            "/api/v1/events/",
            feature(SQUARE, name="Stadtfest", period=EVENT_PERIOD, expected_visitors=30000),
            format="json",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["properties"]["period"]["lower"].startswith("2027-03-05T")
    assert Event.objects.get().expected_visitors == 30000
    assert queued == ["C6"]
    on_day = api(bob).get("/api/v1/events/?active_on=2027-03-05").json()["features"]
    assert len(on_day) == 1
    assert api(bob).get("/api/v1/events/?active_on=2027-03-06").json()["features"] == []


def test_an_event_ending_before_it_starts_is_refused(api, bob, queued):
    period = {"lower": EVENT_PERIOD["upper"], "upper": EVENT_PERIOD["lower"]}
    response = api(bob).post("/api/v1/events/", feature(SQUARE, name="Rückwärts", period=period), format="json")
    assert response.status_code == 400 and "period" in response.json()
    assert not Event.objects.exists()


def test_layers_filter_by_bbox(api, bob, queued):
    create_corridor(api(bob))
    api(bob).post(
        "/api/v1/corridors/", feature(geojson_line(NECKARAU), name="Neckarau", max_simultaneous=2), format="json"
    )
    west, south = KAISERRING[0]
    inside = api(bob).get(f"/api/v1/corridors/?bbox={west - 0.01},{south - 0.01},{west + 0.01},{south + 0.01}")
    assert [f["properties"]["name"] for f in inside.json()["features"]] == ["Rheinquerung"]


def test_the_rule_catalogue_lists_codes_severities_and_parameters(api, alice):
    response = api(alice).get("/api/v1/conflict-rules/")
    assert response.status_code == 200
    by_code = {rule["code"]: rule for rule in response.json()}
    assert list(by_code) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10"]
    assert by_code["C2"]["parameters"]["distance_m"] == 300
    assert by_code["C5"]["layer"] == "moratorium" and by_code["C5"]["severity"] == "error"
    assert by_code["C1"]["layer"] is None


def test_moratorium_writes_go_through_the_same_checks(api, bob, queued):
    response = api(bob).post(
        "/api/v1/moratoria/", feature(CORRIDOR_LINE, name="Linie", resurfaced_on="2025-01-01"), format="json"
    )
    assert response.status_code == 400 and "geometry" in response.json()
    assert not MoratoriumArea.objects.exists()
