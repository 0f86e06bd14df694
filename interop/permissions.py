"""Who may see external items: staff see every source's; everyone else only those of sources marked public."""

from __future__ import annotations

from accounts.models import User


def can_see_all_external_items(user: User) -> bool:
    return user.is_authenticated and user.is_staff_viewer


def can_see_source_health(user: User) -> bool:
    """The /quellen/ page: the staff who rely on the outside data (authority, police, control room)."""
    return user.is_authenticated and user.is_staff_viewer
