from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from gisio import urls as gisio_urls
from interop.api import ExternalItemViewSet
from maps.api import StreetNearestView, StreetSearchView
from roadworks.api import ConflictViewSet, RoadworkViewSet
from roadworks.layer_api import ConflictRuleViewSet, CorridorViewSet, EventViewSet, MoratoriumViewSet
from traffic.api import AccidentCodesViewSet, IncidentViewSet
from traffic.blackspot_api import BlackSpotViewSet

from .health import healthz

router = DefaultRouter()
router.register("roadworks", RoadworkViewSet, basename="roadwork")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("accident-codes", AccidentCodesViewSet, basename="accident-codes")
router.register("conflicts", ConflictViewSet, basename="conflict")
router.register("black-spots", BlackSpotViewSet, basename="black-spot")
router.register("corridors", CorridorViewSet, basename="corridor")
router.register("moratoria", MoratoriumViewSet, basename="moratorium")
router.register("events", EventViewSet, basename="event")
router.register("conflict-rules", ConflictRuleViewSet, basename="conflict-rule")
router.register("external-items", ExternalItemViewSet, basename="external-item")

urlpatterns = [
    path("", include("maps.urls")),
    path("feeds/", include("traffic.feeds.urls")),
    path("polizei/", include("traffic.urls")),
    path("unfallkommission/", include("traffic.blackspot_urls")),
    path("quellen/", include("interop.urls")),
    path("", include("roadworks.urls")),
    path("api/v1/streets/", StreetSearchView.as_view(), name="streets-search"),
    path("api/v1/streets/nearest/", StreetNearestView.as_view(), name="streets-nearest"),
    # Before the router: "roadworks/import/" would otherwise be read as a roadwork's id.
    path("api/v1/", include((gisio_urls.api_urlpatterns, "gisio"), namespace="gisio-api")),
    path("api/v1/", include((router.urls, "api"))),
    path("ogcapi/", include((gisio_urls.ogcapi_urlpatterns, "gisio"), namespace="gisio-ogc")),
    path("gis/", include((gisio_urls.page_urlpatterns, "gisio"), namespace="gisio")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file of its own: no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html"),
        name="api-docs",
    ),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
