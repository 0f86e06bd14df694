"""Who may log and change incidents: the one place these rules live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

from accounts.models import Role, User

if TYPE_CHECKING:
    from .workflow import Transition


def can_log_incident(user: User) -> bool:
    return user.is_authenticated and (user.is_police or user.is_control_room or user.is_authority)


def can_edit_incident(user: User) -> bool:
    return can_log_incident(user)


def can_use_police_pages(user: User) -> bool:
    """The quick-entry page and the list of active incidents are for those who log and clear incidents."""
    return can_log_incident(user)


def _has_role(user: User, role: str) -> bool:
    # The User predicates say what a role means (is_authority includes superusers, all need an active account).
    return {
        Role.POLICE: user.is_police,
        Role.CONTROL_ROOM: user.is_control_room,
        Role.AUTHORITY: user.is_authority,
    }.get(role, False)


def can_take_transition(user: User, transition: Transition) -> bool:
    """Which roles may take a step is declared with the step, in traffic.workflow."""
    return can_log_incident(user) and any(_has_role(user, role) for role in transition.roles)


def can_see_incident_history(user: User) -> bool:
    """The history names the staff member behind each step: for staff, never for the public."""
    return user.is_authenticated and user.is_staff_viewer


def can_use_accident_commission_pages(user: User) -> bool:
    """The accident commission's black-spot list and CSV: the authority, the police and the control room, who sit
    on the commission."""
    return user.is_authenticated and user.is_staff_viewer


def can_view_black_spots(user: User) -> bool:
    """Black spots in the API and on the map: the commission, or everyone where the city publishes them
    (AUMAN_BLACKSPOTS_PUBLIC)."""
    return settings.AUMAN_BLACKSPOTS_PUBLIC or can_use_accident_commission_pages(user)


def can_see_accident_details(user: User) -> bool:
    """The classification and casualty counts of a logged accident: staff only, never the public."""
    return user.is_authenticated and user.is_staff_viewer
