"""Feed URLs, included at /feeds/. Each path names its format and version, so a new version can sit beside the old."""

from django.urls import path

from . import datex2, geojson, tdx, views, waze, wzdx

app_name = "feeds"

urlpatterns = [
    path("", views.feed_index, name="index"),
    path("tdx/v1.1/incidents.geojson", tdx.incident_feed, name="tdx-incidents"),
    path("geojson/public.geojson", geojson.public_feed, name="geojson-public"),
    path("wzdx/v4.2/workzones.geojson", wzdx.workzone_feed, name="wzdx-workzones"),
    path("waze/cifs.xml", waze.cifs_xml_feed, name="waze-cifs-xml"),
    path("waze/cifs.json", waze.cifs_json_feed, name="waze-cifs-json"),
    path("datex2/v3/situations.xml", datex2.situation_feed, name="datex2-situations"),
]
