"""Small database expressions shared by the apps."""

from django.contrib.postgres.fields import DateTimeRangeField
from django.db.models import Func


class TsTzRange(Func):
    """PostgreSQL tstzrange(lower, upper): a NULL upper bound means open-ended."""

    function = "TSTZRANGE"
    output_field = DateTimeRangeField()
