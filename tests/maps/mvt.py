"""A small Mapbox Vector Tile decoder for the tests (spec 2.1), so they need no protobuf library.

decode(bytes) -> {layer name: MvtLayer}; each feature has its properties and its geometry as tile coordinates.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

GEOMETRY_TYPES = {0: "Unknown", 1: "Point", 2: "LineString", 3: "Polygon"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) for each field of a protobuf message."""
    pos, out = 0, []
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} is not used by MVT")
        out.append((number, wire, value))
    return out


def _packed(data: bytes) -> list[int]:
    pos, out = 0, []
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(data: bytes) -> object:
    for number, _wire, raw in _fields(data):
        if number == 1:
            return raw.decode()
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number == 4:
            return raw if raw < 2**63 else raw - 2**64
        if number == 5:
            return raw
        if number == 6:
            return _zigzag(raw)
        if number == 7:
            return bool(raw)
    raise ValueError("empty value")


def _geometry(commands: list[int]) -> list[list[tuple[int, int]]]:
    """The parts (point runs, lines or rings) as lists of absolute tile coordinates."""
    parts: list[list[tuple[int, int]]] = []
    x = y = i = 0
    while i < len(commands):
        command, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if command == 7:  # ClosePath
            continue
        if command == 1:
            parts.append([])
        for _ in range(count):
            x += _zigzag(commands[i])
            y += _zigzag(commands[i + 1])
            i += 2
            parts[-1].append((x, y))
    return parts


@dataclass
class MvtFeature:
    type: str
    properties: dict[str, object]
    geometry: list[list[tuple[int, int]]]
    id: int | None = None


@dataclass
class MvtLayer:
    name: str
    extent: int = 4096
    version: int = 1
    features: list[MvtFeature] = field(default_factory=list)


def decode(tile: bytes) -> dict[str, MvtLayer]:
    layers: dict[str, MvtLayer] = {}
    for number, _wire, raw in _fields(tile):
        if number != 3:
            continue
        name, extent, version = "", 4096, 1
        keys: list[str] = []
        values: list[object] = []
        raw_features: list[bytes] = []
        for lnumber, _lwire, lraw in _fields(raw):
            if lnumber == 1:
                name = lraw.decode()
            elif lnumber == 2:
                raw_features.append(lraw)
            elif lnumber == 3:
                keys.append(lraw.decode())
            elif lnumber == 4:
                values.append(_value(lraw))
            elif lnumber == 5:
                extent = lraw
            elif lnumber == 15:
                version = lraw
        layer = MvtLayer(name=name, extent=extent, version=version)
        for fraw in raw_features:
            fid, tags, gtype, commands = None, [], 0, []
            for fnumber, _fwire, fvalue in _fields(fraw):
                if fnumber == 1:
                    fid = fvalue
                elif fnumber == 2:
                    tags = _packed(fvalue)
                elif fnumber == 3:
                    gtype = fvalue
                elif fnumber == 4:
                    commands = _packed(fvalue)
            properties = {keys[tags[i]]: values[tags[i + 1]] for i in range(0, len(tags), 2)}
            layer.features.append(MvtFeature(GEOMETRY_TYPES[gtype], properties, _geometry(commands), fid))
        layers[name] = layer
    return layers
