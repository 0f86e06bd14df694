"""Checks of feed bodies against their official schemas and their standards' business rules.

The schemas ship in auman/data/ (copies of the official files, see auman/data/SOURCES.md), so
``manage.py check_feeds`` works on a server without ../shared; the tests validate against ../shared itself.

The business rules are what the schemas cannot say and the WZDx feed dashboard checks: every road event
names a data source of the feed, every time is UTC ("Z"), ids are unique and related road events exist,
an event ends after it starts, and a line has at least two distinct points.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from jsonschema import Draft7Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DATA = Path(settings.BASE_DIR) / "auman" / "data"
SCHEMAS = DATA / "schemas"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
DATE_KEYS = ("start_date", "end_date", "creation_date", "update_date")


def _resources(*folders: Path) -> Registry:
    resources = []
    for folder in folders:
        for path in sorted(folder.glob("*.json")):
            contents = json.loads(path.read_text())
            resources.append((contents["$id"], Resource.from_contents(contents, default_specification=DRAFT7)))
    return Registry().with_resources(resources)


@functools.cache
def wzdx_validator() -> Draft7Validator:
    return Draft7Validator(json.loads((DATA / "wzdx42.schema.json").read_text()), format_checker=FormatChecker())


@functools.cache
def tdx_validator() -> Draft7Validator:
    root = json.loads((SCHEMAS / "tdx-1.1" / "RoadIncidentFeed.json").read_text())
    registry = _resources(SCHEMAS / "tdx-1.1", SCHEMAS / "geojson.org")
    return Draft7Validator(root, registry=registry, format_checker=FormatChecker())


@functools.cache
def geojson_validator() -> Draft7Validator:
    root = json.loads((SCHEMAS / "geojson.org" / "FeatureCollection.json").read_text())
    return Draft7Validator(root, format_checker=FormatChecker())


def schema_errors(validator: Draft7Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(document)'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _parse(body: bytes) -> tuple[Any, list[str]]:
    try:
        return json.loads(body), []
    except ValueError as exc:
        return None, [f"not JSON: {exc}"]


def _dates(properties: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key in DATE_KEYS:
        if key in properties:
            yield key, properties[key]
    for key in ("creation_date", "update_date"):
        if key in properties.get("core_details", {}):
            yield f"core_details/{key}", properties["core_details"][key]


def road_event_rule_errors(document: dict[str, Any]) -> list[str]:
    """The WZDx/TDx business rules over a parsed feed (schema-valid or not: missing parts are skipped)."""
    errors: list[str] = []
    info = document.get("feed_info", {})
    sources = {source.get("data_source_id") for source in info.get("data_sources", [])}
    for key in ("update_date",):
        if key in info and not RFC3339_UTC.match(str(info[key])):
            errors.append(f"feed_info/{key}: {info[key]!r} is not a UTC time")
    for source in info.get("data_sources", []):
        if "update_date" in source and not RFC3339_UTC.match(str(source["update_date"])):
            errors.append(f"data source {source.get('data_source_id')}: update_date is not a UTC time")
    features = document.get("features", [])
    ids = [feature.get("id") for feature in features]
    known = set(ids)
    if len(known) != len(ids):
        errors.append("road event ids are not unique")
    for feature in features:
        name = feature.get("id")
        properties = feature.get("properties", {})
        core = properties.get("core_details", {})
        if core.get("data_source_id") not in sources:
            errors.append(f"{name}: data_source_id {core.get('data_source_id')!r} names no data source of the feed")
        for key, value in _dates(properties):
            if not RFC3339_UTC.match(str(value)):
                errors.append(f"{name}: {key} {value!r} is not a UTC time")
        start, end = properties.get("start_date"), properties.get("end_date")
        if start and end and str(end) <= str(start):
            errors.append(f"{name}: end_date is not after start_date")
        for related in core.get("related_road_events", []):
            if related.get("id") not in known:
                errors.append(f"{name}: related road event {related.get('id')} is not in the feed")
        geometry = feature.get("geometry") or {}
        if geometry.get("type") == "LineString":
            distinct = {tuple(point) for point in geometry.get("coordinates", [])}
            if len(distinct) < 2:
                errors.append(f"{name}: the line has fewer than two distinct points")
    return errors


def validate_wzdx(body: bytes) -> list[str]:
    document, errors = _parse(body)
    if errors:
        return errors
    return schema_errors(wzdx_validator(), document) + road_event_rule_errors(document)


def validate_tdx(body: bytes) -> list[str]:
    document, errors = _parse(body)
    if errors:
        return errors
    return schema_errors(tdx_validator(), document) + road_event_rule_errors(document)


def validate_geojson(body: bytes) -> list[str]:
    document, errors = _parse(body)
    if errors:
        return errors
    errors = schema_errors(geojson_validator(), document)
    ids = [feature.get("id") for feature in document.get("features", [])]
    if len(set(ids)) != len(ids):
        errors.append("feature ids are not unique")
    return errors
