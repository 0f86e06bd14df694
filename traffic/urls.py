"""Police pages, mounted under /polizei/ (German paths: the officers' own words)."""

from django.urls import path

from . import views

app_name = "traffic"
urlpatterns = [
    path("", views.incident_list, name="incident-list"),
    path("neu/", views.quick_entry, name="quick-entry"),
    path("<uuid:pk>/verlauf/", views.incident_changes, name="incident-changes"),
]
