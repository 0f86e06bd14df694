from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoadworksConfig(AppConfig):
    name = "roadworks"
    verbose_name = _("Roadworks")

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
