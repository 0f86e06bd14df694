from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoadworksConfig(AppConfig):
    name = "roadworks"
    verbose_name = _("Roadworks")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from auman.trigger_helpers import install_after_migrate

        from . import checks  # noqa: F401 - registers the system checks

        # After every migrate: pgtrigger writes its slow helper again whenever a trigger is installed.
        post_migrate.connect(install_after_migrate, sender=self, dispatch_uid="auman-trigger-helpers")
