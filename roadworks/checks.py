"""System checks for roadworks settings: a bad rule parameter shows at start-up (manage.py check, migrate,
runserver, the workers), not first when a rule runs."""

from __future__ import annotations

from django.core import checks


@checks.register()
def check_conflict_rules(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from .rules import check_configuration

    return [
        checks.Error(problem, hint="See AUMAN_CONFLICT_RULES in README.md.", id="roadworks.E001")
        for problem in check_configuration()
    ]
