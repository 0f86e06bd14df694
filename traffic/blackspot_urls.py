"""The accident commission's pages, mounted under /unfallkommission/ (German paths, the commission's own words)."""

from django.urls import path

from . import blackspot_views as views

app_name = "blackspots"
urlpatterns = [
    path("", views.commission_list, name="list"),
    path(views.CSV_FILENAME, views.commission_csv, name="csv"),
]
