"""DATEX II v3 SituationPublication: roadworks with their traffic management and detours, and incidents.

Schema: the v3.7 XSDs in ../shared/data/schemas/datex2/v3.7 (entry ``DATEXII_3_D2Payload.xsd``: a ``d2:payload``
element of type ``sit:SituationPublication``); a copy ships in auman/data/schemas/datex2-3.7 for check_feeds.
Rows come from ``traffic.feeds.situations`` (PostGIS writes the GML position lists and the local times);
``build`` is pure and writes the XML as text, without an object model per item.

One situation per roadwork and per incident, its id the item's UUID. A roadwork's situation holds

- the works record: ``MaintenanceWorks`` or ``ConstructionWorks`` by the kind of works (id: the roadwork's id),
  with the daily windows and weekdays as a recurring ``validPeriod``;
- a ``RoadOrCarriagewayOrLaneManagement`` record for the traffic management, when it touches the carriageway
  (id ``<id>_management``), naming the works record as its ``managedCause``;
- a ``ReroutingManagement`` record per detour, the detour's line as its ``alternativeRoute``
  (id ``<id>_detour<detour id>``).

An incident's situation holds one record: ``Accident`` (with accident type, collision type, vehicles and
casualties from the German police codes), ``VehicleObstruction``, ``GeneralObstruction`` or ``AuthorityOperation``.
docs/feeds.md tables every mapping. Lines are ``SingleRoadLinearLocation``s with a ``gmlLineString`` (posList
"lat lon ...", EPSG:4326, in the direction of travel) and the street names as ``roadInformation``; a work with
separate parts has a ``LocationGroupByList`` of them; an incident without an affected stretch is a
``PointLocation``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from lxml import etree

from roadworks.models import Direction, RoadworkCategory, RoadworkStatus, TrafficManagement, WorkKind
from traffic.models import (
    AccidentCategory,
    AccidentKind,
    AccidentType,
    IncidentKind,
    IncidentStatus,
)

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .situations import DetourRow, IncidentRow, RoadworkRow, situation_fingerprint, situation_rows

CONTENT_TYPE = "application/xml; charset=utf-8"
FEED_NAME = "datex2-3-situations"
SCHEMA_PATH = Path(settings.BASE_DIR) / "auman" / "data" / "schemas" / "datex2-3.7" / "DATEXII_3_D2Payload.xsd"
COUNTRY = "DE"  # AUMAn serves German authorities; the publisher's name comes from settings
SRS_NAME = "urn:ogc:def:crs:EPSG::4326"  # latitude first, as GML reads this name

NAMESPACES = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "com": "http://datex2.eu/schema/3/common",
    "sit": "http://datex2.eu/schema/3/situation",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "ubx": "http://datex2.eu/schema/3/urbanExtensions",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}

# --- Mappings (docs/feeds.md shows them as tables) -------------------------------------------------------------

# Kind of works -> ConstructionWorks' constructionWorkType; every other kind is MaintenanceWorks.
CONSTRUCTION_WORK_TYPES: dict[str, str] = {
    WorkKind.ROAD_CONSTRUCTION: "constructionWork",
    WorkKind.BRIDGE: "constructionWork",
    WorkKind.TRAM: "constructionWork",
    WorkKind.BUILDING_SITE: "constructionWork",
}
# Kind of works -> MaintenanceWorks' roadMaintenanceType.
ROAD_MAINTENANCE_TYPES: dict[str, str] = {
    WorkKind.GAS: "roadworks",
    WorkKind.WATER: "roadworks",
    WorkKind.DISTRICT_HEATING: "roadworks",
    WorkKind.ELECTRICITY: "roadworks",
    WorkKind.TELECOM: "roadworks",
    WorkKind.SEWER: "roadworks",
    WorkKind.ROAD_RESURFACING: "resurfacingWork",
    WorkKind.ROAD_MARKING: "roadMarkingWork",
    WorkKind.STREET_LIGHTING: "maintenanceWork",
    WorkKind.TRAFFIC_SIGNALS: "maintenanceWork",
    WorkKind.GREENERY: "treeAndVegetationCuttingWork",
    WorkKind.SCAFFOLDING: "overheadWorks",
    WorkKind.CRANE: "overheadWorks",
    WorkKind.REMOVAL: "other",
    WorkKind.OTHER: "roadworks",
}
# Kind of works -> the urban extension's streetWorksType (utility and building works in a city street).
STREET_WORKS_TYPES: dict[str, str] = {
    WorkKind.GAS: "utilityWork",
    WorkKind.WATER: "utilityWork",
    WorkKind.DISTRICT_HEATING: "utilityWork",
    WorkKind.ELECTRICITY: "utilityWork",
    WorkKind.TELECOM: "utilityWork",
    WorkKind.SEWER: "utilityWork",
    WorkKind.BUILDING_SITE: "buildingWork",
    WorkKind.SCAFFOLDING: "buildingWork",
    WorkKind.CRANE: "buildingWork",
}
# Traffic management -> roadOrCarriagewayOrLaneManagementType. Works off the carriageway have no such record.
MANAGEMENT_TYPES: dict[str, str] = {
    TrafficManagement.FULL_CLOSURE: "roadClosed",
    TrafficManagement.LANE_CLOSURE: "laneClosures",
    TrafficManagement.ALTERNATING_ONE_WAY: "singleAlternateLineTraffic",
    TrafficManagement.ONE_WAY: "carriagewayClosures",
}
ROADWORKS_SCALES = {
    RoadworkCategory.MAJOR: "major",
    RoadworkCategory.STANDARD: "medium",
    RoadworkCategory.MINOR: "minor",
}
OPERATOR_ACTION_STATUSES = {
    RoadworkStatus.APPROVED: "approved",
    RoadworkStatus.IN_PROGRESS: "beingImplemented",
    RoadworkStatus.COMPLETED: "implemented",
}
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Unfallart -> collisionType; leaving the carriageway (8, 9) and "other" (0) collide with nothing named.
COLLISION_TYPES: dict[int, str] = {
    AccidentKind.STARTING_STOPPING_PARKED: "sideCollision",
    AccidentKind.AHEAD_WAITING: "rearCollision",
    AccidentKind.SIDEWAYS_SAME_DIRECTION: "sideCollision",
    AccidentKind.ONCOMING: "headOnCollision",
    AccidentKind.TURNING_CROSSING: "headOnOrSideCollision",
    AccidentKind.PEDESTRIAN: "collisionWithPerson",
    AccidentKind.OBSTACLE: "collisionWithObstacle",
}
# Unfalltyp (the conflict that led to the accident) has no DATEX II counterpart; it goes out as an extended
# accidentType (<accidentType _extendedValue="turningAccident">_extended</accidentType>).
ACCIDENT_TYPE_EXTENSIONS: dict[int, str] = {
    AccidentType.DRIVING: "drivingAccident",
    AccidentType.TURNING: "turningAccident",
    AccidentType.TURNING_IN_CROSSING: "turningInOrCrossingAccident",
    AccidentType.PEDESTRIAN_CROSSING: "pedestrianCrossingAccident",
    AccidentType.STATIONARY_TRAFFIC: "stationaryTrafficAccident",
    AccidentType.LONGITUDINAL_TRAFFIC: "longitudinalTrafficAccident",
    AccidentType.OTHER: "otherAccident",
}
# Road users involved (Unfallatlas flags) -> vehicleType of a groupOfVehiclesInvolved; pedestrians are people.
VEHICLE_TYPES = (
    ("involves_car", "car"),
    ("involves_bicycle", "bicycle"),
    ("involves_motorcycle", "motorcycle"),
    ("involves_goods_vehicle", "lorry"),
    ("involves_other", "other"),
)
CASUALTIES = (("killed", "dead"), ("seriously_injured", "seriouslyInjured"), ("slightly_injured", "slightlyInjured"))

# Other incident kinds -> (record type, its type element, value).
INCIDENT_RECORDS: dict[str, tuple[str, str, str]] = {
    IncidentKind.BREAKDOWN: ("VehicleObstruction", "vehicleObstructionType", "brokenDownVehicle"),
    IncidentKind.OBSTRUCTION: ("GeneralObstruction", "obstructionType", "objectOnTheRoad"),
    IncidentKind.SPILL: ("GeneralObstruction", "obstructionType", "spillageOnTheRoad"),
    IncidentKind.HAZARD: ("GeneralObstruction", "obstructionType", "hazardsOnTheRoad"),
    IncidentKind.POLICE_OPERATION: ("AuthorityOperation", "authorityOperationType", "undefinedAuthorityActivity"),
    IncidentKind.OTHER: ("GeneralObstruction", "obstructionType", "other"),
}

MULTILINGUAL_MAX = 1024  # com:MultilingualStringValueType
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# Most texts hold nothing to escape and no character XML cannot carry: one regex search finds out, far cheaper
# than escape()'s replace calls on every text (measured at 10,000 items: a fifth of the build).
_NEEDS_ESCAPING = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ATTRIBUTE_NEEDS_QUOTING = re.compile("[&<>\"'\n\r\t\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _attribute(value: str) -> str:
    """quoteattr(value), without its work for the usual value (an id, a language code) that needs none."""
    return quoteattr(_NOT_XML.sub("", value)) if _ATTRIBUTE_NEEDS_QUOTING.search(value) else f'"{value}"'


def accident_types(category: int | None, kind: int | None, type_: int | None) -> list[tuple[str, str | None]]:
    """accidentType values as (value, extended value): the collision or accident, serious consequences, Unfalltyp."""
    types: list[tuple[str, str | None]] = [("collision" if kind in COLLISION_TYPES else "accident", None)]
    if category in (AccidentCategory.KILLED, AccidentCategory.SERIOUSLY_INJURED):
        types.append(("seriousInjuryOrFatalAccident", None))
    if type_ in ACCIDENT_TYPE_EXTENSIONS:
        types.append(("_extended", ACCIDENT_TYPE_EXTENSIONS[type_]))
    return types


# --- Writing ---------------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    text = str(value)
    return escape(_NOT_XML.sub("", text)) if _NEEDS_ESCAPING.search(text) else text


def _multilingual(text: str, lang: str) -> str:
    text = " ".join(text.split())
    if len(text) > MULTILINGUAL_MAX:
        text = text[: MULTILINGUAL_MAX - 1] + "…"
    return f"<com:values><com:value lang={_attribute(lang)}>{_text(text)}</com:value></com:values>"


def _comment(text: str, lang: str) -> str:
    return (
        f"<sit:generalPublicComment><sit:comment>{_multilingual(text, lang)}</sit:comment></sit:generalPublicComment>"
    )


def _situation_head(item_id: str, updated: str) -> str:
    return (
        f"<sit:situation id={_attribute(item_id)}><sit:situationVersionTime>{updated}</sit:situationVersionTime>"
        "<sit:headerInformation><com:informationStatus>real</com:informationStatus></sit:headerInformation>"
    )


def _validity(
    start: str, end: str | None, *, status: str, daily: tuple[str | None, str | None] = (None, None), days=()
) -> str:
    out = [f"<sit:validity><com:validityStatus>{status}</com:validityStatus><com:validityTimeSpecification>"]
    out.append(f"<com:overallStartTime>{start}</com:overallStartTime>")
    if end:
        out.append(f"<com:overallEndTime>{end}</com:overallEndTime>")
    daily_start, daily_end = daily
    if (daily_start and daily_end) or days:
        out.append("<com:validPeriod>")
        if daily_start and daily_end:
            # Local times of day; an end before the start means the window runs past midnight.
            out.append(
                f"<com:recurringTimePeriodOfDay><com:startTimeOfPeriod>{daily_start}:00</com:startTimeOfPeriod>"
                f"<com:endTimeOfPeriod>{daily_end}:00</com:endTimeOfPeriod></com:recurringTimePeriodOfDay>"
            )
        if days:
            applicable = "".join(f"<com:applicableDay>{DAYS[day]}</com:applicableDay>" for day in sorted(set(days)))
            out.append(f"<com:recurringDayWeekMonthPeriod>{applicable}</com:recurringDayWeekMonthPeriod>")
        out.append("</com:validPeriod>")
    out.append("</com:validityTimeSpecification></sit:validity>")
    return "".join(out)


def _road_names(names: Iterable[str]) -> str:
    names = [name for name in names if name.strip()]
    if not names:
        return ""
    info = "".join(
        f"<loc:roadInformation><loc:roadName>{_text(name)}</loc:roadName></loc:roadInformation>" for name in names
    )
    return f"<loc:supplementaryPositionalDescription>{info}</loc:supplementaryPositionalDescription>"


def _display(point: str | None) -> str:
    if not point:
        return ""
    lat, lon = point.split()[:2]
    return (
        f"<loc:coordinatesForDisplay><loc:latitude>{lat}</loc:latitude><loc:longitude>{lon}</loc:longitude>"
        "</loc:coordinatesForDisplay>"
    )


def _linear(element: str, poslist: str, names: Iterable[str], point: str | None = None) -> str:
    """A SingleRoadLinearLocation as the element `element` (which carries the xsi:type)."""
    return (
        f'<{element} xsi:type="loc:SingleRoadLinearLocation">{_display(point)}{_road_names(names)}'
        f'<loc:gmlLineString srsDimension="2" srsName="{SRS_NAME}"><loc:posList>{poslist}</loc:posList>'
        f"</loc:gmlLineString></{element}>"
    )


def _location(lines: list[str], names: list[str]) -> str:
    if len(lines) == 1:
        return _linear("sit:locationReference", lines[0], names)
    parts = "".join(_linear("loc:locationContainedInGroup", line, names) for line in lines)
    return f'<sit:locationReference xsi:type="loc:LocationGroupByList">{parts}</sit:locationReference>'


def _record_head(record_type: str, record_id: str, version: int, created: str, updated: str, probability: str) -> str:
    return (
        f'<sit:situationRecord xsi:type="sit:{record_type}" id={_attribute(record_id)} version="{version}">'
        f"<sit:situationRecordCreationTime>{created}</sit:situationRecordCreationTime>"
        f"<sit:situationRecordVersionTime>{updated}</sit:situationRecordVersionTime>"
        f"<sit:probabilityOfOccurrence>{probability}</sit:probabilityOfOccurrence>"
    )


def _network_management(work: RoadworkRow, *, both: bool) -> str:
    status = OPERATOR_ACTION_STATUSES.get(work.status)
    direction = "bothWays" if both else "aligned"
    return (
        (f"<sit:operatorActionStatus>{status}</sit:operatorActionStatus>" if status else "")
        + "<sit:complianceOption>mandatory</sit:complianceOption>"
        + f"<sit:applicableForTrafficDirection>{direction}</sit:applicableForTrafficDirection>"
    )


def _managed_cause(work: RoadworkRow) -> str:
    return (
        "<sit:cause><sit:causeType>roadMaintenance</sit:causeType><sit:managedCause>"
        f'<sit:objectReference targetClass="sit:SituationRecord" id={_attribute(work.id)} version="{work.version}"/>'
        "</sit:managedCause></sit:cause>"
    )


def _roadwork_situation(work: RoadworkRow, lang: str) -> str:
    names = work.street_names
    location = _location(work.lines, names)
    both = work.from_area or work.direction == Direction.BOTH
    validity = _validity(
        work.start,
        work.end,
        status="definedByValidityTimeSpec",
        daily=(work.daily_start, work.daily_end),
        days=work.weekdays,
    )
    comment = work.title if not work.description else f"{work.title}: {work.description}"
    out = [_situation_head(work.id, work.updated)]

    construction = CONSTRUCTION_WORK_TYPES.get(work.work_kind)
    record_type = "ConstructionWorks" if construction else "MaintenanceWorks"
    out.append(_record_head(record_type, work.id, work.version, work.created, work.updated, "certain"))
    out.append(validity)
    if work.lanes_affected:
        out.append(
            f"<sit:impact><sit:numberOfLanesRestricted>{work.lanes_affected}</sit:numberOfLanesRestricted></sit:impact>"
        )
    out.append(_comment(comment, lang))
    out.append(location)
    status = OPERATOR_ACTION_STATUSES.get(work.status)
    if status:
        out.append(f"<sit:operatorActionStatus>{status}</sit:operatorActionStatus>")
    out.append(f"<sit:roadworksIdentifier>{_text(work.reference)}</sit:roadworksIdentifier>")
    scale = ROADWORKS_SCALES.get(work.category)
    if scale:
        out.append(f"<sit:roadworksScale>{scale}</sit:roadworksScale>")
    if work.is_emergency:
        out.append("<sit:urgentRoadworks>true</sit:urgentRoadworks>")
    street_works = STREET_WORKS_TYPES.get(work.work_kind)
    if street_works:
        out.append(
            "<sit:_roadworksExtension><sit:streetWorks>"
            f"<ubx:streetWorksType>{street_works}</ubx:streetWorksType></sit:streetWorks></sit:_roadworksExtension>"
        )
    if construction:
        out.append(f"<sit:constructionWorkType>{construction}</sit:constructionWorkType>")
    else:
        maintenance = ROAD_MAINTENANCE_TYPES.get(work.work_kind, "roadworks")
        out.append(f"<sit:roadMaintenanceType>{maintenance}</sit:roadMaintenanceType>")
    out.append("</sit:situationRecord>")

    management = MANAGEMENT_TYPES.get(work.traffic_management)
    if management:
        out.append(
            _record_head(
                "RoadOrCarriagewayOrLaneManagement",
                f"{work.id}_management",
                work.version,
                work.created,
                work.updated,
                "certain",
            )
        )
        out.append(validity)
        out.append(_managed_cause(work))
        out.append(location)
        out.append(_network_management(work, both=both))
        out.append(
            f"<sit:roadOrCarriagewayOrLaneManagementType>{management}</sit:roadOrCarriagewayOrLaneManagementType>"
            "</sit:situationRecord>"
        )

    for detour in work.detours:
        out.append(_detour_record(work, detour, location, validity, lang, both=both))
    out.append("</sit:situation>")
    return "".join(out)


def _detour_record(work: RoadworkRow, detour: DetourRow, location: str, validity: str, lang: str, *, both: bool) -> str:
    if detour.start or detour.end:
        validity = _validity(detour.start or work.start, detour.end or work.end, status="definedByValidityTimeSpec")
    description = detour.name if not detour.description else f"{detour.name}: {detour.description}"
    route = "".join(
        f'<loc:locationContainedInItinerary index="{index}">{_linear("loc:location", line, [])}'
        "</loc:locationContainedInItinerary>"
        for index, line in enumerate(detour.lines)
    )
    return "".join(
        [
            _record_head(
                "ReroutingManagement",
                f"{work.id}_detour{detour.id}",
                work.version,
                work.created,
                work.updated,
                "certain",
            ),
            validity,
            _managed_cause(work),
            location,
            _network_management(work, both=both),
            "<sit:reroutingManagementType>followDiversionSigns</sit:reroutingManagementType>",
            "<sit:reroutingItineraryDescription>",
            _multilingual(description, lang),
            "</sit:reroutingItineraryDescription>",
            "<sit:signedRerouting>true</sit:signedRerouting>",
            f'<sit:alternativeRoute xsi:type="loc:ItineraryByIndexedLocations">{route}</sit:alternativeRoute>'
            if route
            else "",
            "</sit:situationRecord>",
        ]
    )


def _accident_details(incident: IncidentRow) -> str:
    out = []
    for value, extended in accident_types(incident.category, incident.accident_kind, incident.accident_type):
        attribute = f" _extendedValue={_attribute(extended)}" if extended else ""
        out.append(f"<sit:accidentType{attribute}>{value}</sit:accidentType>")
    collision = COLLISION_TYPES.get(incident.accident_kind)  # type: ignore[arg-type]
    if collision:
        out.append(f"<sit:collisionType>{collision}</sit:collisionType>")
    for field, vehicle_type in VEHICLE_TYPES:
        if getattr(incident, field):
            out.append(
                "<sit:groupOfVehiclesInvolved><com:vehicleCharacteristics>"
                f"<com:vehicleType>{vehicle_type}</com:vehicleType>"
                "</com:vehicleCharacteristics></sit:groupOfVehiclesInvolved>"
            )
    for field, status in CASUALTIES:
        count = getattr(incident, field) or 0
        if count:
            out.append(
                f"<sit:groupOfPeopleInvolved><sit:numberOfPeople>{count}</sit:numberOfPeople>"
                f"<sit:injuryStatusType>{status}</sit:injuryStatusType></sit:groupOfPeopleInvolved>"
            )
    if incident.involves_pedestrian:
        out.append(
            "<sit:groupOfPeopleInvolved><sit:involvementRole>pedestrian</sit:involvementRole></sit:groupOfPeopleInvolved>"
        )
    return "".join(out)


def _incident_situation(incident: IncidentRow, lang: str, labels: dict[str, str]) -> str:
    cleared = incident.status == IncidentStatus.CLEARED
    probability = "probable" if incident.status == IncidentStatus.REPORTED else "certain"
    if incident.kind == IncidentKind.ACCIDENT:
        record_type, details = "Accident", None
    else:
        record_type, element, value = INCIDENT_RECORDS.get(incident.kind, INCIDENT_RECORDS[IncidentKind.OTHER])
        details = f"<sit:{element}>{value}</sit:{element}>"
    out = [
        _situation_head(incident.id, incident.updated),
        _record_head(record_type, incident.id, incident.version, incident.created, incident.updated, probability),
        _validity(
            incident.occurred,
            incident.cleared if cleared else incident.expected_clearance,
            status="definedByValidityTimeSpec" if cleared else "active",
        ),
    ]
    if incident.lanes_blocked:
        out.append(
            f"<sit:impact><sit:numberOfLanesRestricted>{incident.lanes_blocked}</sit:numberOfLanesRestricted></sit:impact>"
        )
    comment = incident.description or labels[incident.kind]
    out.append(_comment(comment, lang))
    names = [incident.street_name]
    if incident.line:
        out.append(_linear("sit:locationReference", incident.line, names, point=incident.point))
    else:
        lat, lon = incident.point.split()
        out.append(
            f'<sit:locationReference xsi:type="loc:PointLocation">{_road_names(names)}'
            "<loc:pointByCoordinates><loc:pointCoordinates>"
            f"<loc:latitude>{lat}</loc:latitude><loc:longitude>{lon}</loc:longitude>"
            "</loc:pointCoordinates></loc:pointByCoordinates></sit:locationReference>"
        )
    if incident.lanes_blocked:
        out.append("<sit:trafficConstrictionType>lanesBlocked</sit:trafficConstrictionType>")
    out.append(_accident_details(incident) if details is None else details)
    out.append("</sit:situationRecord></sit:situation>")
    return "".join(out)


def build(roadworks: Iterable[RoadworkRow], incidents: Iterable[IncidentRow], *, now: datetime) -> bytes:
    """The SituationPublication as UTF-8 bytes. Pure: everything it writes comes from its arguments and settings."""
    lang = settings.LANGUAGE_CODE
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<d2:payload {declarations} xsi:type="sit:SituationPublication" lang={quoteattr(lang)} modelBaseVersion="3">',
        f"<com:publicationTime>{timezone.localtime(now).isoformat(timespec='seconds')}</com:publicationTime>",
        f"<com:publicationCreator><com:country>{COUNTRY}</com:country>"
        f"<com:nationalIdentifier>{_text(settings.AUMAN_FEED_PUBLISHER)}</com:nationalIdentifier></com:publicationCreator>",
    ]
    with translation.override(lang):
        out.extend(_roadwork_situation(work, lang) for work in roadworks if work.lines)
        # Looked up once in the feed's language: a lazy label costs a gettext per incident.
        labels = {kind.value: str(kind.label) for kind in IncidentKind}
        out.extend(_incident_situation(incident, lang, labels) for incident in incidents)
    out.append("</d2:payload>\n")
    return "".join(out).encode()


# --- Checking --------------------------------------------------------------------------------------------------


@cache
def xml_schema() -> etree.XMLSchema:
    """The DATEX II v3.7 schema set through its payload entry, loaded once per process."""
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def validate(body: bytes) -> list[str]:
    """Errors against the DATEX II v3.7 XSDs; [] when valid."""
    try:
        document = etree.fromstring(body)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = xml_schema()
    if schema.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]


# --- Serving ---------------------------------------------------------------------------------------------------


def build_now(filters: FeedFilters | None = None, *, now: datetime | None = None) -> bytes:
    """The feed as a request without conditions gets it, built afresh (check_feeds and benchmarks)."""
    now = now or timezone.now()
    roadworks, incidents = situation_rows(now=now, filters=filters)
    return build(roadworks, incidents, now=now)


@feed_view
def situation_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/datex2/v3/situations.xml[?bbox=...][&updated_since=ISO 8601][&active_on=date or date-time]"""
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    now = timezone.now()

    def build_at(built_at: datetime) -> bytes:
        roadworks, incidents = situation_rows(now=now, filters=filters)
        return build(roadworks, incidents, now=built_at)

    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=lambda: situation_fingerprint(now=now, filters=filters),
        build=build_at,
        content_type=CONTENT_TYPE,
        variant={
            **filters.variant(),
            "publisher": settings.AUMAN_FEED_PUBLISHER,
            "language": settings.LANGUAGE_CODE,
            "tz": settings.TIME_ZONE,
        },
    )


FEED = register(
    Feed(
        key="datex2-situations",
        title=_("Roadworks and incidents (DATEX II)"),
        format="DATEX II v3.7 SituationPublication (XML)",
        url_name="feeds:datex2-situations",
        content_type=CONTENT_TYPE,
        validate=validate,
        description=_(
            "Roadworks with their traffic management and detours, and active incidents with their accident details."
        ),
    )
)
