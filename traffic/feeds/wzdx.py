"""WZDx 4.2 WorkZoneFeed: approved and running roadworks as GeoJSON road events.

Specification: https://github.com/usdot-jpo-ode/wzdx (v4.2); schema in ../shared/data/schemas/wzdx/.
The module has the shape every feed has: a selector that fetches rows in one PostGIS query
(``workzone_rows``), a fingerprint of those rows (``workzone_fingerprint``), a pure
``build(rows, *, now, feed_info) -> bytes`` and the view ``workzone_feed``.

Choices the specification leaves to the producer, made here once:

- Geometry. WZDx 4.2 allows only LineString (or MultiPoint for bare start and end points), with
  coordinates in the direction of travel. Touching parts of a MultiLineString are merged; parts that
  stay apart become road events of their own, linked with ``related_road_events``. A polygon becomes
  the centre line of its minimum rotated rectangle along the long side: for the usual polygon, a
  strip along a carriageway, that runs down the middle of the road from one end of the works to the
  other, which is what consumers match to their road network. (The ring itself would go round the
  block and back; the longest vertex-to-vertex line would run corner to corner, off-centre.)
- Direction. German streets have no signed direction (no "northbound"), so a work on one side is
  ``undefined`` with the coordinates in the affected direction of travel (reversed for "backward").
  Works on both sides are one road event with ``unknown``; WZDx prefers one road event per direction,
  and splitting them is left to a later issue. Polygons have no digitising direction: ``unknown``.
- Verification. Times come from the permit and lines are drawn on a map, not measured in the field,
  so every ``is_*_verified`` is false and ``location_method`` is ``unknown``.
- Units. WZDx has centimetres and kilograms but no metres or tonnes: widths and heights are sent in
  centimetres, weights in kilograms.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.views.decorators.http import require_safe
from rest_framework import serializers

from auman.api import BoundedDateTimeField
from auman.filters import parse_bbox
from roadworks.models import Direction, RoadworkStatus, TrafficManagement, WorkKind

from .http import bad_request, serve_feed

WZDX_VERSION = "4.2"
CONTENT_TYPE = "application/geo+json"
FEED_NAME = "wzdx-4.2-workzones"

# Works that are on the road or will be. Completed, cancelled and revoked works have left the road;
# drafts, submissions and refusals were never public.
FEED_STATUSES = (RoadworkStatus.APPROVED, RoadworkStatus.IN_PROGRESS)
# A work whose end passed less than this long ago stays in the feed, so a consumer that polls
# rarely still sees its final end date instead of having it vanish unexplained.
ENDED_GRACE = timedelta(days=1)

VEHICLE_IMPACT = {
    TrafficManagement.FULL_CLOSURE: "all-lanes-closed",
    TrafficManagement.LANE_CLOSURE: "some-lanes-closed",
    TrafficManagement.ALTERNATING_ONE_WAY: "alternating-one-way",
    # One direction closed, the other open; in a single road event for both directions that
    # reads as some lanes closed. Splitting by direction (see the module docstring) will refine it.
    TrafficManagement.ONE_WAY: "some-lanes-closed",
    TrafficManagement.FOOTWAY_CLOSURE: "all-lanes-open",
    TrafficManagement.CYCLE_LANE_CLOSURE: "all-lanes-open",
    TrafficManagement.NO_CARRIAGEWAY_INCURSION: "all-lanes-open",
}

# Only kinds with a clear WZDx counterpart; the rest send no types_of_work rather than a guess.
TYPE_OF_WORK = {
    WorkKind.GAS: "below-road-work",
    WorkKind.WATER: "below-road-work",
    WorkKind.DISTRICT_HEATING: "below-road-work",
    WorkKind.ELECTRICITY: "below-road-work",
    WorkKind.TELECOM: "below-road-work",
    WorkKind.SEWER: "below-road-work",
    WorkKind.ROAD_RESURFACING: "surface-work",
    WorkKind.ROAD_CONSTRUCTION: "surface-work",
    WorkKind.BUILDING_SITE: "roadside-work",
}

# Used only when the feed is empty: WZDx requires at least one data source.
PUBLISHER_SOURCE_ID = "publisher"


class WorkzoneRow(NamedTuple):
    """One roadwork as the selector returns it; times are already RFC 3339 UTC strings."""

    id: str
    organisation_id: int
    organisation_name: str
    organisation_email: str
    title: str
    description: str
    street_names: list[str]
    start_date: str
    end_date: str
    creation_date: str
    update_date: str
    traffic_management: str
    direction: str
    from_area: bool  # the lines were derived from a polygon
    work_kind: str
    max_width_cm: int | None
    max_height_cm: int | None
    max_weight_kg: int | None
    speed_limit_kmh: int | None
    # GeoJSON LineStrings in WGS84 as PostGIS wrote them, one per separate part, in the direction of
    # travel; None for a part without a line (a degenerate polygon).
    lines: list[str | None]


def _utc(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""


# The WHERE clause the rows and the fingerprint share, so they always describe the same set.
# period && [since, ∞) is "ends after since" in a form the GiST index on (geometry, period) can use.
_IN_FEED = "r.status = ANY(%(statuses)s) AND r.period && tstzrange(%(since)s, NULL)"

# One row per roadwork; its separate parts come as an array of lines.
_ROWS_SQL = f"""
SELECT r.id::text,
       o.id, o.name, o.email,
       r.title, r.description, r.street_names,
       {_utc("lower(r.period)")}, {_utc("upper(r.period)")},
       {_utc("r.created_at")}, {_utc("r.updated_at")},
       r.traffic_management, r.direction,
       ST_Dimension(r.geometry) = 2,
       r.work_kind,
       (r.max_width_m * 100)::integer, (r.max_height_m * 100)::integer, (r.max_weight_t * 1000)::integer,
       r.speed_limit_kmh,
       ARRAY(
           SELECT ST_AsGeoJSON(ST_Transform(
                      CASE WHEN r.direction = %(backward)s AND ST_Dimension(part.geom) = 1
                           THEN ST_Reverse(line.geom) ELSE line.geom END, 4326), 6)
           -- Join the pieces of a line drawn in several strokes, keeping their direction.
           FROM ST_Dump(CASE WHEN ST_GeometryType(r.geometry) = 'ST_MultiLineString'
                             THEN ST_LineMerge(r.geometry, true) ELSE r.geometry END) AS part
           -- A polygon becomes the long centre line of its minimum rotated rectangle (corners c1..c4).
           CROSS JOIN LATERAL (
               SELECT CASE WHEN ST_Dimension(part.geom) = 1 THEN part.geom
                           WHEN ST_Distance(c1, c2) >= ST_Distance(c2, c3)
                           THEN ST_MakeLine(ST_Centroid(ST_MakeLine(c4, c1)), ST_Centroid(ST_MakeLine(c3, c2)))
                           ELSE ST_MakeLine(ST_Centroid(ST_MakeLine(c1, c2)), ST_Centroid(ST_MakeLine(c4, c3)))
                      END AS geom
               FROM (SELECT ST_PointN(ring, 1) AS c1, ST_PointN(ring, 2) AS c2,
                            ST_PointN(ring, 3) AS c3, ST_PointN(ring, 4) AS c4
                     FROM (SELECT CASE WHEN ST_Dimension(part.geom) = 2
                                       THEN ST_ExteriorRing(ST_OrientedEnvelope(part.geom)) END AS ring) AS envelope
                    ) AS corners
           ) AS line
           ORDER BY part.path
       )
