from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrafficConfig(AppConfig):
    name = "traffic"
    verbose_name = _("Traffic incidents")

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .feeds import datex2, geojson, tdx, waze, wzdx  # noqa: F401 - each registers its feeds (registry.py)
