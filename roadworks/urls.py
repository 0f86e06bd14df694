"""The roadworks pages, mounted at the site root (German paths: the authority's and applicants' own words)."""

from django.urls import path

from . import views

app_name = "roadworks"
urlpatterns = [
    path("baustellen/", views.application_list, name="applications"),
    path("baustellen/neu/", views.roadwork_create, name="create"),
    # Before <uuid:pk>/: "zeitplan" is no UUID anyway, but the order keeps the intent plain.
    path("baustellen/zeitplan/", views.timeline, name="timeline"),
    path("baustellen/<uuid:pk>/", views.roadwork_detail, name="detail"),
    path("baustellen/<uuid:pk>/bearbeiten/", views.roadwork_edit, name="edit"),
    path("baustellen/<uuid:pk>/schritt/", views.roadwork_step, name="step"),
    path("baustellen/<uuid:pk>/anhaenge/", views.roadwork_attachment_upload, name="attachments"),
    path("koordination/", views.coordination_dashboard, name="dashboard"),
    path("konflikte/<int:pk>/", views.conflict_detail, name="conflict"),
    path("konflikte/<int:pk>/status/", views.conflict_status, name="conflict-status"),
]
