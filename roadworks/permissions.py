"""Who may do what with a roadwork: the one place these rules live.

Status changes are the workflow's (workflow.py says who may take which step); this module says who may
create, edit, read the history and files, report progress and use the authority's lists.

Editing by status: the authority may correct any work at any time. An applicant edits its own
organisation's application while it is a draft or a modification is requested. Once submitted, the
authority examines a fixed application: to change it, the applicant cancels it, or the authority
requests a modification (which gives it back). After the decision the permit stands as issued.
"""

from __future__ import annotations

from accounts.models import User

from .models import Roadwork, RoadworkStatus

# Statuses in which an applicant may still change its application (and add files to it).
APPLICANT_EDITABLE_STATUSES = (RoadworkStatus.DRAFT, RoadworkStatus.MODIFICATION_REQUESTED)


def is_own_organisation(user: User | None, roadwork: Roadwork) -> bool:
    """An applicant of the organisation the works are for."""
    return (
        user is not None
        and user.is_authenticated
        and user.is_applicant
        and roadwork.organisation_id == user.organisation_id
    )


def can_create_roadwork(user: User) -> bool:
    return user.is_authenticated and (user.is_authority or user.is_applicant)


def can_edit_roadwork(user: User, roadwork: Roadwork) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_authority:
        return True
    return is_own_organisation(user, roadwork) and roadwork.status in APPLICANT_EDITABLE_STATUSES


def can_list_applications(user: User | None) -> bool:
    """The list of applications: applicants see their organisation's, the authority everybody's."""
    return user is not None and user.is_authenticated and (user.is_authority or user.is_applicant)


def can_choose_organisation(user: User) -> bool:
    """Only the authority records works for another organisation; applicants always act for their own."""
    return user.is_authority


def can_see_internals(user: User | None, roadwork: Roadwork) -> bool:
    """History, attachments and contact details: the authority, police and control room, and the applicant."""
    if user is None or not user.is_authenticated:
        return False
    return user.is_staff_viewer or is_own_organisation(user, roadwork)


def can_add_attachment(user: User, roadwork: Roadwork) -> bool:
    return can_edit_roadwork(user, roadwork)


def can_report_progress(user: User, roadwork: Roadwork) -> bool:
    """The actual start and end: the applicant on site, or the authority on its behalf."""
    return user.is_authenticated and (user.is_authority or is_own_organisation(user, roadwork))


def can_list_overdue(user: User | None) -> bool:
    return user is not None and user.is_authenticated and user.is_authority


def can_manage_layers(user: User | None) -> bool:
    """Corridors, moratorium areas, events and network layers are the permit authority's to record."""
    return user is not None and user.is_authenticated and user.is_authority


def can_view_layers(user: User | None) -> bool:
    """Staff and applicants read them (applicants plan around moratoria, corridors and events); the public and
    users without a role do not."""
    return user is not None and user.is_authenticated and (user.is_staff_viewer or user.is_applicant)
