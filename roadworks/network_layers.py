"""Loading the public transport and emergency route layers (rule C7) from GeoJSON.

A file holds one kind of feature (tram lines, bus lines, stops or emergency routes), as a FeatureCollection in WGS84
(RFC 7946). Each feature is checked like any geometry entering AUMAn (auman.geo: valid, inside the service area, the
geometry type its kind needs) and needs a name (property "name", else "ref"). Features carrying an id (the Feature's
"id", or the property "id" or "@id" as OpenStreetMap exports write it) are matched to the stored ones by it, so
loading a file again updates them; features without an id are added. With replace, the kind's stored features that
the file does not hold are removed: the file becomes the layer. Rejected features are reported, the rest loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from auman.geo import clean_geometry, parse_geojson_geometry

from .models import NETWORK_GEOMETRY_TYPES, NetworkFeature, NetworkKind

MSG_FILE_UNREADABLE = _("{path} is not a readable GeoJSON file: {error}")
MSG_FILE_NO_FEATURES = _("{path} holds no GeoJSON FeatureCollection or Feature.")
MSG_UNKNOWN_KIND = _("'{kind}' is not a kind of network feature; use one of: {kinds}.")
MSG_NOT_A_FEATURE = _("not a GeoJSON Feature")
MSG_PROPERTIES = _("'properties' must be an object")
MSG_NO_NAME = _("no name: give the property 'name' (or 'ref')")
MSG_NO_GEOMETRY = _("no geometry")
MSG_DUPLICATE_ID = _("the id appears twice in the file")
MSG_FEATURE = _("feature {number}")
MSG_STRICT = _("{count} feature(s) rejected, nothing loaded:")

NAME_PROPERTIES = ("name", "ref")
ID_PROPERTIES = ("id", "@id")


class NetworkFileError(Exception):
    """The file as a whole cannot be read: nothing is loaded."""


@dataclass
class LoadResult:
    created: int = 0
    updated: int = 0
    removed: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Checked:
    source_id: str
    name: str
    ref: str
    geometry: Any


def read_features(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NetworkFileError(str(MSG_FILE_UNREADABLE).format(path=path, error=exc)) from exc
    if isinstance(data, dict) and data.get("type") == "FeatureCollection" and isinstance(data.get("features"), list):
        return data["features"]
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    raise NetworkFileError(str(MSG_FILE_NO_FEATURES).format(path=path))


def _text(value: Any) -> str:
    return str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""


def _check(kind: str, feature: Any) -> _Checked:
    """The stored form of one feature, or ValidationError naming the problem."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ValidationError(MSG_NOT_A_FEATURE)
    properties = feature.get("properties") or {}
    if not isinstance(properties, dict):
        raise ValidationError(MSG_PROPERTIES)
    name = next((_text(properties.get(key)) for key in NAME_PROPERTIES if _text(properties.get(key))), "")
    if not name:
        raise ValidationError(MSG_NO_NAME)
    if feature.get("geometry") is None:
        raise ValidationError(MSG_NO_GEOMETRY)
    geometry = clean_geometry(parse_geojson_geometry(feature["geometry"]), allowed_types=NETWORK_GEOMETRY_TYPES[kind])
    source_id = _text(feature.get("id")) or next(
        (_text(properties.get(key)) for key in ID_PROPERTIES if _text(properties.get(key))), ""
    )
    return _Checked(
        source_id=source_id[:128], name=name[:200], ref=_text(properties.get("ref"))[:64], geometry=geometry
    )


@transaction.atomic
def network_layer_load(*, kind: str, features: list[Any], replace: bool = False, strict: bool = False) -> LoadResult:
    """Store the features of one kind; see the module docstring. strict: any rejected feature refuses the file."""
    if kind not in NetworkKind.values:
        raise NetworkFileError(str(MSG_UNKNOWN_KIND).format(kind=kind, kinds=", ".join(NetworkKind.values)))
    result = LoadResult()
    checked: list[_Checked] = []
    seen: set[str] = set()
    for number, feature in enumerate(features, start=1):
        label = str(MSG_FEATURE).format(number=number)
        try:
            item = _check(kind, feature)
        except ValidationError as exc:
            result.rejected.append(f"{label}: {' '.join(exc.messages)}")
            continue
        if item.source_id:
            label = f"{label} (id {item.source_id})"
            if item.source_id in seen:
                result.rejected.append(f"{label}: {MSG_DUPLICATE_ID}")
                continue
            seen.add(item.source_id)
        checked.append(item)
    if strict and result.rejected:
        raise NetworkFileError(str(MSG_STRICT).format(count=len(result.rejected)) + "\n" + "\n".join(result.rejected))
    kept: list[int] = []
    for item in checked:
        values = {"name": item.name, "ref": item.ref, "geometry": item.geometry}
        if item.source_id:
            feature, created = NetworkFeature.objects.update_or_create(
                kind=kind, source_id=item.source_id, defaults=values
            )
        else:
            feature, created = NetworkFeature.objects.create(kind=kind, **values), True
        kept.append(feature.pk)
        if created:
            result.created += 1
        else:
            result.updated += 1
    if replace:
        result.removed, _details = NetworkFeature.objects.filter(kind=kind).exclude(pk__in=kept).delete()
    return result
