"""The list of applications (/baustellen/): applicants see their organisation's, the authority everybody's, with
filters and the number of unsettled conflicts; refusals show the reason on the 403 page."""

from __future__ import annotations

import html

import pytest
from django.contrib.gis.geos import MultiPolygon
from django.test import Client

from roadworks.models import Conflict, ConflictStatus, RoadworkStatus, Severity
from roadworks.views import MSG_APPLICATIONS_ONLY
from tests.conftest import make_roadwork

pytestmark = pytest.mark.django_db

APPLICATIONS = "/baustellen/"


def web(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def shown(response) -> set[str]:
    return {work.reference for work in response.context["page"]}


@pytest.fixture
def works(stadtwerke, telekom):
    return {
        "SW-DRAFT": make_roadwork(
            stadtwerke,
            reference="SW-DRAFT",
            title="Gasleitung",
            status=RoadworkStatus.DRAFT,
            street_names=["Neckarauer Straße"],
        ),
        "SW-SUB": make_roadwork(
            stadtwerke,
            reference="SW-SUB",
            title="Fernwärme",
            status=RoadworkStatus.SUBMITTED,
            street_names=["Kaiserring"],
        ),
        "TK-SUB": make_roadwork(telekom, reference="TK-SUB", title="Glasfaser", status=RoadworkStatus.SUBMITTED),
    }


def test_an_applicant_sees_only_its_organisations_applications(alice, works):
    response = web(alice).get(APPLICATIONS)
    assert response.status_code == 200
    assert shown(response) == {"SW-DRAFT", "SW-SUB"}
    assert "Anträge von Stadtwerke" in response.content.decode()


def test_the_authority_sees_every_organisations_applications(bob, works):
    response = web(bob).get(APPLICATIONS)
    assert shown(response) == {"SW-DRAFT", "SW-SUB", "TK-SUB"}


def test_the_list_filters_by_status_and_by_reference_title_or_street(alice, works):
    assert shown(web(alice).get(APPLICATIONS, {"status": "draft"})) == {"SW-DRAFT"}
    assert shown(web(alice).get(APPLICATIONS, {"suche": "gasl"})) == {"SW-DRAFT"}
    # Folded like the street search: "Kaiserring" matches "kaiser ring".
    assert shown(web(alice).get(APPLICATIONS, {"suche": "Kaiser Ring"})) == {"SW-SUB"}
    assert shown(web(alice).get(APPLICATIONS, {"status": "no-such-status"})) == {"SW-DRAFT", "SW-SUB"}


def test_the_list_counts_unsettled_conflicts_only(alice, works):
    # A conflict stores its pair in id order (constraint conflict_pair_ordered).
    a, b = sorted([works["SW-SUB"], works["TK-SUB"]], key=lambda work: str(work.pk))
    place = MultiPolygon(a.geometry.buffer(5), srid=a.geometry.srid)
    for rule, status in (
        ("C1", ConflictStatus.OPEN),
        ("C2", ConflictStatus.ACKNOWLEDGED),
        ("C10", ConflictStatus.RESOLVED),
    ):
        Conflict.objects.create(
            rule=rule,
            roadwork_a=a,
            roadwork_b=b,
            status=status,
            severity=Severity.WARNING,
            overlap_period=a.period,
            place=place,
        )
    counts = {work.reference: work.unsettled_conflicts or 0 for work in web(alice).get(APPLICATIONS).context["page"]}
    assert counts == {"SW-DRAFT": 0, "SW-SUB": 2}  # the list counts both sides: A or B


def test_police_and_the_public_get_no_list_and_the_403_page_says_why(carol, works):
    response = web(carol).get(APPLICATIONS)
    assert response.status_code == 403
    assert html.escape(str(MSG_APPLICATIONS_ONLY)) in response.content.decode()
    assert web().get(APPLICATIONS).status_code == 302  # to the login page


def test_the_list_links_to_the_new_application_and_the_bulk_import(alice):
    body = web(alice).get(APPLICATIONS).content.decode()
    assert 'href="/baustellen/neu/"' in body and 'href="/gis/import/"' in body


def test_the_header_links_to_the_list_for_applicants(alice, carol):
    assert 'href="/baustellen/"' in web(alice).get("/").content.decode()
    assert 'href="/baustellen/"' not in web(carol).get("/").content.decode()


def test_an_unknown_address_gets_the_german_404_page():
    response = web().get("/gibt-es-nicht/")
    assert response.status_code == 404
    assert "Nicht gefunden" in response.content.decode()
