"""manage.py import_roadworks FILE --organisation X [--user NAME] [--dry-run]: a utility's plan, all or nothing."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import translation

from accounts.models import Organisation, Role, User
from gisio.services import ImportFileError, roadworks_import

MSG_NO_ORGANISATION = "No organisation with this id or name: {value}"
MSG_USER_NEEDED = "Name the user the works are recorded by (--user): an authority user or an applicant of {org}."
MSG_NO_USER = "No active user named {value}."
MSG_REJECTED = "Nothing was imported."


class Command(BaseCommand):
    help = (
        "Import roadworks from a GeoJSON or GeoPackage file for one organisation; every feature is checked as in "
        "the API, and if one is rejected nothing is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--organisation", required=True, help="Organisation id or exact name.")
        parser.add_argument(
            "--user", help="Recorded as the creator; default: the only active authority user, if there is one."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check every feature, import nothing.")

    def handle(self, *args, **options) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        organisation = self._organisation(options["organisation"])
        user = self._user(options["user"], organisation)
        # The report is for people here: in the site's language (German), as the pages show it.
        with translation.override(settings.LANGUAGE_CODE):
            try:
                report = roadworks_import(
                    user=user, data=path.read_bytes(), organisation=organisation, dry_run=options["dry_run"]
                )
            except (ImportFileError, PermissionDenied) as exc:
                raise CommandError(str(exc)) from exc
            for rejection in report.rejected:
                self.stdout.write(f"#{rejection.index} ({rejection.feature_id}):")
                for error in rejection.errors:
                    self.stdout.write(f"  - {error}")
            for item in report.created if report.imported else []:
                self.stdout.write(f"{item['reference']} {item['id']}")
            summary = report.summary()
        if not report.ok:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))

    def _organisation(self, value: str) -> Organisation:
        query = Q(name=value) | (Q(pk=int(value)) if value.isdigit() else Q())
        organisation = Organisation.objects.filter(query).first()
        if organisation is None:
            raise CommandError(MSG_NO_ORGANISATION.format(value=value))
        return organisation

    def _user(self, value: str | None, organisation: Organisation) -> User:
        if value:
            user = User.objects.filter(username=value, is_active=True).first()
            if user is None:
                raise CommandError(MSG_NO_USER.format(value=value))
            return user
        authorities = list(User.objects.filter(is_active=True, role=Role.AUTHORITY)[:2])
        if len(authorities) != 1:
            raise CommandError(MSG_USER_NEEDED.format(org=organisation.name))
        return authorities[0]
