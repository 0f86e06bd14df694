"""DATEX II SituationPublication, v3 (3.x messageContainer or bare payload) and v2.3 (d2LogicalModel), with the
German roadworks profile's extensions (MDM / Mobilithek: gmlLineString in linearExtension, overallSituation,
commentType2).

Lookups ignore namespaces: real feeds use the v2 namespace for v2.3, or other prefixes, or put extension elements in
the main namespace, and stray from the XSD in element order and optional parts. What is read:

- every `situationRecord` (whatever its prefix) with its `id` and `xsi:type`;
- its time: validity/validityTimeSpecification/overallStartTime and overallEndTime;
- its place, best first: GML posLists (latitude longitude pairs: the German profile, v3 gmlLineString), then the
  coordinates of its points in order (TPEG or ALERT-C with coordinates, pointByCoordinates), then locationForDisplay;
- its name and comments: generalPublicComment values (the German commentType2 `roadworksName` as the title), or the
  overallSituation's name of the situation.

A record without id or place is skipped and reported; so are record types that are not roadworks, closures or
traffic events (a parking status, for instance).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from lxml import etree

from . import (
    MSG_NO_GEOMETRY,
    MSG_NO_ID,
    MSG_UNSUPPORTED_RECORD,
    FeedError,
    Item,
    ParseResult,
    lat_lon_list,
    line,
    moment,
    text,
)

MSG_NOT_DATEX = _("This is not a DATEX II SituationPublication: {detail}")

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

WORKS = {"MaintenanceWorks", "ConstructionWorks", "Roadworks", "RoadworksExtended"}
MANAGEMENT = {"RoadOrCarriagewayOrLaneManagement", "SpeedManagement", "ReroutingManagement", "NetworkManagement"}
INCIDENTS = {"Accident", "VehicleObstruction", "GeneralObstruction", "AnimalPresenceObstruction", "PoorEnvironment"}
WARNINGS = {
    "AbnormalTraffic",
    "EnvironmentalObstruction",
    "InfrastructureDamageObstruction",
    "NonWeatherRelatedRoadConditions",
    "WeatherRelatedRoadConditions",
    "PublicEvent",
    "DisturbanceActivity",
    "EquipmentOrSystemFault",
    "GeneralNetworkManagement",
    "WinterDrivingManagement",
    "RoadConditions",
    "TransitInformation",
}
CLOSING = {"roadClosed", "carriagewayClosures", "closedPermanentlyForTheWinter"}
NARROWING = {
    "laneClosures",
    "narrowLanes",
    "singleAlternateLineTraffic",
    "contraflow",
    "hardShoulderRunningNotInOperation",
    "lanesDeviated",
    "useOfSpecifiedLanesOrCarriagewaysAllowed",
}


def _local(element: Any) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element if _local(child) == name]


def _child(element: Any, *path: str) -> Any | None:
    for name in path:
        found = _children(element, name) if element is not None else []
        element = found[0] if found else None
    return element


def _descendants(element: Any, name: str) -> list[Any]:
    return [node for node in element.iter() if _local(node) == name]


def _value(element: Any, *path: str) -> str:
    node = _child(element, *path)
    return text(node.text) if node is not None else ""


def _type(element: Any) -> str:
    """The record's xsi:type without prefix ("sit:MaintenanceWorks" -> "MaintenanceWorks")."""
    return text(element.get(XSI_TYPE)).rsplit(":", 1)[-1]


def parse(data: bytes) -> ParseResult:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(str(MSG_NOT_DATEX).format(detail=exc)) from exc
    if _local(root) not in ("d2LogicalModel", "messageContainer", "payload", "payloadPublication"):
        raise FeedError(str(MSG_NOT_DATEX).format(detail=f"root element {_local(root)}"))
    situations = _descendants(root, "situation")
    publications = [root, *_descendants(root, "payloadPublication"), *_descendants(root, "payload")]
    if not situations and not any("SituationPublication" in _type(p) for p in publications):
        raise FeedError(str(MSG_NOT_DATEX).format(detail="no SituationPublication"))
    result = ParseResult()
    for situation in situations:
        _situation(result, situation)
    return result


