"""The query parameters every feed takes: bbox, updated_since and active_on, parsed once and turned into SQL.

The parameters mean what they mean in the REST API (auman/filters.py), so a client can switch between the two:

- ``bbox=min_lon,min_lat,max_lon,max_lat`` (WGS84): items whose geometry touches the box;
- ``updated_since=<ISO 8601>``: items changed at or after that moment (incremental polling);
- ``active_on=<date or date-time>``: items in effect on that local day or at that moment. It also widens the
  feed to works that have ended since (completed), so a consumer can look back as well as ahead; without it
  a feed shows what is on the road now and what is coming.

Each feed writes the same SQL fragment with its own table alias, and its fingerprint uses the same fragment,
so the fingerprint always covers exactly the rows the bytes are built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import QueryDict
from rest_framework import serializers

from auman.api import BoundedDateTimeField, parse_date_or_datetime
from auman.filters import parse_bbox


@dataclass(frozen=True)
class FeedFilters:
    bbox: tuple[float, float, float, float] | None = None
    updated_since: datetime | None = None
    # [active_from, active_to): a local day; or active_from == active_to: one instant.
    active_from: datetime | None = None
    active_to: datetime | None = None

    @property
    def active_on(self) -> bool:
        return self.active_from is not None

    def variant(self) -> dict[str, str]:
        """What the bytes depend on, for the cache key."""
        values = {
            "bbox": self.bbox,
            "updated_since": self.updated_since,
            "active_from": self.active_from,
            "active_to": self.active_to,
        }
        return {key: str(value) for key, value in values.items() if value is not None}

    def sql(self, alias: str, *, geometry: str = "geometry", period: str = "period") -> tuple[str, dict[str, Any]]:
        """`AND ...` conditions on the table `alias` and their named parameters; ("", {}) without filters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.bbox is not None:
            clauses.append(
                f"ST_Intersects({alias}.{geometry}, ST_Transform(ST_MakeEnvelope(%(f_xmin)s, %(f_ymin)s, %(f_xmax)s,"
                f" %(f_ymax)s, 4326), %(f_srid)s))"
            )
            params.update(zip(("f_xmin", "f_ymin", "f_xmax", "f_ymax"), self.bbox, strict=True))
            params["f_srid"] = settings.AUMAN_SRID
        if self.updated_since is not None:
            clauses.append(f"{alias}.updated_at >= %(f_updated_since)s")
            params["f_updated_since"] = self.updated_since
        if self.active_from is not None:
            # An instant is a one-point range; && on it is "contains", and both forms can use the GiST index.
            bounds = "[]" if self.active_from == self.active_to else "[)"
            clauses.append(f"{alias}.{period} && tstzrange(%(f_active_from)s, %(f_active_to)s, '{bounds}')")
            params.update(f_active_from=self.active_from, f_active_to=self.active_to)
        return "".join(f" AND {clause}" for clause in clauses), params


def parse_feed_filters(query: QueryDict) -> tuple[FeedFilters, dict[str, list[str]]]:
    """The filters from a request's query string, and the errors per parameter (empty when all are good)."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "bbox" in query:
        try:
            values["bbox"] = parse_bbox(query["bbox"]).extent
        except ValidationError as exc:
            errors["bbox"] = exc.messages
    if "updated_since" in query:
        try:
            values["updated_since"] = BoundedDateTimeField().to_internal_value(query["updated_since"])
        except serializers.ValidationError as exc:
            errors["updated_since"] = [str(message) for message in exc.detail]
    if "active_on" in query:
        try:
            values["active_from"], values["active_to"] = parse_date_or_datetime(query["active_on"])
        except serializers.ValidationError as exc:
            errors["active_on"] = [str(message) for message in exc.detail]
    return FeedFilters(**values), errors
