"""python manage.py demo_logins: the demo accounts that load_demo creates, for `make run` to show.

A password is printed only while it is still the documented demo password; one that
someone changed is never shown (and cannot be: only its hash is stored).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from accounts.models import User
from roadworks.management.commands.load_demo import DEMO_USERS, demo_password

CHANGED = "(changed)"
MISSING = "-"
HINT_NO_DEMO_USERS = "No demo logins yet. Load them with: python manage.py load_demo"


def demo_login_rows() -> list[tuple[str, str, str, str, str]]:
    """(username, role, organisation, password or '(changed)', API token) for each demo user that exists."""
    users = {
        user.username: user
        for user in User.objects.select_related("organisation").filter(username__in=[s.username for s in DEMO_USERS])
    }
    tokens = dict(Token.objects.filter(user__in=users.values()).values_list("user_id", "key"))
    rows = []
    for spec in DEMO_USERS:
        user = users.get(spec.username)
        if user is None:
            continue
        password = demo_password(user.username)
        rows.append(
            (
                user.username,
                str(user.get_role_display()),
                str(user.organisation or ""),
                password if user.check_password(password) else CHANGED,
                tokens.get(user.pk, MISSING),
            )
        )
    return rows


class Command(BaseCommand):
    help = "Print the demo logins (username, role, organisation, password while unchanged, API token)."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = demo_login_rows()
        if not rows:
            self.stdout.write(HINT_NO_DEMO_USERS)
            return
        header = ("username", "role", "organisation", "password", "API token")
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        line = "  ".join(f"{{:<{width}}}" for width in widths)
        self.stdout.write("Demo logins (sign in at /accounts/login/; API: Authorization: Token <API token>):")
        self.stdout.write(line.format(*header).rstrip())
        self.stdout.write(line.format(*("-" * width for width in widths)).rstrip())
        for row in rows:
            self.stdout.write(line.format(*row).rstrip())
