from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GisioConfig(AppConfig):
    name = "gisio"
    verbose_name = _("GIS import and export")