def _situation(result: ParseResult, situation: Any) -> None:
    overall = next(iter(_descendants(situation, "overallSituation")), None)
    overall_name = _comments(overall).get("roadworksName", "") if overall is not None else ""
    for index, record in enumerate(_children(situation, "situationRecord")):
        record_id = text(record.get("id"))
        if not record_id:
            result.skip(f"{situation.get('id', '?')}/situationRecord[{index}]", MSG_NO_ID)
            continue
        record_type = _type(record)
        kind, restriction = _kind(record, record_type)
        if kind is None:
            result.skip(record_id, MSG_UNSUPPORTED_RECORD, kind=record_type or "?")
            continue
        geometry = _geometry(record)
        if geometry is None:
            result.skip(record_id, MSG_NO_GEOMETRY)
            continue
        comments = _comments(record)
        road_number = next((text(n.text) for n in _descendants(record, "roadNumber") if text(n.text)), "")
        road_name = next((text(v.text) for n in _descendants(record, "roadName") for v in _descendants(n, "value")), "")
        name = comments.pop("roadworksName", "")
        title = overall_name or name or " ".join(filter(None, [road_number, road_name])) or record_type
        description = "\n".join(filter(None, [name if name != title else "", *comments.values()]))
        validity = _child(record, "validity", "validityTimeSpecification")
        result.add(
            Item(
                source_item_id=record_id,
                kind=kind,
                geometry=geometry,
                title=title,
                description=description,
                start=moment(_value(validity, "overallStartTime")) if validity is not None else None,
                end=moment(_value(validity, "overallEndTime")) if validity is not None else None,
                restriction=restriction,
                properties={
                    "record_type": record_type,
                    "version": text(record.get("version")),
                    "situation": text(situation.get("id")),
                    "road_number": road_number,
                    "road_name": road_name,
                    "severity": _value(record, "severity") or _value(situation, "overallSeverity"),
                    "probability": _value(record, "probabilityOfOccurrence"),
                    "comments": comments,
                },
            )
        )


def _kind(record: Any, record_type: str) -> tuple[str | None, str]:
    management = _value(record, "roadOrCarriagewayOrLaneManagementType") or _value(
        record, "roadOrCarriagewayOrLaneManagementTypeExtension"
    )
    if record_type in WORKS:
        remaining = _value(record, "impact", "capacityRemaining")
        restricted = _value(record, "impact", "numberOfLanesRestricted")
        if remaining in ("0", "0.0"):
            return "roadworks", "closure"
        return "roadworks", "lane_closure" if restricted not in ("", "0") else ""
    if record_type in MANAGEMENT:
        if management in CLOSING:
            return "closure", "closure"
        return "closure" if management in NARROWING else "warning", "lane_closure" if management in NARROWING else ""
    if record_type in INCIDENTS:
        return "incident", ""
    if record_type in WARNINGS:
        return "warning", ""
    return None, ""


def _comments(record: Any) -> dict[str, str]:
    """Comments by type (German profile: commentType2; DATEX: commentType; else numbered), in order."""
    found: dict[str, str] = {}
    for index, comment in enumerate(_children(record, "generalPublicComment")):
        body = _child(comment, "comment")
        values = [text(v.text) for v in _descendants(comment if body is None else body, "value") if text(v.text)]
        if not values:
            continue
        kind = next(
            (text(n.text) for n in comment.iter() if _local(n) in ("commentType2", "commentType") and text(n.text)),
            f"comment{index}",
        )
        found[kind] = f"{found[kind]}; {values[0]}" if kind in found else values[0]
    return found


def _geometry(record: Any) -> dict[str, Any] | None:
    locations = [node for node in record if _local(node) in ("groupOfLocations", "locationReference", "location")] or [
        record
    ]
    lines = []
    for location in locations:
        for pos_list in _descendants(location, "posList"):
            positions = lat_lon_list(text(pos_list.text).split())
            shape = line(positions) if positions else None
            if shape and shape["type"] == "LineString":
                lines.append(shape["coordinates"])
    if len(lines) == 1:
        return {"type": "LineString", "coordinates": lines[0]}
    if lines:
        return {"type": "MultiLineString", "coordinates": lines}
    points: list[list[float]] = []
    for location in locations:
        for coordinates in _descendants(location, "pointCoordinates"):
            pair = lat_lon_list([_value(coordinates, "latitude"), _value(coordinates, "longitude")])
            if pair:
                points.extend(pair)
    if points:
        return line(points)
    for location in locations:
        for shown in _descendants(location, "locationForDisplay"):
            pair = lat_lon_list([_value(shown, "latitude"), _value(shown, "longitude")])
            if pair:
                return {"type": "Point", "coordinates": pair[0]}
    return None
