from django.urls import path

from . import api, subscriptions, tile_views, views

app_name = "maps"
urlpatterns = [
    path("", views.index, name="index"),
    path("map/features.geojson", views.features, name="features"),
    path("tiles/<str:layer>/<int:z>/<int:x>/<int:y>.mvt", tile_views.tile, name="tile"),
    path("api/v1/districts/", api.DistrictListView.as_view(), name="districts"),
    path("abonnieren/baustellen.ics", subscriptions.roadworks_calendar, name="roadworks-calendar"),
    path("abonnieren/ereignisse.atom", subscriptions.IncidentsAtomFeed(), name="incidents-atom"),
]
