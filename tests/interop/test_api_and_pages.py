"""GET /api/v1/external-items/ (who sees what, WGS84, filters, read-only), the staff page /quellen/ and the admin."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils.html import escape

from accounts.models import User
from interop import services
from interop.models import ExternalSource
from interop.parsers.wzdx import MSG_NOT_WZDX
from tests.conftest import NECKARAU, features_of
from tests.interop.conftest import wzdx_feature, wzdx_feed

pytestmark = pytest.mark.django_db

URL = "/api/v1/external-items/"


@pytest.fixture
def sources(file_source):
    """A public source (Heidelberg: item A) and a staff-only one (Autobahn: items B on Kaiserring, C in Neckarau)."""
    public = file_source(wzdx_feed(wzdx_feature("A")), name="Heidelberg", public=True)
    staff_only = file_source(
        wzdx_feed(
            wzdx_feature("B"),
            wzdx_feature("C", coords=NECKARAU, start_date="2027-05-01T00:00:00Z", end_date="2027-05-10T00:00:00Z"),
        ),
        name="Autobahn",
    )
    for source in (public, staff_only):
        services.source_poll(source_id=source.pk, force=True)
    return public, staff_only


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(f["properties"]["source_item_id"] for f in features_of(response))


def test_staff_see_every_sources_items(api, bob, carol, sources):
    assert ids(api(bob).get(URL)) == ["A", "B", "C"]
    assert ids(api(carol).get(URL)) == ["A", "B", "C"]


def test_everyone_else_sees_only_the_items_of_public_sources(api, alice, dave, sources):
    assert ids(api(None).get(URL)) == ["A"]
    assert ids(api(dave).get(URL)) == ["A"]
    assert ids(api(alice).get(URL)) == ["A"]


def test_items_of_a_disabled_source_are_not_shown(api, bob, sources):
    ExternalSource.objects.filter(name="Autobahn").update(enabled=False)
    assert ids(api(bob).get(URL)) == ["A"]


def test_items_are_geojson_features_in_wgs84(api, bob, sources):
    response = api(bob).get(URL, {"source": "Heidelberg"})
    (feature,) = features_of(response)
    assert feature["geometry"]["type"] == "LineString"
    lon, lat = feature["geometry"]["coordinates"][0]
    assert (round(lon, 5), round(lat, 5)) == (8.47405, 49.48405)
    props = feature["properties"]
    assert props["source"] == "Heidelberg" and props["source_format"] == "wzdx"
    assert props["kind"] == "roadworks" and props["restriction"] == "lane_closure"
    assert props["period"] == {"lower": "2027-03-01T07:00:00+01:00", "upper": "2027-03-20T17:00:00+01:00"}


def test_items_filter_by_bbox_active_on_and_source(api, bob, sources):
    assert ids(api(bob).get(URL, {"bbox": "8.47,49.48,8.48,49.49"})) == ["A", "B"]
    assert ids(api(bob).get(URL, {"active_on": "2027-05-05"})) == ["C"]
    assert ids(api(bob).get(URL, {"source": "Autobahn"})) == ["B", "C"]
    assert api(bob).get(URL, {"bbox": "8.48,49.48"}).status_code == 400


def test_the_layer_is_read_only(api, bob, sources):
    item = features_of(api(bob).get(URL))[0]
    assert api(bob).post(URL, item, format="json").status_code == 405
    assert api(bob).put(f"{URL}{item['id']}/", item, format="json").status_code == 405
    assert api(bob).delete(f"{URL}{item['id']}/").status_code == 405


def test_a_staff_only_item_is_not_found_for_the_public(api, sources):
    hidden = features_of(api(None).get(URL))
    assert [f["properties"]["source"] for f in hidden] == ["Heidelberg"]
    from interop.models import ExternalItem

    staff_item = ExternalItem.objects.get(source_item_id="B")
    assert api(None).get(f"{URL}{staff_item.pk}/").status_code == 404


# --- /quellen/ and the admin ----------------------------------------------------------------------------------------


def test_the_sources_page_shows_each_sources_health(client, bob, sources, file_source):
    broken = file_source(b"kaputt", name="Kaputt")
    services.source_poll(source_id=broken.pk, force=True)
    client.force_login(bob)
    response = client.get(reverse("interop:sources"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-source="Autobahn"' in page and 'data-source="Kaputt"' in page
    assert escape(str(MSG_NOT_WZDX)) in page  # the error
    rows = {source.name: source for source in response.context["sources"]}
    assert rows["Autobahn"].item_count == 2 and rows["Autobahn"].healthy
    assert not rows["Kaputt"].healthy


def test_the_sources_page_is_for_staff_only(client, alice, dave):
    assert client.get(reverse("interop:sources")).status_code == 302  # to the login
    client.force_login(dave)
    assert client.get(reverse("interop:sources")).status_code == 403
    client.force_login(alice)
    assert client.get(reverse("interop:sources")).status_code == 403


def test_the_admin_lists_sources_with_their_health(client, sources):
    admin = User.objects.create_superuser("root", password="pw-root-1")
    client.force_login(admin)
    response = client.get(reverse("admin:interop_externalsource_changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Heidelberg" in page and "Autobahn" in page
    source = ExternalSource.objects.get(name="Autobahn")
    change = client.get(reverse("admin:interop_externalsource_change", args=[source.pk]))
    assert change.status_code == 200


def test_the_admin_refuses_a_source_with_both_url_and_file(client, db):
    admin = User.objects.create_superuser("root", password="pw-root-1")
    client.force_login(admin)
    response = client.post(
        reverse("admin:interop_externalsource_add"),
        {
            "name": "Doppelt",
            "format": "wzdx",
            "url": "https://example.org/feed",
            "file_path": "/tmp/feed.json",
            "poll_interval": "00:05:00",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    from interop.models import MSG_URL_OR_PATH

    assert str(MSG_URL_OR_PATH) in response.content.decode()
    assert not ExternalSource.objects.exists()
