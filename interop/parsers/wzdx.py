"""WZDx WorkZoneFeed 4.x (4.0 to 4.2), and 3.x where it is easy: a GeoJSON FeatureCollection of road events.

4.x keeps the event's common fields in `properties.core_details` and its id on the Feature; 3.x has them flat in
`properties` with `road_event_id`. Real feeds mix the two (a 4.2 feed still sending `road_event_feed_info`), so each
field is looked for in both places.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy as _

from . import (
    MSG_NO_GEOMETRY,
    MSG_NO_ID,
    MSG_UNSUPPORTED_RECORD,
    FeedError,
    Item,
    ParseResult,
    clean_geometry,
    moment,
    text,
)

MSG_NOT_WZDX = _("This is not a WZDx feed: expected a GeoJSON FeatureCollection with feed_info.")

KINDS = {"work-zone": "roadworks", "detour": "other", "restriction": "warning", "incident": "incident"}
# vehicle_impact (WZDx 4.x; 3.x uses the same values)
RESTRICTIONS = {
    "all-lanes-closed": "closure",
    "some-lanes-closed": "lane_closure",
    "some-lanes-closed-merge-left": "lane_closure",
    "some-lanes-closed-merge-right": "lane_closure",
    "some-lanes-closed-split": "lane_closure",
    "alternating-one-way": "lane_closure",
    "flagging": "lane_closure",
    "temporary-traffic-signal": "lane_closure",
    "all-lanes-open": "none",
    "all-lanes-open-shift-left": "restriction",
    "all-lanes-open-shift-right": "restriction",
    "all-lanes-open-split": "restriction",
    "merge-left": "restriction",
    "merge-right": "restriction",
    "shift-left": "restriction",
    "shift-right": "restriction",
    "unknown": "",
}


def parse(data: bytes) -> ParseResult:
    try:
        feed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{MSG_NOT_WZDX} ({exc})") from exc
    if (
        not isinstance(feed, dict)
        or feed.get("type") != "FeatureCollection"
        or not isinstance(feed.get("features"), list)
        or not ({"feed_info", "road_event_feed_info"} & set(feed))
    ):
        raise FeedError(str(MSG_NOT_WZDX))
    result = ParseResult()
    for index, feature in enumerate(feed["features"]):
        _feature(result, index, feature)
    return result


def _feature(result: ParseResult, index: int, feature: Any) -> None:
    where = f"features[{index}]"
    if not isinstance(feature, dict) or not isinstance(feature.get("properties"), dict):
        result.skip(where, MSG_NO_ID)
        return
    props = feature["properties"]
    core = props.get("core_details") if isinstance(props.get("core_details"), dict) else {}
    item_id = text(feature.get("id")) or text(props.get("road_event_id")) or text(props.get("id"))
    if not item_id:
        result.skip(where, MSG_NO_ID)
        return
    event_type = text(core.get("event_type") or props.get("event_type")) or "work-zone"
    kind = KINDS.get(event_type)
    if kind is None:
        result.skip(item_id, MSG_UNSUPPORTED_RECORD, kind=event_type)
        return
    geometry = clean_geometry(feature.get("geometry"))
    if geometry is None:
        result.skip(item_id, MSG_NO_GEOMETRY)
        return
    roads = core.get("road_names") or props.get("road_names") or [props.get("road_name")]
    road_names = [text(name) for name in roads if text(name)] if isinstance(roads, list) else [text(roads)]
    direction = text(core.get("direction") or props.get("direction"))
    title = text(core.get("name") or props.get("name")) or " ".join(filter(None, [", ".join(road_names), direction]))
    impact = text(props.get("vehicle_impact"))
    result.add(
        Item(
            source_item_id=item_id,
            kind=kind,
            geometry=geometry,
            title=title,
            description=text(core.get("description") or props.get("description")),
            start=moment(props.get("start_date")),
            end=moment(props.get("end_date")),
            restriction=RESTRICTIONS.get(impact, ""),
            properties={
                "event_type": event_type,
                "road_names": road_names,
                "direction": direction,
                "vehicle_impact": impact,
                "event_status": text(props.get("event_status")),
                "data_source_id": text(core.get("data_source_id") or props.get("data_source_id")),
            },
        )
    )
