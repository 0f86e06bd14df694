"""Errors the services raise; the API edge turns them into 4xx answers."""

from django.utils.translation import gettext_lazy as _

MSG_STALE_VERSION = _(
    "This record was changed by someone else in the meantime (your version {given}, current version {current}). "
    "Load it again and repeat your change."
)
MSG_VERSION_REQUIRED = _(
    "Send the version you edited, as an If-Match header or as 'version', so that no change is overwritten unseen."
)


class ConcurrentEditError(Exception):
    def __init__(self, *, given: int, current: int) -> None:
        self.given = given
        self.current = current
        super().__init__(str(MSG_STALE_VERSION).format(given=given, current=current))
