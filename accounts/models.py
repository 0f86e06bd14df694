"""Users, their organisation and their role: the basis of every visibility rule."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Organisation(models.Model):
    class Kind(models.TextChoices):
        AUTHORITY = "authority", _("Road traffic authority")
        UTILITY = "utility", _("Utility")
        CONTRACTOR = "contractor", _("Contractor")
        CITY_DEPARTMENT = "city_department", _("City department")
        POLICE = "police", _("Police")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices, default=Kind.OTHER)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=64, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    AUTHORITY = "authority", _("Permit authority")
    APPLICANT = "applicant", _("Applicant")
    POLICE = "police", _("Police")
    CONTROL_ROOM = "control_room", _("Traffic control room")
    NONE = "", _("No role")


class User(AbstractUser):
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, blank=True, default=Role.NONE)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    # Role predicates: the single place that says what a role means.
    @property
    def is_authority(self) -> bool:
        return self.is_active and (self.role == Role.AUTHORITY or self.is_superuser)

    @property
    def is_applicant(self) -> bool:
        return self.is_active and self.role == Role.APPLICANT and self.organisation_id is not None

    @property
    def is_police(self) -> bool:
        return self.is_active and self.role == Role.POLICE

    @property
    def is_control_room(self) -> bool:
        return self.is_active and self.role == Role.CONTROL_ROOM

    @property
    def is_staff_viewer(self) -> bool:
        """Sees every roadwork and incident, including unpublished ones."""
        return self.is_authority or self.is_police or self.is_control_room
