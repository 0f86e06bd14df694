"""Destatis Unfallatlas CSV files -> Accident rows.

The Unfallatlas (https://unfallatlas.statistikportal.de, open data under dl-de/by-2-0) publishes one CSV file per
year with the accidents with personal injury that the police recorded. The files of different years differ:

- ';' separated with decimal commas; CRLF or LF line ends;
- UTF-8 with or without a BOM in newer years, Windows-1252 / Latin-1 in some older ones (decoded line by line:
  UTF-8 first, then cp1252, then Latin-1, which accepts any byte);
- the columns change name and order. The id is UIDENTSTLAE (UIDENTSTLA in one year) or only a row number
  (OBJECTID, OBJECTID_1, OID_, FID); light is ULICHTVERH or LICHT; road condition IstStrassenzustand,
  STRZUSTAND, USTRZUSTAND or IstStrasse; "other road user" IstSonstige or IstSonstig; IstGkfz (goods vehicle)
  is missing in some early years; newer years add PLST (plausibility), which is not needed here.

So columns are found by name (case-insensitive) through the aliases in COLUMNS, never by position.

Time: the files give year, month, hour and weekday (UWOCHENTAG 1 = Sunday ... 7 = Saturday), not the day.
occurred_at is therefore a representative instant, chosen deterministically so that a re-import yields the same
value: the first day of that month that falls on that weekday, at the full hour, Europe/Berlin (the data are
German). time_precision is "hour_in_month", so readers know it means "one such weekday in that month, at that
hour" (work-zone matching, for one, compares the whole month).

Place: XGCSWGS84/YGCSWGS84 (lon/lat) when present, else LINREFX/LINREFY (EPSG:25832); stored in AUMAN_SRID.

Idempotence: source "unfallatlas" and source_key "<year>:uid:<UIDENTSTLAE>" (Destatis' accident id), else
"<year>:oid:<row id>", else, for files without any id column, "h:" and a hash of the row's values. Rows go into a
temporary table by COPY, 5,000 at a time, and from there into traffic_accident in one INSERT ... ON CONFLICT DO
NOTHING per batch, which also tests the service area in PostGIS.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext_lazy as _

from auman.api import MAX_YEAR, MIN_YEAR
from auman.geo import service_area_geometry

from ..models import AccidentSource, TimePrecision

BERLIN = ZoneInfo("Europe/Berlin")
LINREF_SRID = 25832
BATCH_SIZE = 5000

MSG_FILE_MISSING = _("File not found: {path}")
MSG_FILE_UNREADABLE = _("Cannot read {path}: {error}")
MSG_FILE_EMPTY = _("{path} is empty: an Unfallatlas file starts with a header line.")
MSG_FILE_COLUMNS = _("{path} lacks the columns {columns}: is this an Unfallatlas CSV file?")
MSG_FILE_NO_COORDINATES = _("{path} has neither XGCSWGS84/YGCSWGS84 nor LINREFX/LINREFY columns.")
MSG_REGION_CODE = _("A region code has 2 (Land), 3 (Regierungsbezirk), 5 (Kreis) or 8 (Gemeinde) digits, not '{code}'.")
MSG_ROW_TOO_SHORT = _("The row has {found} fields, the header {expected}.")
MSG_ROW_TOO_LONG = _("The row has {found} fields, the header only {expected}.")
MSG_ROW_MISSING = _("{column} is empty.")
MSG_ROW_NOT_A_NUMBER = _("{column} is '{value}', not a whole number.")
MSG_ROW_OUT_OF_RANGE = _("{column} is {value}, outside {low}–{high}.")
MSG_ROW_NOT_A_FLAG = _("{column} is '{value}', expected 0 or 1.")
MSG_ROW_NOT_A_COORDINATE = _("{column} is '{value}', not a number.")
MSG_ROW_REGION_PART = _("{column} is '{value}', expected up to {digits} digits.")
MSG_ROW_NO_COORDINATES = _("The row has no coordinates (XGCSWGS84/YGCSWGS84 or LINREFX/LINREFY).")
MSG_ROW_WGS84_RANGE = _("XGCSWGS84/YGCSWGS84 ({lon}, {lat}) is not a longitude/latitude pair.")

# field -> column names it has had over the years (upper case; headers are compared upper-cased).
COLUMNS: dict[str, tuple[str, ...]] = {
    "uid": ("UIDENTSTLAE", "UIDENTSTLA"),
    "oid": ("OBJECTID", "OBJECTID_1", "OID_", "FID"),
    "land": ("ULAND",),
    "regbez": ("UREGBEZ",),
    "kreis": ("UKREIS",),
    "gemeinde": ("UGEMEINDE",),
    "year": ("UJAHR",),
    "month": ("UMONAT",),
    "hour": ("USTUNDE",),
    "weekday": ("UWOCHENTAG",),
    "category": ("UKATEGORIE",),
    "kind": ("UART",),
    "type": ("UTYP1",),
    "light": ("ULICHTVERH", "LICHT"),
    "road": ("ISTSTRASSENZUSTAND", "STRZUSTAND", "USTRZUSTAND", "ISTSTRASSE"),
    "bicycle": ("ISTRAD",),
    "car": ("ISTPKW",),
    "pedestrian": ("ISTFUSS",),
    "motorcycle": ("ISTKRAD",),
    "goods": ("ISTGKFZ",),
    "other": ("ISTSONSTIGE", "ISTSONSTIG"),
    "lon": ("XGCSWGS84",),
    "lat": ("YGCSWGS84",),
    "x": ("LINREFX",),
    "y": ("LINREFY",),
}
REQUIRED = ("land", "regbez", "kreis", "gemeinde", "year", "month", "hour", "weekday", "category", "kind", "type")
FLAGS = ("bicycle", "car", "pedestrian", "motorcycle", "goods", "other")
# Digits of ULAND, UREGBEZ, UKREIS, UGEMEINDE in the 8-digit municipality key (AGS); some years drop the
# leading zeros, so each part is padded back to its width.
REGION_PARTS = (("land", 2), ("regbez", 1), ("kreis", 2), ("gemeinde", 3))
REGION_CODE_LENGTHS = (2, 3, 5, 8)

# Order of the values of a parsed row = columns of the staging table.
STAGING_COLUMNS = (
    ("source_key", "text"),
    ("region_code", "text"),
    ("occurred_at", "timestamptz"),
    ("category", "smallint"),
    ("kind", "smallint"),
    ("type", "smallint"),
    ("light_condition", "smallint"),
    ("road_condition", "smallint"),
    ("involves_bicycle", "boolean"),
    ("involves_car", "boolean"),
    ("involves_pedestrian", "boolean"),
    ("involves_motorcycle", "boolean"),
    ("involves_goods_vehicle", "boolean"),
    ("involves_other", "boolean"),
    ("lon", "double precision"),
    ("lat", "double precision"),
    ("x", "double precision"),
    ("y", "double precision"),
)
_ACCIDENT_VALUE_COLUMNS = [name for name, _type in STAGING_COLUMNS[:14]]


class UnfallatlasFileError(Exception):
    """A file cannot be imported at all (missing, unreadable, not an Unfallatlas header): fatal."""


class RowError(Exception):
    """One row cannot be read; it is rejected and reported, and the import goes on."""


@dataclass(frozen=True)
class Rejection:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportResult:
    read: int = 0
    imported: int = 0
    already_present: int = 0
    outside_region: int = 0
    outside_area: int = 0
    rejected: int = 0

    def __iadd__(self, other: ImportResult) -> ImportResult:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


@dataclass
class FileLayout:
    """Where each field sits in one file, found from its header."""

    path: str
    delimiter: str
    width: int
    index: dict[str, int]
    names: dict[str, str] = field(default_factory=dict)  # field -> the column name as the file spells it

    @property
    def has_wgs84(self) -> bool:
        return "lon" in self.index and "lat" in self.index

    @property
    def has_linref(self) -> bool:
        return "x" in self.index and "y" in self.index


def validate_region_codes(codes: Iterable[str]) -> tuple[str, ...]:
    """--region values: 2, 3, 5 or 8 digits, compared as prefixes of the 8-digit municipality key."""
    result = []
    for code in codes:
        code = code.strip()
        if not (code.isdigit() and code.isascii() and len(code) in REGION_CODE_LENGTHS):
            raise ValueError(str(MSG_REGION_CODE).format(code=code))
        result.append(code)
    return tuple(result)


def representative_time(year: int, month: int, weekday: int, hour: int) -> datetime:
    """The first day of the month on Unfallatlas weekday `weekday` (1 = Sunday ... 7 = Saturday), at `hour`.

    The first such weekday lies on day 1-7 and the clocks change on the last Sunday of March and October, so the
    local time always exists and is never ambiguous.
    """
    python_weekday = (weekday + 5) % 7  # Monday = 0 ... Sunday = 6
    day = 1 + (python_weekday - date(year, month, 1).weekday()) % 7
    return datetime(year, month, day, hour, tzinfo=BERLIN)


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def _header_names(line: str) -> tuple[str, list[str]]:
    delimiter = ";" if line.count(";") >= line.count(",") else ","
    names = next(csv.reader([line], delimiter=delimiter))
    return delimiter, [name.strip().strip('"').strip() for name in names]


def read_layout(path: str | os.PathLike) -> FileLayout:
    """Read a file's header and map its columns; raises UnfallatlasFileError when it cannot be imported."""
    path = str(path)
    if not os.path.isfile(path):
        raise UnfallatlasFileError(str(MSG_FILE_MISSING).format(path=path))
    try:
        with open(path, "rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise UnfallatlasFileError(str(MSG_FILE_UNREADABLE).format(path=path, error=exc)) from exc
    first = first.removeprefix(codecs.BOM_UTF8)
    if not first.strip():
        raise UnfallatlasFileError(str(MSG_FILE_EMPTY).format(path=path))
    delimiter, names = _header_names(_decode(first).rstrip("\r\n"))
    positions = {name.upper(): i for i, name in reversed(list(enumerate(names)))}  # first occurrence wins
    index: dict[str, int] = {}
    spelled: dict[str, str] = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in positions:
                index[name] = positions[alias]
                spelled[name] = names[positions[alias]]
                break
    missing = [COLUMNS[name][0] for name in REQUIRED if name not in index]
    if missing:
        raise UnfallatlasFileError(str(MSG_FILE_COLUMNS).format(path=path, columns=", ".join(missing)))
    layout = FileLayout(path=path, delimiter=delimiter, width=len(names), index=index, names=spelled)
    if not layout.has_wgs84 and not layout.has_linref:
        raise UnfallatlasFileError(str(MSG_FILE_NO_COORDINATES).format(path=path))
    return layout


class _RowParser:
    """Turns one CSV row of a file into the staging tuple, or raises RowError naming the column and value."""

    def __init__(self, layout: FileLayout) -> None:
        self.layout = layout
        self.index = layout.index
        self.names = layout.names
        # Destatis' accident id when the file has it: it stays the same if a year's file is published again.
        self.id_field = "uid" if "uid" in self.index else "oid" if "oid" in self.index else None

    def _cell(self, row: list[str], name: str) -> str | None:
        i = self.index.get(name)
        return None if i is None else row[i].strip()

    def _int(self, row: list[str], name: str, low: int, high: int, *, required: bool = True) -> int | None:
        raw = self._cell(row, name)
        if raw is None or raw == "":
            if required:
                raise RowError(str(MSG_ROW_MISSING).format(column=self.names[name]))
            return None
        try:
            value = int(raw)
        except ValueError:
            raise RowError(str(MSG_ROW_NOT_A_NUMBER).format(column=self.names[name], value=raw)) from None
        if not low <= value <= high:
            raise RowError(str(MSG_ROW_OUT_OF_RANGE).format(column=self.names[name], value=value, low=low, high=high))
        return value

    def _flag(self, row: list[str], name: str) -> bool:
        raw = self._cell(row, name)
        if raw is None or raw in ("", "0"):
            return False
        if raw == "1":
            return True
        raise RowError(str(MSG_ROW_NOT_A_FLAG).format(column=self.names[name], value=raw))

    def _float(self, row: list[str], name: str) -> float | None:
        raw = self._cell(row, name)
        if raw is None or raw == "":
            return None
        try:
            value = float(raw.replace(",", "."))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise RowError(str(MSG_ROW_NOT_A_COORDINATE).format(column=self.names[name], value=raw))
        return value

    def _region_code(self, row: list[str]) -> str:
        parts = []
        for name, digits in REGION_PARTS:
            raw = self._cell(row, name) or ""
            if not (raw.isdigit() and raw.isascii() and len(raw) <= digits):
                raise RowError(str(MSG_ROW_REGION_PART).format(column=self.names[name], value=raw, digits=digits))
            parts.append(raw.zfill(digits))
        return "".join(parts)

    def _coordinates(self, row: list[str]) -> tuple[float | None, float | None, float | None, float | None]:
        lon, lat = self._float(row, "lon"), self._float(row, "lat")
        if lon is not None and lat is not None:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise RowError(str(MSG_ROW_WGS84_RANGE).format(lon=lon, lat=lat))
            return lon, lat, None, None
        x, y = self._float(row, "x"), self._float(row, "y")
        if x is not None and y is not None:
            return None, None, x, y
        raise RowError(str(MSG_ROW_NO_COORDINATES))

    def parse(self, row: list[str]) -> tuple[str, tuple[Any, ...]]:
        """-> (region code, staging tuple)."""
        width = self.layout.width
        if len(row) < width:
            raise RowError(str(MSG_ROW_TOO_SHORT).format(found=len(row), expected=width))
        if len(row) > width and any(cell.strip() for cell in row[width:]):
            raise RowError(str(MSG_ROW_TOO_LONG).format(found=len(row), expected=width))
        region = self._region_code(row)
        year = self._int(row, "year", MIN_YEAR, MAX_YEAR)
        month = self._int(row, "month", 1, 12)
        hour = self._int(row, "hour", 0, 23)
        weekday = self._int(row, "weekday", 1, 7)
        values: list[Any] = [
            None,  # source_key, below
            region,
            representative_time(year, month, weekday, hour),
            self._int(row, "category", 1, 6),
            self._int(row, "kind", 0, 9),
            self._int(row, "type", 1, 7),
            self._int(row, "light", 0, 2, required=False),
            self._int(row, "road", 0, 2, required=False),
            *(self._flag(row, name) for name in FLAGS),
            *self._coordinates(row),
        ]
        ident = self._cell(row, self.id_field) if self.id_field else None
        if ident:
            key = f"{year}:{self.id_field}:{ident}"
        else:
            # No id: the row's values are its identity (two identical rows in one file count once).
            key = "h:" + hashlib.sha1(repr(values[1:]).encode(), usedforsecurity=False).hexdigest()
        if len(key) > 64:
            key = "h:" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()
        values[0] = key
        return region, tuple(values)


class Progress:
    """A percentage by bytes read, redrawn in place on a terminal; silent when stream is None."""

    def __init__(self, stream: IO[str] | None, label: str, total: int) -> None:
        self.stream, self.label, self.total = stream, label, max(total, 1)
        self.shown = -1

    def update(self, done: int) -> None:
        if self.stream is None:
            return
        percent = min(100, done * 100 // self.total)
        if percent != self.shown:
            self.shown = percent
            self.stream.write(f"\r{self.label}: {percent:3d}%")
            self.stream.flush()

    def interrupt(self) -> None:
        """Leave the progress line before another message is written; the next update draws it again."""
        if self.stream is not None and self.shown >= 0:
            self.stream.write("\n")
            self.shown = -1

    def finish(self) -> None:
        if self.stream is not None:
            self.update(self.total)
            self.stream.write("\n")
            self.stream.flush()


_STAGING_TABLE = "unfallatlas_staging"
_STAGING_DDL = f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING_TABLE} ({', '.join(f'{n} {t}' for n, t in STAGING_COLUMNS)})"

# One statement per batch: geometry from WGS84 or LINREF, the service-area test (PostGIS caches the prepared
# area across the rows), and the insert that skips keys already present.
_INSERT_SQL = f"""
    WITH staged AS (
        SELECT s.*,
               CASE WHEN s.lon IS NOT NULL
                    THEN ST_Transform(ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326), %(srid)s)
                    ELSE ST_Transform(ST_SetSRID(ST_MakePoint(s.x, s.y), {LINREF_SRID}), %(srid)s)
               END AS geom
          FROM {_STAGING_TABLE} s
    ),
    inside AS (
        SELECT * FROM staged WHERE ST_Covers(ST_GeomFromEWKB(%(area)s), geom)
    ),
    inserted AS (
        INSERT INTO traffic_accident (id, location, time_precision, source, created_at, updated_at,
                                      {", ".join(_ACCIDENT_VALUE_COLUMNS)})
        SELECT gen_random_uuid(), geom, %(precision)s, %(source)s, now(), now(),
               {", ".join(_ACCIDENT_VALUE_COLUMNS)}
          FROM inside
        ON CONFLICT (source, source_key) WHERE source_key <> '' DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM staged), (SELECT count(*) FROM inside), (SELECT count(*) FROM inserted)
"""


class UnfallatlasImporter:
    """Imports Unfallatlas files. Each batch commits on its own, so an interrupted import keeps what it wrote and
    a second run adds only the rest."""

    def __init__(
        self,
        *,
        regions: Iterable[str] = (),
        batch_size: int = BATCH_SIZE,
        on_reject: Callable[[Rejection], None] | None = None,
        progress_stream: IO[str] | None = None,
    ) -> None:
        self.regions = validate_region_codes(regions)
        self.batch_size = batch_size
        self.on_reject = on_reject
        self.progress_stream = progress_stream
        self._area_ewkb: bytes | None = None

    def import_file(self, path: str | os.PathLike, layout: FileLayout | None = None) -> ImportResult:
        layout = layout or read_layout(path)
        result = ImportResult()
        parser = _RowParser(layout)
        progress = Progress(self.progress_stream, os.path.basename(layout.path), os.path.getsize(layout.path))
        batch: list[tuple[Any, ...]] = []
        reader_state = {"bytes": 0}
        with open(layout.path, "rb") as fh:
            reader = csv.reader(self._lines(fh, progress, reader_state), delimiter=layout.delimiter)
            next(reader, None)  # the header, read by read_layout
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line is no data row
                result.read += 1
                try:
                    region, values = parser.parse(row)
                except RowError as exc:
                    result.rejected += 1
                    progress.interrupt()
                    if self.on_reject is not None:
                        self.on_reject(Rejection(layout.path, reader.line_num, str(exc)))
                    continue
                if self.regions and not region.startswith(self.regions):
                    result.outside_region += 1
                    continue
                batch.append(values)
                if len(batch) >= self.batch_size:
                    self._flush(batch, result)
                    batch = []
            if batch:
                self._flush(batch, result)
        progress.finish()
        return result

    @staticmethod
    def _lines(fh: IO[bytes], progress: Progress, state: dict[str, int]) -> Iterator[str]:
        first = True
        for raw in fh:
            state["bytes"] += len(raw)
            progress.update(state["bytes"])
            if first:
                raw = raw.removeprefix(codecs.BOM_UTF8)
                first = False
            yield _decode(raw)

    def _area(self) -> bytes:
        if self._area_ewkb is None:
            self._area_ewkb = bytes(service_area_geometry().ewkb)
        return self._area_ewkb

    def _flush(self, batch: list[tuple[Any, ...]], result: ImportResult) -> None:
        params = {
            "srid": settings.AUMAN_SRID,
            "area": self._area(),
            "precision": TimePrecision.HOUR_IN_MONTH.value,
            "source": AccidentSource.UNFALLATLAS.value,
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_STAGING_DDL)
            # TRUNCATE, not ON COMMIT DELETE ROWS: inside an outer transaction (tests, callers' atomic blocks)
            # there is no commit between batches.
            cursor.execute(f"TRUNCATE {_STAGING_TABLE}")
            with cursor.copy(f"COPY {_STAGING_TABLE} ({', '.join(n for n, _t in STAGING_COLUMNS)}) FROM STDIN") as copy:
                for values in batch:
                    copy.write_row(values)
            cursor.execute(_INSERT_SQL, params)
            staged, inside, inserted = cursor.fetchone()
        result.outside_area += staged - inside
        result.imported += inserted
        result.already_present += inside - inserted


def database_now() -> datetime:
    """The database's transaction time: rows an import writes later carry created_at >= this."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


def paths_checked(paths: Iterable[str | os.PathLike]) -> list[FileLayout]:
    """Every file's layout, before anything is imported: a missing or foreign file stops the run up front."""
    return [read_layout(Path(p)) for p in paths]
