"""Accidents through the incidents API: the EUSKA / Unfallatlas classification, its rules, its labels, its Accident row.

And nothing personal: no field for names, plates or birth dates exists, so the API refuses them as unknown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.utils import timezone, translation

from auman.api import MSG_UNKNOWN_FIELD
from roadworks.models import RoadworkStatus
from tests.conftest import KAISERRING, feature, line, make_incident, make_roadwork, period
from traffic.accidents import (
    MSG_CODE_REQUIRED,
    MSG_KILLED_MEANS_CATEGORY_1,
    MSG_NEEDS_KILLED,
    MSG_NEEDS_SERIOUSLY_INJURED,
    MSG_NEEDS_SLIGHTLY_INJURED,
    MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE,
    MSG_SERIOUSLY_INJURED_MEANS_CATEGORY_2,
    RoadUser,
)
from traffic.models import (
    Accident,
    AccidentCategory,
    AccidentKind,
    AccidentSource,
    AccidentType,
    Incident,
    IncidentStatus,
    LightCondition,
    RoadCondition,
    TimePrecision,
)
from traffic.selectors import accidents_for_statistics
from traffic.services import (
    MSG_ACCIDENT_DATA_NOT_ACCIDENT,
    MSG_KIND_HAS_ACCIDENT_DATA,
    incident_create,
    incident_transition,
)

pytestmark = pytest.mark.django_db

POINT = {"type": "Point", "coordinates": [8.4750, 49.4846]}
ELSEWHERE = {"type": "Point", "coordinates": [8.4690, 49.4880]}
# A rear-end collision in stop-and-go traffic, property damage only: the most common police entry.
REAR_END = {"category": 5, "kind": 2, "type": 6, "involves": ["car"]}


def log(client, *, accident: Any = None, kind: str = "accident", headers: dict | None = None, **properties):
    if accident is not None:
        properties["accident"] = accident
    body = feature(POINT, kind=kind, **properties)
    return client.post("/api/v1/incidents/", body, format="json", **(headers or {}))


def patch(client, incident_id, **properties):
    return client.patch(f"/api/v1/incidents/{incident_id}/", {"properties": properties}, format="json")


def accident_errors(response) -> dict:
    assert response.status_code == 400, response.json()
    return response.json()["accident"]


def assert_nothing_stored() -> None:
    assert not Incident.objects.exists()
    assert not Accident.objects.exists()


# --- Creating ---------------------------------------------------------------------------------------------


def test_logging_an_accident_creates_its_accident_row_in_the_same_request(api, carol):
    when = timezone.now() - timedelta(minutes=10)
    accident = {
        "category": 2,
        "kind": 5,
        "type": 3,
        "light_condition": 2,
        "road_condition": 1,
        "involves": ["bicycle", "car"],
        "killed": 0,
        "seriously_injured": 1,
        "slightly_injured": 2,
    }
    response = log(api(carol), accident=accident, occurred_at=when.isoformat(), street_name="Kaiserring")
    assert response.status_code == 201, response.json()

    incident = Incident.objects.get()
    row = Accident.objects.get()
    assert row.incident == incident
    assert row.source == AccidentSource.POLICE
    assert row.time_precision == TimePrecision.EXACT
    assert row.occurred_at == incident.occurred_at == when
    assert row.location.equals_exact(incident.location, tolerance=1e-6)
    assert (row.category, row.kind, row.type, row.light_condition, row.road_condition) == (2, 5, 3, 2, 1)
    assert (row.involves_bicycle, row.involves_car, row.involves_pedestrian) == (True, True, False)
    assert (row.involves_motorcycle, row.involves_goods_vehicle, row.involves_other) == (False, False, False)
    assert (row.killed, row.seriously_injured, row.slightly_injured) == (0, 1, 2)

    output = response.json()["properties"]["accident"]
    assert {key: output[key] for key in accident} == accident


def test_counts_left_out_are_stored_as_zero_and_road_users_in_a_fixed_order(api, carol):
    response = log(api(carol), accident={**REAR_END, "involves": ["goods_vehicle", "car", "car"]})
    assert response.status_code == 201, response.json()
    row = Accident.objects.get()
    assert (row.killed, row.seriously_injured, row.slightly_injured) == (0, 0, 0)
    output = response.json()["properties"]["accident"]
    assert output["involves"] == ["car", "goods_vehicle"]
    assert output["light_condition"] is None and output["light_condition_label"] is None


def test_an_accident_may_be_logged_before_it_is_classified(api, carol):
    # The control room hears "accident on the bridge" long before an officer has seen it.
    response = log(api(carol))
    assert response.status_code == 201, response.json()
    assert response.json()["properties"]["accident"] is None
    assert not Accident.objects.exists()


@pytest.mark.parametrize("persona", [None, "dave", "alice"])
def test_the_public_sees_the_accident_but_not_its_classification_or_casualties(api, carol, request, persona):
    incident = logged(api(carol), accident={**REAR_END, "category": 1, "killed": 1})
    user = request.getfixturevalue(persona) if persona else None
    listed = api(user).get("/api/v1/incidents/").json()["features"]
    assert [f["id"] for f in listed] == [str(incident.pk)]
    assert listed[0]["properties"]["kind"] == "accident"
    assert "accident" not in listed[0]["properties"]
    assert "accident" not in api(user).get(f"/api/v1/incidents/{incident.pk}/").json()["properties"]
    # Staff see it.
    assert api(carol).get(f"/api/v1/incidents/{incident.pk}/").json()["properties"]["accident"]["killed"] == 1


def test_other_kinds_show_no_accident_block(api, carol):
    response = log(api(carol), kind="breakdown")
    assert response.status_code == 201
    assert response.json()["properties"]["accident"] is None


def test_accident_data_on_another_kind_is_refused(api, carol):
    response = log(api(carol), kind="breakdown", accident=REAR_END)
    assert response.status_code == 400
    assert response.json()["accident"] == [str(MSG_ACCIDENT_DATA_NOT_ACCIDENT)]
    assert_nothing_stored()


# --- Codes: required and in range ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["category", "kind", "type"])
@pytest.mark.parametrize("how", ["missing", "null"])
def test_category_kind_and_type_are_required(api, carol, name, how):
    accident = {key: value for key, value in REAR_END.items() if key != name}
    if how == "null":
        accident[name] = None
    errors = accident_errors(log(api(carol), accident=accident))
    assert errors == {name: [str(MSG_CODE_REQUIRED)]}
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("category", 0),
        ("category", 7),
        ("kind", -1),
        ("kind", 10),
        ("type", 0),
        ("type", 8),
        ("light_condition", 3),
        ("road_condition", 3),
        ("category", "Unfall mit Getöteten"),
        ("involves", ["tractor"]),
        ("involves", "car"),
        ("killed", -1),
        ("slightly_injured", "two"),
        ("seriously_injured", 1001),
    ],
)
def test_it_refuses_codes_and_counts_out_of_range(api, carol, name, value):
    errors = accident_errors(log(api(carol), accident={**REAR_END, name: value}))
    assert name in errors
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("name", "choices"),
    [
        ("category", AccidentCategory),
        ("kind", AccidentKind),
        ("type", AccidentType),
        ("light_condition", LightCondition),
        ("road_condition", RoadCondition),
    ],
)
def test_it_accepts_every_code_of_every_list(api, carol, name, choices):
    for code in choices.values:
        accident = {**REAR_END, name: code}
        if name == "category" and code in (1, 2, 3):
            accident[("killed", "seriously_injured", "slightly_injured")[code - 1]] = 1
        response = log(api(carol), accident=accident)
        assert response.status_code == 201, (code, response.json())
        assert response.json()["properties"]["accident"][name] == code
    assert Accident.objects.count() == len(choices.values)


# --- Casualty counts agree with the category ----------------------------------------------------------------

K, S, L = "killed", "seriously_injured", "slightly_injured"


@pytest.mark.parametrize(
    ("category", "counts"),
    [
        (1, {K: 1}),
        (1, {K: 2, S: 3, L: 4}),  # the most severe consequence decides; others may be hurt too
        (2, {S: 1}),
        (2, {K: 0, S: 2, L: 5}),
        (3, {L: 1}),
        (3, {K: 0, S: 0, L: 3}),
        (4, {}),
        (5, {K: 0, S: 0, L: 0}),
        (6, {}),
    ],
)
def test_it_accepts_counts_that_fit_the_category(api, carol, category, counts):
    response = log(api(carol), accident={**REAR_END, "category": category, **counts})
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(
    ("category", "counts", "expected"),
    [
        (1, {}, {K: [MSG_NEEDS_KILLED]}),
        (1, {S: 1, L: 1}, {K: [MSG_NEEDS_KILLED]}),
        (2, {}, {S: [MSG_NEEDS_SERIOUSLY_INJURED]}),
        (2, {K: 1, S: 1}, {K: [MSG_KILLED_MEANS_CATEGORY_1]}),
        (2, {L: 2}, {S: [MSG_NEEDS_SERIOUSLY_INJURED]}),
        (3, {}, {L: [MSG_NEEDS_SLIGHTLY_INJURED]}),
        (3, {S: 1, L: 1}, {S: [MSG_SERIOUSLY_INJURED_MEANS_CATEGORY_2]}),
        (3, {K: 1, L: 1}, {K: [MSG_KILLED_MEANS_CATEGORY_1]}),
        (4, {L: 1}, {L: [MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE]}),
        (5, {K: 1}, {K: [MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE]}),
        (6, {S: 1, L: 1}, {S: [MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE], L: [MSG_NO_CASUALTIES_WITH_PROPERTY_DAMAGE]}),
    ],
)
def test_it_refuses_counts_that_contradict_the_category(api, carol, category, counts, expected):
    errors = accident_errors(log(api(carol), accident={**REAR_END, "category": category, **counts}))
    assert errors == {name: [str(message) for message in messages] for name, messages in expected.items()}
    assert_nothing_stored()


def test_contradicting_counts_are_named_together_with_other_errors(api, carol):
    accident = {"category": 3, "kind": 5, "killed": 1}  # no type, and a death in a category 3 accident
    errors = accident_errors(log(api(carol), accident=accident))
    assert errors == {
        "type": [str(MSG_CODE_REQUIRED)],
        K: [str(MSG_KILLED_MEANS_CATEGORY_1)],
        L: [str(MSG_NEEDS_SLIGHTLY_INJURED)],
    }


def test_the_service_checks_the_classification_for_callers_without_the_api(carol):
    location = Point(8.4750, 49.4846, srid=4326).transform(25832, clone=True)
    with pytest.raises(ValidationError) as caught:
        incident_create(user=carol, data={"kind": "accident", "location": location, "accident": {"category": 1}})
    assert "accident" in caught.value.message_dict
    assert_nothing_stored()


# --- Labels -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["de", "en"])
def test_labels_stand_beside_the_codes_in_the_requested_language(api, carol, language):
    accident = {**REAR_END, "light_condition": 1, "road_condition": 2, "involves": ["bicycle", "pedestrian"]}
    response = log(api(carol), accident=accident, headers={"HTTP_ACCEPT_LANGUAGE": language})
    assert response.status_code == 201
    output = response.json()["properties"]["accident"]
    with translation.override(language):
        assert output["category_label"] == str(AccidentCategory(5).label)
        assert output["kind_label"] == str(AccidentKind(2).label)
        assert output["type_label"] == str(AccidentType(6).label)
        assert output["light_condition_label"] == str(LightCondition(1).label)
        assert output["road_condition_label"] == str(RoadCondition(2).label)
        assert output["involves_labels"] == [str(RoadUser.BICYCLE.label), str(RoadUser.PEDESTRIAN.label)]


def test_english_labels_are_the_english_wording(api, carol):
    response = log(api(carol), accident=REAR_END, headers={"HTTP_ACCEPT_LANGUAGE": "en"})
    output = response.json()["properties"]["accident"]
    assert output["category_label"] == "Other accident with property damage only"
    assert output["type_label"] == "Accident in longitudinal traffic"


# --- Updating -----------------------------------------------------------------------------------------------


def logged(client, accident=REAR_END) -> Incident:
    response = log(client, accident=accident)
    assert response.status_code == 201, response.json()
    return Incident.objects.get()


def test_an_accident_block_sent_again_replaces_the_classification(api, carol):
    incident = logged(api(carol))
    row_id = Accident.objects.get().pk
    # A person died in hospital: the category becomes 1 (killed within 30 days counts as killed).
    response = patch(api(carol), incident.pk, version=1, accident={"category": 1, "kind": 2, "type": 6, "killed": 1})
    assert response.status_code == 200, response.json()
    row = Accident.objects.get()
    assert row.pk == row_id
    assert (row.category, row.killed, row.involves_car) == (1, 1, False)


def test_the_accident_row_follows_the_incidents_place_and_time(api, carol):
    incident = logged(api(carol))
    earlier = timezone.now() - timedelta(hours=2)
    body = {"type": "Feature", "geometry": ELSEWHERE, "properties": {"version": 1, "occurred_at": earlier.isoformat()}}
    response = api(carol).patch(f"/api/v1/incidents/{incident.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    incident.refresh_from_db()
    row = Accident.objects.get()
    assert row.occurred_at == earlier == incident.occurred_at
    assert row.location.equals_exact(incident.location, tolerance=1e-6)
    assert row.category == 5  # the classification is untouched when no block is sent


def test_a_classification_can_be_added_later(api, carol):
    response = log(api(carol))
    incident_id = response.json()["id"]
    assert patch(api(carol), incident_id, version=1, accident=REAR_END).status_code == 200
    assert Accident.objects.get().incident_id is not None


def test_changing_the_kind_away_from_accident_needs_the_accident_data_removed(api, carol):
    incident = logged(api(carol))
    response = patch(api(carol), incident.pk, version=1, kind="breakdown")
    assert response.status_code == 400
    assert response.json()["kind"] == [str(MSG_KIND_HAS_ACCIDENT_DATA)]
    incident.refresh_from_db()
    assert incident.kind == "accident" and Accident.objects.exists()

    response = patch(api(carol), incident.pk, version=1, kind="breakdown", accident=None)
    assert response.status_code == 200, response.json()
    assert response.json()["properties"]["accident"] is None
    assert not Accident.objects.exists()


def test_an_inconsistent_update_changes_nothing(api, carol):
    incident = logged(api(carol))
    response = patch(api(carol), incident.pk, version=1, description="neu", accident={**REAR_END, "killed": 1})
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.description == "" and incident.version == 1
    assert Accident.objects.get().killed == 0


def test_a_read_accident_put_back_unchanged_is_accepted(api, carol):
    incident = logged(api(carol))
    body = api(carol).get(f"/api/v1/incidents/{incident.pk}/").json()
    assert "category_label" in body["properties"]["accident"]
    response = api(carol).put(f"/api/v1/incidents/{incident.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    assert Accident.objects.get().category == 5


# --- No personal data ---------------------------------------------------------------------------------------

PERSONAL = {
    "driver_name": "Max Mustermann",
    "license_plate": "MA-AB 1234",
    "number_plate": "MA-AB 1234",
    "birth_date": "1980-01-01",
    "date_of_birth": "1980-01-01",
    "witness_phone": "0621 123456",
}


def test_it_refuses_personal_data_fields_on_the_incident_as_unknown(api, carol):
    response = log(api(carol), accident=REAR_END, **PERSONAL)
    assert response.status_code == 400
    for name in PERSONAL:
        assert response.json()[name] == [str(MSG_UNKNOWN_FIELD)]
    assert_nothing_stored()


def test_it_refuses_personal_data_fields_in_the_accident_block_as_unknown(api, carol):
    errors = accident_errors(log(api(carol), accident={**REAR_END, **PERSONAL}))
    assert errors == {name: [str(MSG_UNKNOWN_FIELD)] for name in PERSONAL}
    assert_nothing_stored()


def test_the_models_have_no_field_for_personal_data():
    words = ("name", "plate", "birth", "phone", "address", "licence", "license")
    accident_fields = {field.name for field in Accident._meta.get_fields()}
    assert not [name for name in accident_fields if any(word in name for word in words)]
    # An incident names a street, nothing else.
    incident_fields = {field.name for field in Incident._meta.get_fields()}
    assert [name for name in incident_fields if any(word in name for word in words)] == ["street_name"]


# --- Code lists ---------------------------------------------------------------------------------------------


def test_the_code_lists_are_public_and_complete(api):
    response = api(None).get("/api/v1/accident-codes/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    data = response.json()
    assert [item["code"] for item in data["category"]] == [1, 2, 3, 4, 5, 6]
    assert [item["code"] for item in data["kind"]] == list(range(10))
    assert [item["code"] for item in data["type"]] == [1, 2, 3, 4, 5, 6, 7]
    assert [item["code"] for item in data["light_condition"]] == [0, 1, 2]
    assert [item["code"] for item in data["road_condition"]] == [0, 1, 2]
    assert [item["code"] for item in data["involves"]] == [
        "bicycle",
        "car",
        "pedestrian",
        "motorcycle",
        "goods_vehicle",
        "other",
    ]
    assert data["category"][0]["label"] == "Accident with persons killed"
    assert "Accept-Language" in response["Vary"]


def test_the_code_lists_speak_the_requested_language(api):
    for language in ("de", "en"):
        data = api(None).get("/api/v1/accident-codes/", HTTP_ACCEPT_LANGUAGE=language).json()
        with translation.override(language):
            assert [item["label"] for item in data["type"]] == [str(choice.label) for choice in AccidentType]
            assert data["involves"][0]["label"] == str(RoadUser.BICYCLE.label)


# --- Statistics and performance -----------------------------------------------------------------------------


def test_false_reports_do_not_count_in_the_accident_statistics(api, carol):
    kept = logged(api(carol))
    false_report = make_incident()
    cancelled = Accident.objects.create(
        incident=false_report,
        location=false_report.location,
        occurred_at=false_report.occurred_at,
        category=5,
        kind=2,
        type=6,
    )
    imported = Accident.objects.create(
        location=kept.location,
        occurred_at=kept.occurred_at,
        category=3,
        kind=5,
        type=3,
        source=AccidentSource.UNFALLATLAS,
    )
    incident_transition(
        user=carol, incident_id=false_report.pk, to_status=IncidentStatus.CANCELLED, comment="", expected_version=1
    )
    counted = set(accidents_for_statistics().values_list("pk", flat=True))
    assert counted == {Accident.objects.get(incident=kept).pk, imported.pk}
    assert cancelled.pk not in counted
    # The row itself stays, so a reopened report gets its classification back.
    assert Accident.objects.filter(pk=cancelled.pk).exists()


def test_listing_accident_incidents_takes_a_fixed_number_of_queries(api, carol, django_assert_max_num_queries):
    client = api(carol)
    for _ in range(8):
        assert log(client, accident=REAR_END).status_code == 201
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/incidents/")
    assert len(response.json()["features"]) == 8


# --- Work-zone crashes --------------------------------------------------------------------------------------


@pytest.fixture
def work_zone_check_runs_at_once(monkeypatch):
    """The check is a Celery task enqueued on commit; here it runs in the test's own process instead."""
    from traffic import tasks

    calls: list[str] = []

    def run(accident_id: str):
        calls.append(accident_id)
        return tasks.accident_flag_work_zone(accident_id)

    monkeypatch.setattr(tasks.accident_flag_work_zone, "delay", run)
    return calls


