"""DATEX II v3 SituationPublication: roadworks with their traffic management and detours, and incidents.

Schema: the v3.7 XSDs in ../shared/data/schemas/datex2/v3.7 (entry ``DATEXII_3_D2Payload.xsd``: a ``d2:payload``
element of type ``sit:SituationPublication``); a copy ships in auman/data/schemas/datex2-3.7 for check_feeds.
PostgreSQL writes the whole document in one query (``document``): each situation's XML with concat() from its
columns, in stages that each run once per item, joined with string_agg; the bytes come back as they are, never
decoded into a str. The query selects what the Waze feed shows, with the WHERE clause, position lists and local
times of ``traffic.feeds.situations`` (its SQL fragments, imported). The mapping tables below stay the one source:
they go into the query as jsonb parameters, as do the incident kinds' labels in LANGUAGE_CODE, the publisher and
the language. The texts are written as xml.sax.saxutils wrote them before: characters XML cannot carry removed,
& < > escaped, comments with their whitespace folded and clipped to 1,024 characters; SQL looks for the rare text
that needs any of it with one regular expression and leaves the others alone.

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

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from lxml import etree

from roadworks.models import Direction, RoadworkCategory, RoadworkStatus, TrafficManagement, WorkKind
from traffic.models import (
    AccidentCategory,
    AccidentKind,
    AccidentType,
    IncidentDirection,
    IncidentKind,
    IncidentStatus,
)

from .filters import FeedFilters, parse_feed_filters
from .http import bad_request, feed_view, serve_feed
from .registry import Feed, register
from .situations import (
    INCIDENT_LINE_SQL,
    ROADWORK_LINES_SQL,
    feed_where,
    fetch_document,
    lines_array_sql,
    local_time_sql,
    poslist_sql,
    situation_fingerprint,
)
from .sql import incident_labels

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

# --- Writing: the SQL ------------------------------------------------------------------------------------------
#
# Character classes for PostgreSQL's regular expressions (\uXXXX escapes work inside brackets): the characters
# XML 1.0 cannot carry (NUL cannot be in a PostgreSQL text at all), and what Python's str.split() splits on
# (str.isspace(); tests/feeds/test_datex2.py checks the list), by which a comment's whitespace is folded.
_NOT_XML = r"\u0001-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff"
_WHITESPACE = r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Every character a text may need something done about: whitespace but the space, a character XML cannot carry,
# & < >. A comment needs nothing done when it has none of them and no space at either end or beside another.
_UNUSUAL = r"\u0001-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000&<>\ufffe\uffff"
_NEEDS_FOLDING = f"'[{_UNUSUAL}]|^ | $|  '"


def _escaped(text: str) -> str:
    """SQL for `text` (a column: it is read twice) as element content: without the characters XML cannot carry,
    & < > escaped (xml.sax.saxutils.escape). Most texts hold none of them: one regular expression match finds
    out, and the replace calls run only for the others."""
    return (
        f"CASE WHEN {text} ~ '[&<>{_NOT_XML}]' THEN replace(replace(replace(regexp_replace({text}, '[{_NOT_XML}]',"
        f" '', 'g'), '&', '&amp;'), '<', '&lt;'), '>', '&gt;') ELSE {text} END"
    )


def _attribute(value: str) -> str:
    """SQL for `value` as a quoted attribute, as xml.sax.saxutils.quoteattr writes it: characters XML cannot
    carry removed, & < > and newline, carriage return and tab escaped, in double quotes unless the value holds a
    double quote and no single one. Only for values given as parameters (the language code): PostgreSQL folds
    it into a constant when it plans the query. Ids and our own codes never need quoting."""
    escaped = f"regexp_replace({value}, '[{_NOT_XML}]', '', 'g')"
    for char, entity in (
        ("'&'", "&amp;"),
        ("'<'", "&lt;"),
        ("'>'", "&gt;"),
        ("chr(10)", "&#10;"),
        ("chr(13)", "&#13;"),
        ("chr(9)", "&#9;"),
    ):
        escaped = f"replace({escaped}, {char}, '{entity}')"
    return (
        f"""CASE WHEN strpos({value}, '"') = 0 THEN '"' || {escaped} || '"'"""
        f""" WHEN strpos({value}, '''') = 0 THEN '''' || {escaped} || '''' """
        f"""ELSE '"' || replace({escaped}, '"', '&quot;') || '"' END"""
    )


def _folded(text: str) -> str:
    """SQL for a text (a column) as the content of a MultilingualString: whitespace runs folded to one space and
    the ends trimmed, clipped to MULTILINGUAL_MAX characters with an ellipsis, then escaped. The usual text needs
    none of it (one regular expression match and its length in bytes, never fewer than its characters, tell);
    only the others run the subquery."""
    return (
        f"CASE WHEN {text} !~ {_NEEDS_FOLDING} AND octet_length({text}) <= {MULTILINGUAL_MAX} THEN {text}"
        f" ELSE (SELECT {_escaped('clipped.t')} FROM (SELECT CASE WHEN char_length(folded.t) > {MULTILINGUAL_MAX}"
        f" THEN left(folded.t, {MULTILINGUAL_MAX - 1}) || '…' ELSE folded.t END AS t"
        f" FROM (SELECT btrim(regexp_replace({text}, '[{_WHITESPACE}]+', ' ', 'g'), ' ') AS t OFFSET 0) AS folded"
        " OFFSET 0) AS clipped) END"
    )


# The com:values around every comment; the language code is a parameter, so this is a constant of the plan, as is
# any || of it with other literals (fewer arguments for concat, which writes each one out).
_VALUES_OPEN = f"'<com:values><com:value lang=' || {_attribute('%(lang)s::text')} || '>'"
_VALUES_CLOSE = "'</com:value></com:values>'"


def _comment(text: str) -> str:
    return (
        f"'<sit:generalPublicComment><sit:comment>' || {_VALUES_OPEN}, {_folded(text)},"
        f" {_VALUES_CLOSE} || '</sit:comment></sit:generalPublicComment>'"
    )


def _road_name(name: str) -> str:
    return f"'<loc:roadInformation><loc:roadName>' || {_escaped(name)} || '</loc:roadName></loc:roadInformation>'"


def _linear(element: str, poslist: str, names: str, display: str = "''") -> str:
    """SQL for a SingleRoadLinearLocation as the element `element` (which carries the xsi:type)."""
    return (
        f"""'<{element} xsi:type="loc:SingleRoadLinearLocation">' || {display} || {names}"""
        f""" || '<loc:gmlLineString srsDimension="2" srsName="{SRS_NAME}"><loc:posList>' || {poslist}"""
        f" || '</loc:posList></loc:gmlLineString></{element}>'"
    )


def _validity(start: str, end: str, status: str, valid_period: str = "NULL") -> str:
    """SQL for sit:validity; an end or valid period that is NULL is left out."""
    return (
        f"concat('<sit:validity><com:validityStatus>', {status}, '</com:validityStatus>"
        f"<com:validityTimeSpecification><com:overallStartTime>', {start}, '</com:overallStartTime>',"
        f" '<com:overallEndTime>' || {end} || '</com:overallEndTime>', {valid_period},"
        " '</com:validityTimeSpecification></sit:validity>')"
    )


def _situation_head(alias: str) -> str:
    return (
        f"""'<sit:situation id="', {alias}.id, '"><sit:situationVersionTime>', {alias}.updated,"""
        " '</sit:situationVersionTime><sit:headerInformation><com:informationStatus>real</com:informationStatus>"
        "</sit:headerInformation>'"
    )


# The records of a roadwork after their id: version, times and probability, the same for each (concat arguments).
_WORK_RECORD_TAIL = (
    """'" version="', w.version, '"><sit:situationRecordCreationTime>', w.created,"""
    " '</sit:situationRecordCreationTime><sit:situationRecordVersionTime>', w.updated,"
    " '</sit:situationRecordVersionTime><sit:probabilityOfOccurrence>certain</sit:probabilityOfOccurrence>'"
)
_MANAGED_CAUSE = (
    "'<sit:cause><sit:causeType>roadMaintenance</sit:causeType><sit:managedCause>"
    """<sit:objectReference targetClass="sit:SituationRecord" id="', w.id, '" version="', w.version, '"/>"""
    "</sit:managedCause></sit:cause>'"
)
_NETWORK_MANAGEMENT = (
    "'<sit:operatorActionStatus>' || w.action_status || '</sit:operatorActionStatus>',"
    " '<sit:complianceOption>mandatory</sit:complianceOption><sit:applicableForTrafficDirection>',"
    " CASE WHEN w.both_ways THEN 'bothWays' ELSE 'aligned' END, '</sit:applicableForTrafficDirection>'"
)

_WORK_VALID_PERIOD = """
    CASE WHEN (w.daily_start IS NOT NULL AND w.daily_end IS NOT NULL) OR cardinality(w.weekdays) > 0
         THEN concat(
             '<com:validPeriod>',
             -- Local times of day; an end before the start means the window runs past midnight.
             CASE WHEN w.daily_start IS NOT NULL AND w.daily_end IS NOT NULL
                  THEN '<com:recurringTimePeriodOfDay><com:startTimeOfPeriod>' || to_char(w.daily_start, 'HH24:MI')
                       || ':00</com:startTimeOfPeriod><com:endTimeOfPeriod>' || to_char(w.daily_end, 'HH24:MI')
                       || ':00</com:endTimeOfPeriod></com:recurringTimePeriodOfDay>' END,
             CASE WHEN cardinality(w.weekdays) > 0
                  THEN (SELECT '<com:recurringDayWeekMonthPeriod>'
                               || string_agg('<com:applicableDay>' || (%(days)s::text[])[day.n + 1]
                                             || '</com:applicableDay>', '' ORDER BY day.n)
                               || '</com:recurringDayWeekMonthPeriod>'
                        FROM (SELECT DISTINCT unnest(w.weekdays) AS n) AS day) END,
             '</com:validPeriod>') END
"""

# A detour with a period of its own: that period, completed by the work's; without daily windows.
_DETOUR_VALIDITY = _validity(
    "coalesce(d.start_at, w.start_at)", "coalesce(d.end_at, w.end_at)", "'definedByValidityTimeSpec'"
)

_DETOURS = f"""
    (SELECT string_agg(concat(
                '<sit:situationRecord xsi:type="sit:ReroutingManagement" id="', w.id, '_detour', d.id,
                {_WORK_RECORD_TAIL},
                CASE WHEN d.start_at IS NULL AND d.end_at IS NULL THEN w.validity
                     ELSE {_DETOUR_VALIDITY} END,
                {_MANAGED_CAUSE}, w.location, {_NETWORK_MANAGEMENT},
                '<sit:reroutingManagementType>followDiversionSigns</sit:reroutingManagementType>'
                '<sit:reroutingItineraryDescription>' || {_VALUES_OPEN}, {_folded("d.description")},
                {_VALUES_CLOSE} || '</sit:reroutingItineraryDescription>'
                '<sit:signedRerouting>true</sit:signedRerouting>',
                '<sit:alternativeRoute xsi:type="loc:ItineraryByIndexedLocations">' || d.route
                || '</sit:alternativeRoute>',
                '</sit:situationRecord>'
            ), '' ORDER BY d.id)
     FROM (SELECT d.id,
                  CASE WHEN d.period IS NOT NULL AND NOT lower_inf(d.period) THEN {local_time_sql("lower(d.period)")}
                  END AS start_at,
                  CASE WHEN d.period IS NOT NULL AND NOT upper_inf(d.period) THEN {local_time_sql("upper(d.period)")}
                  END AS end_at,
                  CASE WHEN d.description = '' THEN d.name ELSE d.name || ': ' || d.description END AS description,
                  (SELECT string_agg('<loc:locationContainedInItinerary index="' || (part.n - 1) || '">'
                                     || {_linear("loc:location", "part.line", "''")}
                                     || '</loc:locationContainedInItinerary>', '' ORDER BY part.n)
                   FROM unnest(array_remove({lines_array_sql("d.geometry")}, NULL)) WITH ORDINALITY AS part(line, n)
                  ) AS route
           FROM roadworks_detour AS d
           WHERE d.roadwork_id = w.id
           OFFSET 0) AS d)
"""

_WORK_SITUATION = f"""concat(
    {_situation_head("w")},
    '<sit:situationRecord xsi:type="sit:', CASE WHEN w.construction IS NULL THEN 'MaintenanceWorks'
                                                ELSE 'ConstructionWorks' END,
    '" id="', w.id, {_WORK_RECORD_TAIL},
    w.validity,
    '<sit:impact><sit:numberOfLanesRestricted>' || NULLIF(w.lanes_affected, 0)
    || '</sit:numberOfLanesRestricted></sit:impact>',
    {_comment("w.comment")},
    w.location,
    '<sit:operatorActionStatus>' || w.action_status || '</sit:operatorActionStatus>',
    '<sit:roadworksIdentifier>', {_escaped("w.reference")}, '</sit:roadworksIdentifier>',
    '<sit:roadworksScale>' || (%(scales)s::jsonb ->> w.category) || '</sit:roadworksScale>',
    CASE WHEN w.is_emergency THEN '<sit:urgentRoadworks>true</sit:urgentRoadworks>' END,
    '<sit:_roadworksExtension><sit:streetWorks><ubx:streetWorksType>' || (%(street_works)s::jsonb ->> w.work_kind)
    || '</ubx:streetWorksType></sit:streetWorks></sit:_roadworksExtension>',
    CASE WHEN w.construction IS NULL
         THEN '<sit:roadMaintenanceType>' || coalesce(%(maintenance)s::jsonb ->> w.work_kind, 'roadworks')
              || '</sit:roadMaintenanceType>'
         ELSE '<sit:constructionWorkType>' || w.construction || '</sit:constructionWorkType>' END,
    '</sit:situationRecord>',
    CASE WHEN w.management IS NOT NULL THEN concat(
        '<sit:situationRecord xsi:type="sit:RoadOrCarriagewayOrLaneManagement" id="', w.id, '_management',
        {_WORK_RECORD_TAIL},
        w.validity, {_MANAGED_CAUSE}, w.location, {_NETWORK_MANAGEMENT},
        '<sit:roadOrCarriagewayOrLaneManagementType>', w.management,
        '</sit:roadOrCarriagewayOrLaneManagementType></sit:situationRecord>') END,
    CASE WHEN w.detoured THEN {_DETOURS} END,
    '</sit:situation>')"""

_LOCATION_GROUP = f"""'<sit:locationReference xsi:type="loc:LocationGroupByList">'
    || (SELECT string_agg({_linear("loc:locationContainedInGroup", "part.line", "w.names")}, '' ORDER BY part.n)
        FROM unnest(w.lines) WITH ORDINALITY AS part(line, n))
    || '</sit:locationReference>'"""

_ACCIDENT_DETAILS = "".join(
    [
        "concat('<sit:accidentType>', CASE WHEN i.collision IS NULL THEN 'accident' ELSE 'collision' END,"
        " '</sit:accidentType>',",
        " CASE WHEN i.category = ANY(%(serious)s)"
        " THEN '<sit:accidentType>seriousInjuryOrFatalAccident</sit:accidentType>' END,",
        """ '<sit:accidentType _extendedValue="' || (%(accident_type_extensions)s::jsonb ->> i.accident_type::text)"""
        """ || '">_extended</sit:accidentType>',""",
        " '<sit:collisionType>' || i.collision || '</sit:collisionType>',",
        *(
            f" CASE WHEN i.{field} THEN '<sit:groupOfVehiclesInvolved><com:vehicleCharacteristics><com:vehicleType>"
            f"' || (%(vehicle_types)s::jsonb ->> '{field}') || '</com:vehicleType></com:vehicleCharacteristics>"
            "</sit:groupOfVehiclesInvolved>' END,"
            for field, _vehicle_type in VEHICLE_TYPES
        ),
        *(
            f" '<sit:groupOfPeopleInvolved><sit:numberOfPeople>' || NULLIF(i.{field}, 0) || '</sit:numberOfPeople>"
            f"<sit:injuryStatusType>' || (%(casualties)s::jsonb ->> '{field}')"
            " || '</sit:injuryStatusType></sit:groupOfPeopleInvolved>',"
            for field, _status in CASUALTIES
        ),
        " CASE WHEN i.involves_pedestrian THEN '<sit:groupOfPeopleInvolved><sit:involvementRole>pedestrian"
        "</sit:involvementRole></sit:groupOfPeopleInvolved>' END)",
    ]
)

_INCIDENT_LINEAR = _linear(
    "sit:locationReference",
    "i.line",
    "i.names",
    display="'<loc:coordinatesForDisplay><loc:latitude>' || i.lat || '</loc:latitude><loc:longitude>' || i.lon"
    " || '</loc:longitude></loc:coordinatesForDisplay>'",
)


_INCIDENT_SITUATION = f"""concat(
    {_situation_head("i")},
    '<sit:situationRecord xsi:type="sit:', coalesce(i.record ->> 0, 'Accident'), '" id="', i.id,
    '" version="', i.version, '"><sit:situationRecordCreationTime>', i.created,
    '</sit:situationRecordCreationTime><sit:situationRecordVersionTime>', i.updated,
    '</sit:situationRecordVersionTime><sit:probabilityOfOccurrence>',
    CASE WHEN i.status = %(reported)s THEN 'probable' ELSE 'certain' END, '</sit:probabilityOfOccurrence>',
    CASE WHEN i.status = %(cleared)s
         THEN {_validity("i.occurred", "i.cleared", "'definedByValidityTimeSpec'")}
         ELSE {_validity("i.occurred", "i.expected_clearance", "'active'")} END,
    '<sit:impact><sit:numberOfLanesRestricted>' || NULLIF(i.lanes_blocked, 0)
    || '</sit:numberOfLanesRestricted></sit:impact>',
    {_comment("i.comment")},
    CASE WHEN i.line IS NOT NULL THEN {_INCIDENT_LINEAR}
         ELSE '<sit:locationReference xsi:type="loc:PointLocation">' || i.names
              || '<loc:pointByCoordinates><loc:pointCoordinates><loc:latitude>' || i.lat
              || '</loc:latitude><loc:longitude>' || i.lon
              || '</loc:longitude></loc:pointCoordinates></loc:pointByCoordinates></sit:locationReference>' END,
    CASE WHEN i.lanes_blocked <> 0 THEN '<sit:trafficConstrictionType>lanesBlocked</sit:trafficConstrictionType>'
    END,
    CASE WHEN i.record IS NULL THEN {_ACCIDENT_DETAILS}
         ELSE '<sit:' || (i.record ->> 1) || '>' || (i.record ->> 2) || '</sit:' || (i.record ->> 1) || '>' END,
    '</sit:situationRecord></sit:situation>')"""

# A roadwork's street names, each one not blank as a roadInformation. The usual names, none blank and none to
# escape, are joined by array_to_string; one regular expression match on them joined by newlines tells: a blank
# name is a line of nothing but whitespace there (a newline inside a name can only send it the long way, which is
# exact too).
_BETWEEN_ROAD_NAMES = "</loc:roadName></loc:roadInformation><loc:roadInformation><loc:roadName>"
_WORK_ROAD_NAMES = f"""
    CASE WHEN cardinality(r.street_names) = 0 THEN ''
         WHEN array_to_string(r.street_names, chr(10)) !~ '[&<>{_NOT_XML}]|(^|\\u000a)[{_WHITESPACE}]*(\\u000a|$)'
         THEN '<loc:supplementaryPositionalDescription><loc:roadInformation><loc:roadName>'
              || array_to_string(r.street_names, '{_BETWEEN_ROAD_NAMES}')
              || '</loc:roadName></loc:roadInformation></loc:supplementaryPositionalDescription>'
         ELSE coalesce((SELECT '<loc:supplementaryPositionalDescription>'
                               || string_agg({_road_name("street.name")}, '' ORDER BY street.n)
                               || '</loc:supplementaryPositionalDescription>'
                        FROM unnest(r.street_names) WITH ORDINALITY AS street(name, n)
                        WHERE street.name ~ '[^{_WHITESPACE}]'), '') END"""

# An incident's street name as a roadInformation, unless it is blank. The usual name, holding no whitespace but
# spaces and nothing to escape, and not only spaces, is written as it is after one regular expression match.
_INCIDENT_ROAD_NAME = f"""
    CASE WHEN i.street_name !~ '[{_UNUSUAL}]|^ *$'
         THEN '<loc:supplementaryPositionalDescription><loc:roadInformation><loc:roadName>' || i.street_name
              || '</loc:roadName></loc:roadInformation></loc:supplementaryPositionalDescription>'
         WHEN i.street_name ~ '[^{_WHITESPACE}]'
         THEN '<loc:supplementaryPositionalDescription>' || {_road_name("i.street_name")}
              || '</loc:supplementaryPositionalDescription>'
         ELSE '' END"""

# The whole document in one query. Each item's rows are sorted first, with their plain columns (the texts would
# make the sort carry 46 MB at 10,000 works and 10,000 incidents), then each stage below runs once per item
# (OFFSET 0 keeps a stage from being pulled up into the next, which would write its expressions into every use:
# a roadwork's location and validity go into each of its records). string_agg takes the situations in the order
# the subqueries give them, head first and foot last (one non-parallel plan: an Append reads its parts in order).
_DOCUMENT_SQL = f"""
WITH works AS (
    SELECT r.id, r.version, r.reference, r.title, r.description, r.street_names, r.status, r.work_kind,
           r.traffic_management, r.direction, r.lanes_affected, r.category, r.is_emergency, r.daily_start,
           r.daily_end, r.weekdays, r.geometry, r.period, r.created_at, r.updated_at,
           -- One hashed look-up per work; the detours' subquery then runs for the one work in ten that has any.
           r.id IN (SELECT d.roadwork_id FROM roadworks_detour AS d) AS detoured
    FROM roadworks_roadwork AS r
    WHERE {{works}}
    ORDER BY lower(r.period), r.id
),
work_lines AS (
    -- array_remove: an empty line (LINESTRING EMPTY) has no position list, and no place in the feed.
    SELECT r.*, array_remove({ROADWORK_LINES_SQL}, NULL) AS lines, {_WORK_ROAD_NAMES} AS names,
           {local_time_sql("lower(r.period)")} AS start_at, {local_time_sql("upper(r.period)")} AS end_at
    FROM works AS r
    OFFSET 0
),
work_texts AS (
    SELECT w.id, w.version, w.reference, w.status, w.work_kind, w.lanes_affected, w.category, w.is_emergency,
           w.detoured, w.start_at, w.end_at,
           {local_time_sql("w.created_at")} AS created, {local_time_sql("w.updated_at")} AS updated,
           CASE WHEN w.description = '' THEN w.title ELSE w.title || ': ' || w.description END AS comment,
           ST_Dimension(w.geometry) = 2 OR w.direction = %(both)s AS both_ways,
           %(action_statuses)s::jsonb ->> w.status AS action_status,
           %(construction)s::jsonb ->> w.work_kind AS construction,
           %(management)s::jsonb ->> w.traffic_management AS management,
           {_validity("w.start_at", "w.end_at", "'definedByValidityTimeSpec'", _WORK_VALID_PERIOD)} AS validity,
           CASE WHEN cardinality(w.lines) = 1 THEN {_linear("sit:locationReference", "w.lines[1]", "w.names")}
                ELSE {_LOCATION_GROUP} END AS location
    FROM work_lines AS w
    WHERE cardinality(w.lines) > 0
    OFFSET 0
),
incidents AS (
    SELECT i.id, i.version, i.kind, i.status, i.description, i.street_name, i.lanes_blocked, i.location,
           i.affected_line, i.direction, i.occurred_at, i.cleared_at, i.expected_clearance_at, i.created_at,
           i.updated_at, a.category, a.kind AS accident_kind, a.type AS accident_type,
           {", ".join(f"a.{field}" for field, _vehicle_type in VEHICLE_TYPES)}, a.involves_pedestrian,
           {", ".join(f"a.{field}" for field, _status in CASUALTIES)}
    FROM traffic_incident AS i
    LEFT JOIN traffic_accident AS a ON a.incident_id = i.id
    WHERE {{incidents}}
    ORDER BY i.occurred_at, i.id
),
incident_points AS (
    SELECT i.*, {poslist_sql("i.location")} AS point,
           CASE WHEN i.affected_line IS NOT NULL THEN {INCIDENT_LINE_SQL} END AS line
    FROM incidents AS i
    OFFSET 0
),
incident_texts AS (
    SELECT i.*, split_part(i.point, ' ', 1) AS lat, split_part(i.point, ' ', 2) AS lon,
           {local_time_sql("i.occurred_at")} AS occurred,
           CASE WHEN i.cleared_at IS NOT NULL THEN {local_time_sql("i.cleared_at")} END AS cleared,
           CASE WHEN i.expected_clearance_at IS NOT NULL THEN {local_time_sql("i.expected_clearance_at")}
           END AS expected_clearance,
           {local_time_sql("i.created_at")} AS created, {local_time_sql("i.updated_at")} AS updated,
           coalesce(NULLIF(i.description, ''), %(labels)s::jsonb ->> i.kind) AS comment,
           {_INCIDENT_ROAD_NAME} AS names,
           -- The record of any other kind than an accident: [type, its type element, value].
           CASE WHEN i.kind <> %(accident)s
                THEN coalesce(%(records)s::jsonb -> i.kind, %(records)s::jsonb -> %(other)s) END AS record,
           %(collision_types)s::jsonb ->> i.accident_kind::text AS collision
    FROM incident_points AS i
    OFFSET 0
)
SELECT string_agg(document.part, '')
FROM (
    SELECT concat(%(payload)s, {_attribute("%(lang)s::text")}, ' modelBaseVersion="3"><com:publicationTime>',
                  {local_time_sql("%(published)s::timestamptz")}, '</com:publicationTime><com:publicationCreator>',
                  '<com:country>{COUNTRY}</com:country><com:nationalIdentifier>',
                  {_escaped("%(publisher)s::text")}, '</com:nationalIdentifier></com:publicationCreator>') AS part
    UNION ALL
    SELECT {_WORK_SITUATION} FROM work_texts AS w
    UNION ALL
    SELECT {_INCIDENT_SITUATION} FROM incident_texts AS i
    UNION ALL
    SELECT '</d2:payload>' || chr(10)
) AS document
"""

_PAYLOAD_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<d2:payload '
    + " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    + ' xsi:type="sit:SituationPublication" lang='
)


def _parameters(now: datetime, filters: FeedFilters, published: datetime) -> tuple[str, dict[str, Any]]:
    works, incidents, params = feed_where(now, filters)
    params.update(
        payload=_PAYLOAD_OPEN,
        lang=settings.LANGUAGE_CODE,
        published=published,
        publisher=settings.AUMAN_FEED_PUBLISHER,
        both=Direction.BOTH,
        backward=Direction.BACKWARD,
        incident_backward=IncidentDirection.BACKWARD,
        days=list(DAYS),
        action_statuses=json.dumps(OPERATOR_ACTION_STATUSES),
        construction=json.dumps(CONSTRUCTION_WORK_TYPES),
        maintenance=json.dumps(ROAD_MAINTENANCE_TYPES),
        street_works=json.dumps(STREET_WORKS_TYPES),
        management=json.dumps(MANAGEMENT_TYPES),
        scales=json.dumps(ROADWORKS_SCALES),
        reported=IncidentStatus.REPORTED,
        cleared=IncidentStatus.CLEARED,
        accident=IncidentKind.ACCIDENT,
        other=IncidentKind.OTHER,
        # The comment of an incident without a description: its kind's label in the feed's language.
        labels=incident_labels(),
        records=json.dumps(INCIDENT_RECORDS),
        serious=[AccidentCategory.KILLED.value, AccidentCategory.SERIOUSLY_INJURED.value],
        collision_types=json.dumps(COLLISION_TYPES),
        accident_type_extensions=json.dumps(ACCIDENT_TYPE_EXTENSIONS),
        vehicle_types=json.dumps(dict(VEHICLE_TYPES)),
        casualties=json.dumps(dict(CASUALTIES)),
    )
    return _DOCUMENT_SQL.format(works=works, incidents=incidents), params


def document(*, now: datetime, filters: FeedFilters | None = None, published: datetime | None = None) -> bytes:
    """The SituationPublication as UTF-8 bytes, written by PostgreSQL in one query.

    `now` decides what is in the feed (a work stays a day past its end); `published` is its publicationTime
    (default: `now`)."""
    sql, params = _parameters(now, filters or FeedFilters(), published or now)
    return fetch_document(sql, params)


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
    return document(now=now or timezone.now(), filters=filters)


@feed_view
def situation_feed(request: HttpRequest) -> HttpResponse:
    """GET /feeds/datex2/v3/situations.xml[?bbox=...][&updated_since=ISO 8601][&active_on=date or date-time]"""
    filters, errors = parse_feed_filters(request.GET)
    if errors:
        return bad_request(errors)
    now = timezone.now()
    return serve_feed(
        request,
        name=FEED_NAME,
        fingerprint=lambda: situation_fingerprint(now=now, filters=filters),
        build=lambda built_at: document(now=now, filters=filters, published=built_at),
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
