"""System checks for traffic settings: a bad black-spot rule set shows at start-up (manage.py check, runserver,
migrate), not first in the night when the computation runs."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register()
def check_blackspot_rules(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from .blackspots import blackspot_rules

    try:
        blackspot_rules()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="See AUMAN_BLACKSPOT_RULES in README.md.", id="traffic.E001")]
    return []
