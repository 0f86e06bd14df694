from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrafficConfig(AppConfig):
    name = "traffic"
    verbose_name = _("Traffic incidents")

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
