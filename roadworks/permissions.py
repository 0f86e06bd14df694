"""Who may do what with a roadwork: the one place these rules live.

The permit workflow (issue 3) replaces the status rules here with its state machine.
"""

from __future__ import annotations

from accounts.models import User

from .models import Roadwork, RoadworkStatus

# Statuses an applicant may set itself; deciding is the authority's.
APPLICANT_SETTABLE_STATUSES = (RoadworkStatus.DRAFT, RoadworkStatus.SUBMITTED, RoadworkStatus.CANCELLED)
# Statuses in which an applicant may still change its application.
APPLICANT_EDITABLE_STATUSES = (
    RoadworkStatus.DRAFT,
    RoadworkStatus.SUBMITTED,
    RoadworkStatus.MODIFICATION_REQUESTED,
)


def can_create_roadwork(user: User) -> bool:
    return user.is_authenticated and (user.is_authority or user.is_applicant)


def can_edit_roadwork(user: User, roadwork: Roadwork) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_authority:
        return True
    return (
        user.is_applicant
        and roadwork.organisation_id == user.organisation_id
        and roadwork.status in APPLICANT_EDITABLE_STATUSES
    )


def can_set_status(user: User, status: str) -> bool:
    return user.is_authority or (user.is_applicant and status in APPLICANT_SETTABLE_STATUSES)


def can_choose_organisation(user: User) -> bool:
    """Only the authority records works for another organisation; applicants always act for their own."""
    return user.is_authority
