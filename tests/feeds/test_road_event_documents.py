"""WZDx and TDx documents as PostgreSQL writes them: ids, related road events, data sources, feed_info and text
escaping, checked value by value (and byte by byte where Python's JSON encoder is the reference)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db import connection
from django.utils import timezone, translation

from accounts.models import Organisation
from roadworks.models import Detour, Direction, Roadwork
from tests.conftest import KAISERRING, NECKARAU, line, local, make_incident, make_roadwork, period
from traffic.feeds import tdx, wzdx
from traffic.models import Accident, IncidentDirection, IncidentKind, IncidentStatus

from .conftest import LUISENRING, area_along, multi_line, official_errors

pytestmark = pytest.mark.django_db

BUILT_AT = datetime(2027, 3, 2, 11, 30, 15, 987654, tzinfo=UTC)
# Everything JSON must escape, and what it must not: quotes, backslash, the short escapes, another control
# character, XML's specials, a non-character, a line separator, an emoji and umlauts.
AWKWARD = "Straße \"A\" & <B> 'C' \\ D\nE\tF\x01G\x1fH \ufffe \u2028 🚧 Ölstraße"
ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def wzdx_document(info: dict | None = None, **filters) -> tuple[bytes, dict]:
    body = wzdx.workzone_document(
        now=timezone.now(), built_at=BUILT_AT, feed_info=info or {"publisher": "Stadt Mannheim"}, **filters
    )
    return body, json.loads(body)


def tdx_document(info: dict | None = None) -> tuple[bytes, dict]:
    body = tdx.incident_document(built_at=BUILT_AT, feed_info=info or {"publisher": "Stadt Mannheim"})
    return body, json.loads(body)


def label(kind: IncidentKind) -> str:
    with translation.override(settings.LANGUAGE_CODE):  # the feed speaks the service's language
        return str(kind.label)


def related(feature: dict) -> list[tuple[str, str]]:
    return [(r["type"], r["id"]) for r in feature["properties"]["core_details"].get("related_road_events", [])]


def derived(item, key: str) -> str:
    return str(uuid.uuid5(item.pk, key))


def test_an_empty_feed_has_the_publisher_as_its_only_data_source_and_feed_info_in_python_s_key_order():
    info = {"publisher": AWKWARD, "contact_email": "verkehr@example.org", "update_frequency": 60}
    for body, feed in (wzdx_document(info), tdx_document(info)):
        version = feed["feed_info"]["version"]
        header = {
            **info,
            "update_date": "2027-03-02T11:30:15Z",
            "version": version,
            "data_sources": [{"data_source_id": "publisher", "organization_name": AWKWARD}],
        }
        expected = '{"feed_info":' + ENCODE(header) + ',"type":"FeatureCollection","features":[]}'
        assert body == expected.encode()
    assert {wzdx_document(info)[1]["feed_info"]["version"], tdx_document(info)[1]["feed_info"]["version"]} == {
        "4.2",
        "1.1",
    }


def test_awkward_texts_come_out_as_python_s_json_encoder_writes_them(client, official):
    organisation = Organisation.objects.create(name=AWKWARD, kind=Organisation.Kind.UTILITY, email="")
    long_text = "Sehr lange Beschreibung. " * 200
    work = make_roadwork(organisation, title=AWKWARD, description=long_text, street_names=[AWKWARD, "Kaiserring"])
    detour = Detour.objects.create(roadwork=work, name=AWKWARD, description=AWKWARD, geometry=line(LUISENRING))
    body, feed = wzdx_document()
    assert official_errors(official, "wzdx-workzones", feed) == []
    events = {f["id"]: f for f in feed["features"]}
    core = events[str(work.pk)]["properties"]["core_details"]
    assert (core["name"], core["description"], core["road_names"]) == (AWKWARD, long_text, [AWKWARD, "Kaiserring"])
    detour_core = events[derived(work, f"detour-{detour.pk}")]["properties"]["core_details"]
    assert (detour_core["name"], detour_core["description"], detour_core["road_names"]) == (AWKWARD, AWKWARD, [AWKWARD])
    assert feed["feed_info"]["data_sources"][0]["organization_name"] == AWKWARD
    # Byte for byte as Python's encoder writes the text (PostgreSQL's to_json escapes the same characters alike).
    assert b'"name":' + ENCODE(AWKWARD).encode() + b',"description":' in body
    # An organisation without an e-mail address: no contact_email.
    assert b'"organization_name":' + ENCODE(AWKWARD).encode() + b',"update_date":' in body


def test_an_incident_s_awkward_texts_come_out_as_python_s_json_encoder_writes_them():
    incident = make_incident(kind=IncidentKind.HAZARD, street_name=AWKWARD, description=AWKWARD)
    body, feed = tdx_document()
    [event] = feed["features"]
    core = event["properties"]["core_details"]
    assert core["road_names"] == [AWKWARD]
    assert core["description"] == AWKWARD
    assert core["name"] == f"{label(IncidentKind.HAZARD)}, {AWKWARD}"
    assert b'"description":' + ENCODE(AWKWARD).encode() + b',"creation_date"' in body
    assert event["id"] == str(incident.pk)


def test_a_work_in_two_parts_on_both_sides_with_detours_names_every_sibling_in_document_order(client, official):
    utility = Organisation.objects.create(name="Stadtwerke", kind=Organisation.Kind.UTILITY, email="sw@example.org")
    work = make_roadwork(utility, direction=Direction.BOTH, geometry=multi_line(KAISERRING, NECKARAU))
    first = Detour.objects.create(roadwork=work, name="U1", geometry=line(LUISENRING))
    second = Detour.objects.create(roadwork=work, name="U2", geometry=multi_line(LUISENRING, NECKARAU))
    _, feed = wzdx_document()
    assert official_errors(official, "wzdx-workzones", feed) == []
    zones = [str(work.pk), derived(work, "part-1-backward"), derived(work, "part-2"), derived(work, "part-2-backward")]
    detours = [
        derived(work, f"detour-{first.pk}"),
        derived(work, f"detour-{second.pk}"),
        derived(work, f"detour-{second.pk}-part-2"),
    ]
    assert [f["id"] for f in feed["features"]] == zones + detours
    features = {f["id"]: f for f in feed["features"]}
    for zone in zones:
        assert related(features[zone]) == [("related-work-zone", z) for z in zones if z != zone] + [
            ("related-detour", d) for d in detours
        ]
    for detour in detours:
        assert related(features[detour]) == [("related-work-zone", z) for z in zones]
    coordinates = [f["geometry"]["coordinates"] for f in feed["features"][:4]]
    assert coordinates == [
        [list(c) for c in KAISERRING],
        [list(c) for c in reversed(KAISERRING)],
        [list(c) for c in NECKARAU],
        [list(c) for c in reversed(NECKARAU)],
    ]
    assert feed["feed_info"]["data_sources"] == [
        {
            "data_source_id": str(utility.pk),
            "organization_name": "Stadtwerke",
            "contact_email": "sw@example.org",
            "update_date": work.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ]


def test_a_work_against_the_digitising_direction_keeps_its_uuid_and_a_single_event_names_nothing(stadtwerke):
    against = make_roadwork(stadtwerke, direction=Direction.BACKWARD, period=period(local(2027, 3, 1), 5))
    area = make_roadwork(stadtwerke, geometry=area_along(KAISERRING), period=period(local(2027, 3, 2), 5))
    _, feed = wzdx_document()
    assert [f["id"] for f in feed["features"]] == [str(against.pk), str(area.pk)]
    assert [related(f) for f in feed["features"]] == [[], []]
    assert "related_road_events" not in feed["features"][0]["properties"]["core_details"]
    assert feed["features"][1]["properties"]["core_details"]["direction"] == "unknown"
    assert feed["features"][1]["geometry"]["type"] == "LineString"


def test_detours_of_a_work_without_a_line_name_no_work_zone(stadtwerke):
    e, n = line(KAISERRING).coords[0]
    flat = Polygon(((e, n), (e + 10, n + 10), (e + 20, n + 20), (e, n)), srid=25832)
    work = make_roadwork(stadtwerke, geometry=flat)
    one = Detour.objects.create(roadwork=work, name="U1", geometry=line(LUISENRING))
    two = Detour.objects.create(roadwork=work, name="U2", geometry=line(NECKARAU))
    _, feed = wzdx_document()
    assert [f["id"] for f in feed["features"]] == [derived(work, f"detour-{one.pk}"), derived(work, f"detour-{two.pk}")]
    assert [related(f) for f in feed["features"]] == [[], []]


def test_data_sources_come_in_the_order_their_organisations_first_appear_with_their_newest_update():
    # Works are ordered by start: telekom's work starts first, so telekom is the first source.
    stadtwerke = Organisation.objects.create(name="Stadtwerke", kind=Organisation.Kind.UTILITY, email="")
    telekom = Organisation.objects.create(name="Telekom", kind=Organisation.Kind.CONTRACTOR, email="t@example.org")
    older = make_roadwork(stadtwerke, period=period(local(2027, 3, 2), 5))
    make_roadwork(telekom, period=period(local(2027, 3, 1), 5))
    newer = make_roadwork(stadtwerke, period=period(local(2027, 3, 3), 5))
    Roadwork.objects.filter(pk=older.pk).update(updated_at=datetime(2027, 1, 5, 8, 0, 0, 900000, tzinfo=UTC))
    Roadwork.objects.filter(pk=newer.pk).update(updated_at=datetime(2027, 1, 4, 8, 0, tzinfo=UTC))
    telekom_work_update = Roadwork.objects.get(organisation=telekom).updated_at.astimezone(UTC)
    _, feed = wzdx_document()
    assert feed["feed_info"]["data_sources"] == [
        {
            "data_source_id": str(telekom.pk),
            "organization_name": "Telekom",
            "contact_email": "t@example.org",
            "update_date": telekom_work_update.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        {
            "data_source_id": str(stadtwerke.pk),
            "organization_name": "Stadtwerke",
            "update_date": "2027-01-05T08:00:00Z",
        },
    ]


def test_incidents_without_an_organisation_share_the_publisher_s_source_in_order_of_first_appearance(police_org):
    now = timezone.now()
    newest = make_incident(kind=IncidentKind.BREAKDOWN, occurred_at=now - timedelta(minutes=1))
    make_incident(kind=IncidentKind.SPILL, organisation=police_org, occurred_at=now - timedelta(minutes=2))
    oldest = make_incident(kind=IncidentKind.HAZARD, occurred_at=now - timedelta(minutes=3))
    _, feed = tdx_document({"publisher": "Stadt Mannheim", "contact_email": "verkehr@example.org"})
    sources = feed["feed_info"]["data_sources"]
    assert [(s["data_source_id"], s["organization_name"]) for s in sources] == [
        ("publisher", "Stadt Mannheim"),
        (str(police_org.pk), "Polizeipräsidium Mannheim"),
    ]
    assert "contact_email" not in sources[0]  # the publisher's e-mail is feed_info's, not the source's
    newest_update = max(newest.updated_at, oldest.updated_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sources[0]["update_date"] == newest_update
    assert [f["properties"]["core_details"]["data_source_id"] for f in feed["features"]] == [
        "publisher",
        str(police_org.pk),
        "publisher",
    ]


@pytest.mark.parametrize(
    ("direction", "ids", "related_ids"),
    [
        (IncidentDirection.BOTH, ["self", "backward"], [["backward"], ["self"]]),
        (IncidentDirection.FORWARD, ["self"], [[]]),
        (IncidentDirection.BACKWARD, ["self"], [[]]),
        (IncidentDirection.UNKNOWN, ["self"], [[]]),
    ],
)
def test_an_incident_s_events_and_their_related_incidents(direction, ids, related_ids):
    incident = make_incident(kind=IncidentKind.OBSTRUCTION, affected_line=line(KAISERRING), direction=direction)
    names = {"self": str(incident.pk), "backward": derived(incident, "backward")}
    _, feed = tdx_document()
    assert [f["id"] for f in feed["features"]] == [names[i] for i in ids]
    assert [related(f) for f in feed["features"]] == [
        [("related-incident", names[i]) for i in others] for others in related_ids
    ]


@pytest.mark.parametrize("category", [1, 2, 3, 4, 5, 6])
def test_an_accident_of_every_category_is_a_crash_and_with_casualties_also_an_injury(category, official):
    crash = make_incident(kind=IncidentKind.ACCIDENT, status=IncidentStatus.CONFIRMED, confirmed_at=timezone.now())
    hurt = {"killed": 1} if category == 1 else {"seriously_injured": 1} if category == 2 else {}
    if category == 3:
        hurt = {"slightly_injured": 2}
    Accident.objects.create(
        incident=crash,
        location=crash.location,
        occurred_at=crash.occurred_at,
        category=category,
        kind=1,
        type=1,
        **hurt,
    )
    _, feed = tdx_document()
    assert official_errors(official, "tdx-incidents", feed) == []
    [event] = feed["features"]
    types = [
        (t["incident_category"], t["incident_type"], t["description"]) for t in event["properties"]["types_of_incident"]
    ]
    accident = label(IncidentKind.ACCIDENT)
    expected = [("crash", "crash", accident)] + ([("crash", "injury", accident)] if hurt else [])
    assert types == expected
    assert event["properties"]["is_start_date_verified"] is True


def test_postgresql_s_to_json_escapes_every_character_as_python_s_encoder_does():
    # Every control character (NUL cannot be in a PostgreSQL text), DEL, the line separators and non-characters.
    texts = [chr(code) for code in range(1, 0x20)] + ["\x7f", "\u2028", "\u2029", "\ufffe", "\uffff", '"', "\\", "/"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(to_json(t)::text ORDER BY n) FROM unnest(%s::text[]) WITH ORDINALITY AS x(t, n)", [texts]
        )
        [written] = cursor.fetchone()
    assert written == [ENCODE(text) for text in texts]
