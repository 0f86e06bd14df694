from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from roadworks.api import ConflictViewSet, RoadworkViewSet
from traffic.api import IncidentViewSet

from .health import healthz

router = DefaultRouter()
router.register("roadworks", RoadworkViewSet, basename="roadwork")
router.register("incidents", IncidentViewSet, basename="incident")
router.register("conflicts", ConflictViewSet, basename="conflict")

urlpatterns = [
    path("", include("maps.urls")),
    path("feeds/", include("traffic.feeds.urls")),
    path("api/v1/", include((router.urls, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