def test_a_logged_accident_at_running_roadworks_is_flagged_as_a_work_zone_crash(
    api, carol, stadtwerke, work_zone_check_runs_at_once, django_capture_on_commit_callbacks
):
    works = make_roadwork(
        stadtwerke,
        geometry=line(KAISERRING),
        period=period(timezone.now() - timedelta(days=1), 10),
        status=RoadworkStatus.IN_PROGRESS,
    )
    with django_capture_on_commit_callbacks(execute=True):
        incident = logged(api(carol))
    assert Accident.objects.get().work_zone == works
    assert work_zone_check_runs_at_once == [str(Accident.objects.get().pk)]

    # A change of description does not move the accident: no new check.
    with django_capture_on_commit_callbacks(execute=True):
        assert patch(api(carol), incident.pk, version=1, description="zwei Pkw").status_code == 200
    assert len(work_zone_check_runs_at_once) == 1

    # Moved 4 km away from the works: checked again, and no longer a work-zone crash.
    far = {"type": "Point", "coordinates": [8.4870, 49.4525]}
    body = {"type": "Feature", "geometry": far, "properties": {"version": 2}}
    with django_capture_on_commit_callbacks(execute=True):
        assert api(carol).patch(f"/api/v1/incidents/{incident.pk}/", body, format="json").status_code == 200
    assert len(work_zone_check_runs_at_once) == 2
    assert Accident.objects.get().work_zone is None
