"""Who may log and change incidents: the one place these rules live."""

from accounts.models import User


def can_log_incident(user: User) -> bool:
    return user.is_authenticated and (user.is_police or user.is_control_room or user.is_authority)


def can_edit_incident(user: User) -> bool:
    return can_log_incident(user)