FROM roadworks_roadwork AS r
JOIN accounts_organisation AS o ON o.id = r.organisation_id
WHERE {_IN_FEED} {{extra}}
ORDER BY lower(r.period), r.id
"""

# PostGIS declares its functions expensive (to invite parallel plans), and ST_Dump counts as 1000 rows
# per call, so even a 20-row feed looks costly enough for JIT compilation (~300 ms) and a parallel
# worker (10+ ms to start) around a query that runs in about 1 ms. Both are off for this transaction only
# (measured in bench/feed_wzdx.py: at 10,000 works parallel saved under 5 %, JIT cost 3x).
_PLANNER_SQL = "SELECT set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)"

_FINGERPRINT_SQL = f"""
SELECT count(*), max(r.updated_at), sum(r.xmin::text::bigint), sum(o.xmin::text::bigint)
FROM roadworks_roadwork AS r
JOIN accounts_organisation AS o ON o.id = r.organisation_id
WHERE {_IN_FEED}
"""


def _params(now: datetime) -> dict[str, Any]:
    return {"statuses": list(FEED_STATUSES), "since": now - ENDED_GRACE, "backward": Direction.BACKWARD}


def workzone_rows(
    *,
    now: datetime,
    bbox: tuple[float, float, float, float] | None = None,
    updated_since: datetime | None = None,
) -> list[WorkzoneRow]:
    """The roadworks in the feed, one row each, in one PostGIS query.

    bbox is (min_lon, min_lat, max_lon, max_lat) in WGS84 and keeps works whose geometry touches it.
    """
    params = _params(now)
    extra = []
    if bbox is not None:
        extra.append(
            "AND ST_Intersects(r.geometry, ST_Transform(ST_MakeEnvelope(%(xmin)s, %(ymin)s, %(xmax)s, %(ymax)s, 4326),"
            " %(srid)s))"
        )
        params.update(zip(("xmin", "ymin", "xmax", "ymax"), bbox, strict=True), srid=settings.AUMAN_SRID)
    if updated_since is not None:
        extra.append("AND r.updated_at >= %(updated_since)s")
        params["updated_since"] = updated_since
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PLANNER_SQL)
        cursor.execute(_ROWS_SQL.format(extra=" ".join(extra)), params)
        return [WorkzoneRow._make(row) for row in cursor.fetchall()]


def workzone_fingerprint(*, now: datetime) -> str:
    """Changes whenever a row of the feed changes, appears or disappears, or its organisation changes.

    count(*) catches rows leaving (deleted, status changed, ended); max(updated_at) catches saves.
    xmin, the id of the transaction that wrote a row version, catches every other write, including
    QuerySet.update() calls that leave updated_at alone: a new version always gets a new xmin. Its
    sum over the organisations also catches a renamed organisation, whose name the feed carries.
    """
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT_SQL, _params(now))
        count, last_update, row_versions, org_versions = cursor.fetchone()
    stamp = last_update.isoformat() if last_update else "-"
    return f"{count}:{stamp}:{row_versions or 0}:{org_versions or 0}"


def feed_info_from_settings() -> dict[str, Any]:
    """The fixed part of feed_info; build() adds update_date, version and data_sources."""
    info: dict[str, Any] = {"publisher": settings.AUMAN_FEED_PUBLISHER}
    if settings.AUMAN_FEED_CONTACT_EMAIL:
        info["contact_email"] = settings.AUMAN_FEED_CONTACT_EMAIL
    if settings.AUMAN_FEED_MAX_AGE >= 1:  # WZDx wants a positive number of seconds
        info["update_frequency"] = settings.AUMAN_FEED_MAX_AGE
    return info


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _part_id(roadwork_id: str, part: int) -> str:
    # Part 1 keeps the roadwork's id; further parts get UUIDs derived from it, stable across builds.
    return roadwork_id if part == 1 else str(uuid.uuid5(uuid.UUID(roadwork_id), f"part-{part}"))


def _restrictions(width_cm: int | None, height_cm: int | None, weight_kg: int | None) -> list[dict[str, Any]]:
    restrictions = []
    if width_cm is not None:
        restrictions.append({"type": "reduced-width", "value": width_cm, "unit": "centimeters"})
    if height_cm is not None:
        restrictions.append({"type": "reduced-height", "value": height_cm, "unit": "centimeters"})
    if weight_kg is not None:
        restrictions.append({"type": "reduced-weight", "value": weight_kg, "unit": "kilograms"})
    return restrictions


def build(rows: Iterable[WorkzoneRow], *, now: datetime, feed_info: Mapping[str, Any]) -> bytes:
    """The WorkZoneFeed document as UTF-8 bytes. Pure: everything it writes comes from its arguments."""
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    features: list[str] = []
    # organisation id -> [data_source_id, name, e-mail, newest update_date of its rows]
    sources: dict[int, list[str]] = {}
    for (
        roadwork_id,
        organisation_id,
        organisation_name,
        organisation_email,
        title,
        description,
        street_names,
        start_date,
        end_date,
        creation_date,
        update_date,
        traffic_management,
        direction,
        from_area,
        work_kind,
        width_cm,
        height_cm,
        weight_kg,
        speed_limit_kmh,
        parts,
    ) in rows:
        # Only a degenerate shape (a zero-area polygon from a raw import; the API refuses those) has no
        # line. Leaving it out keeps the document valid for everyone else.
        lines = [geometry for geometry in parts if geometry is not None]
        if not lines:
            continue
        source = sources.get(organisation_id)
        if source is None:
            source = sources[organisation_id] = [str(organisation_id), organisation_name, organisation_email, ""]
        if update_date > source[3]:  # same fixed format, so string order is time order
            source[3] = update_date

        core_details: dict[str, Any] = {
            "event_type": "work-zone",
            "data_source_id": source[0],
            # WZDx requires a road name; a work drawn without one still has to reach the feed.
            "road_names": street_names or [title],
            "direction": "undefined" if direction != Direction.BOTH and not from_area else "unknown",
            "name": title,
        }
        if description:
            core_details["description"] = description
        core_details["creation_date"] = creation_date
        core_details["update_date"] = update_date

        properties: dict[str, Any] = {
            "core_details": core_details,
            "start_date": start_date,
            "end_date": end_date,
            "is_start_date_verified": False,
            "is_end_date_verified": False,
            "is_start_position_verified": False,
            "is_end_position_verified": False,
            "location_method": "unknown",
            "work_zone_type": "static",
            "vehicle_impact": VEHICLE_IMPACT.get(traffic_management, "unknown"),
        }
        if speed_limit_kmh is not None:
            properties["reduced_speed_limit_kph"] = speed_limit_kmh
        restrictions = _restrictions(width_cm, height_cm, weight_kg)
        if restrictions:
            properties["restrictions"] = restrictions
        type_of_work = TYPE_OF_WORK.get(work_kind)
        if type_of_work is not None:
            properties["types_of_work"] = [{"type_name": type_of_work}]

        ids = [_part_id(roadwork_id, number) for number in range(1, len(lines) + 1)]
        for event_id, geometry in zip(ids, lines, strict=True):
            if len(ids) > 1:  # separate parts: one road event each, naming the others
                core_details["related_road_events"] = [
                    {"type": "related-work-zone", "id": other} for other in ids if other != event_id
                ]
            # The geometry is spliced in as PostGIS wrote it: parsing and re-encoding it would only cost time.
            features.append(
                f'{{"id":{encode(event_id)},"type":"Feature","properties":{encode(properties)},"geometry":{geometry}}}'
            )

    data_sources = []
    for source_id, name, email, last_update in sources.values():
        data_source = {"data_source_id": source_id, "organization_name": name}
        if email:
            data_source["contact_email"] = email
        data_source["update_date"] = last_update
        data_sources.append(data_source)
    if not data_sources:
        data_sources.append({"data_source_id": PUBLISHER_SOURCE_ID, "organization_name": feed_info["publisher"]})

    header = {**feed_info, "update_date": _rfc3339(now), "version": WZDX_VERSION, "data_sources": data_sources}
    return "".join(
        ['{"feed_info":', encode(header), ',"type":"FeatureCollection","features":[', ",".join(features), "]}"]
    ).encode()


def _parse_filters(query: QueryDict) -> tuple[dict[str, Any], dict[str, list[str]]]:
    filters: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "bbox" in query:
        try:
            filters["bbox"] = parse_bbox(query["bbox"]).extent
        except ValidationError as exc:
            errors["bbox"] = exc.messages
    if "updated_since" in query:
        try:
            filters["updated_since"] = BoundedDateTimeField().to_internal_value(query["updated_since"])
        except serializers.ValidationError as exc:
            errors["updated_since"] = [str(message) for message in exc.detail]
    return filters, errors


@require_safe
def workzone_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/wzdx/v4.2/workzones.geojson[?bbox=min_lon,min_lat,max_lon,max_lat][&updated_since=ISO 8601]"""
    filters, errors = _parse_filters(request.GET)
    if errors:
        return bad_request(errors)
    feed_info = feed_info_from_settings()
    now = timezone.now()

    def build_now(built_at: datetime) -> bytes:
        return build(workzone_rows(now=now, **filters), now=built_at, feed_info=feed_info)

    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=workzone_fingerprint(now=now),
        build=build_now,
        content_type=CONTENT_TYPE,
        # The bytes depend on the filters and on the configured header, not only on the rows.
        variant={
            **{key: str(value) for key, value in filters.items()},
            **{f"info.{k}": str(v) for k, v in feed_info.items()},
        },
    )
