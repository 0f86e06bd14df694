"""Feed URLs, included at /feeds/. Each path names its format and version, so a new version can sit beside the old."""

from django.urls import path

from . import wzdx

app_name = "feeds"

urlpatterns = [
    path("wzdx/v4.2/workzones.geojson", wzdx.workzone_feed, name="wzdx-workzones"),
]
