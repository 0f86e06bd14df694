"""Mounted under /quellen/ (German path: the staff's own word for the sources)."""

from django.urls import path

from . import views

app_name = "interop"
urlpatterns = [path("", views.source_list, name="sources")]
