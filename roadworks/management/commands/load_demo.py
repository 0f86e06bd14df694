"""python manage.py load_demo: organisations, demo logins, roadworks and incidents in Mannheim.

Idempotent: every row has a stable natural key (organisation name, username, roadwork reference,
a uuid5 for incidents), so a second run updates the same rows instead of adding new ones.
Times are relative to today and are recomputed on every run, so the demo map always shows
works that are active now, some that start in the coming weeks and one that ended last week.

The coordinates follow the real streets (WGS84, lon/lat). Where OpenStreetMap ways were at hand
(../shared/data/geo: Bismarckstraße, Parkring, Konrad-Adenauer-Brücke, Reichskanzler-Müller-Straße,
Viehhofstraße, Möhlstraße, Wilhelm-Varnholt-Allee) they are taken from them; the ring roads and
Seckenheimer Straße follow the Stadtteil boundaries, which run along those streets; the Planken and
Kunststraße follow the grid of the Quadrate, aligned on Bismarckstraße and the Wasserturm.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import Token

from accounts.models import Organisation, Role, User
from auman.geo import WGS84, clean_geometry
from roadworks.categories import categorise, decision_due
from roadworks.models import (
    DETOUR_TYPES,
    LINE_AND_AREA_TYPES,
    PEDESTRIAN_ROUTE_TYPES,
    Corridor,
    Detour,
    Direction,
    Event,
    MoratoriumArea,
    NetworkKind,
    Roadwork,
    RoadworkStatus,
    RoadworkTransition,
    TrafficManagement,
    WorkKind,
)
from roadworks.network_layers import network_layer_load, read_features
from roadworks.services import conflicts_sweep_all
from traffic.models import Incident, IncidentDirection, IncidentKind, IncidentStatus

# Namespace of the demo incidents' ids: uuid5(namespace, key) gives the same id on every run.
DEMO_NAMESPACE = uuid.UUID("6f1d4c1e-3b8a-5a52-9a57-61756d616e31")
DEMO_REFERENCE_PREFIX = "DEMO-"

# --- Organisations ---------------------------------------------------------------

AUTHORITY = "Stadt Mannheim – Fachbereich Sicherheit und Ordnung / Straßenverkehrsbehörde"
MVV = "MVV Netze GmbH"
TELEKOM = "Deutsche Telekom Technik GmbH"
TIEFBAU = "Stadt Mannheim – Fachbereich Tiefbau"
RNV = "Rhein-Neckar-Verkehr GmbH (rnv)"
POLICE = "Polizeipräsidium Mannheim"
CONTROL_ROOM = "Stadt Mannheim – Verkehrsleitzentrale"


@dataclass(frozen=True)
class OrganisationSpec:
    name: str
    kind: str
    email: str = ""
    phone: str = ""


# Contact data uses example.org: the demo must never send mail to a real office.
DEMO_ORGANISATIONS = (
    OrganisationSpec(AUTHORITY, Organisation.Kind.AUTHORITY, "strassenverkehrsbehoerde@example.org", "0621 000-1000"),
    OrganisationSpec(MVV, Organisation.Kind.UTILITY, "baustellen-mvv@example.org", "0621 000-2000"),
    OrganisationSpec(TELEKOM, Organisation.Kind.CONTRACTOR, "trassenplanung-telekom@example.org", "0621 000-3000"),
    OrganisationSpec(TIEFBAU, Organisation.Kind.CITY_DEPARTMENT, "tiefbau@example.org", "0621 000-4000"),
    OrganisationSpec(RNV, Organisation.Kind.UTILITY, "gleisbau-rnv@example.org", "0621 000-5000"),
    OrganisationSpec(POLICE, Organisation.Kind.POLICE, "lagezentrum@example.org", "0621 000-6000"),
    OrganisationSpec(CONTROL_ROOM, Organisation.Kind.OTHER, "vlz@example.org", "0621 000-7000"),
)

# --- Users -------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: str
    organisation: str
    first_name: str
    last_name: str


DEMO_USERS = (
    UserSpec("behoerde", Role.AUTHORITY, AUTHORITY, "Demo", "Straßenverkehrsbehörde"),
    UserSpec("antrag", Role.APPLICANT, MVV, "Demo", "Antragsteller MVV"),
    UserSpec("polizei", Role.POLICE, POLICE, "Demo", "Polizei"),
    UserSpec("leitstelle", Role.CONTROL_ROOM, CONTROL_ROOM, "Demo", "Verkehrsleitzentrale"),
)


def demo_password(username: str) -> str:
    """The documented demo password; printed by demo_logins while it is still in use."""
    return f"demo-{username}-2026"


# --- Roadworks ---------------------------------------------------------------------

Coords = list[tuple[float, float]]


def _line(coords: Coords) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [list(c) for c in coords]}


def _polygon(ring: Coords) -> dict[str, Any]:
    closed = [*ring, ring[0]] if ring[0] != ring[-1] else ring
    return {"type": "Polygon", "coordinates": [[list(c) for c in closed]]}


@dataclass(frozen=True)
class DetourSpec:
    name: str
    lines: tuple[Coords, ...]  # one line, or several for a MultiLineString
    description: str = ""
    # Days after the roadwork's start while the detour is signposted; None: the whole period.
    days: int | None = None

    def geometry(self) -> dict[str, Any]:
        if len(self.lines) == 1:
            return _line(self.lines[0])
        return {"type": "MultiLineString", "coordinates": [[list(c) for c in line] for line in self.lines]}


# Streets the detours use; the same lines as the works on them below (DEMO-004, DEMO-009, DEMO-010).
SECKENHEIMER_STRASSE: Coords = [
    (8.47608, 49.48117),
    (8.47736, 49.48091),
    (8.47948, 49.48028),
    (8.48105, 49.47964),
    (8.48224, 49.47867),
]
FRIEDRICHSRING: Coords = [(8.47524, 49.48518), (8.47569, 49.48591), (8.47595, 49.48669), (8.47606, 49.48732)]
AUGUSTAANLAGE: Coords = [(8.478602, 49.482874), (8.481713, 49.481709), (8.484586, 49.480632)]


@dataclass(frozen=True)
class RoadworkSpec:
    reference: str
    organisation: str
    title: str
    description: str
    street_names: tuple[str, ...]
    geometry: dict[str, Any]
    status: str
    work_kind: str
    traffic_management: str
    start_day: int  # days from today (local time); negative: started already
    days: int  # the period ends `days` days after it starts
    start_hour: int = 7
    end_hour: int = 17
    extra: dict[str, Any] = field(default_factory=dict)
    purpose: str = ""
    detours: tuple[DetourSpec, ...] = ()
    pedestrian_route: Coords | None = None
    # Daily working window (local hours) and weekdays (0 = Monday); none: around the clock, every day.
    daily_hours: tuple[int, int] | None = None
    weekdays: tuple[int, ...] = ()
    is_emergency: bool = False
    # The steps of its history; by default the plain path to its status (see _history).
    history: tuple[str, ...] | None = None
    # The applicant reported the actual start (otherwise the system started the works on time).
    reported_start: bool = False


# DEMO-001 and DEMO-002 share a stretch of Bismarckstraße in overlapping weeks on purpose:
# the conflict sweep must find them (rule C1), so the demo shows a conflict to resolve.
DEMO_ROADWORKS = (
    RoadworkSpec(
        "DEMO-001",
        MVV,
        "Fernwärme-Hausanschlüsse Bismarckstraße",
        "Erneuerung von vier Fernwärme-Hausanschlüssen zwischen L 4 und L 8. "
        "Rechter Fahrstreifen Richtung Tattersall gesperrt, Fußgänger werden auf der Baustellenseite geführt.",
        ("Bismarckstraße",),
        _line([(8.46331, 49.48422), (8.46497, 49.48357), (8.46569, 49.48327), (8.4672, 49.48269)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.DISTRICT_HEATING,
        TrafficManagement.LANE_CLOSURE,
        start_day=-10,
        days=35,
        extra={"lanes_affected": 1, "direction": Direction.FORWARD, "excavation": True, "speed_limit_kmh": 30},
        purpose="Anschluss von vier Gebäuden an das Fernwärmenetz.",
        reported_start=True,
    ),
    RoadworkSpec(
        "DEMO-002",
        TELEKOM,
        "Glasfaserausbau Bismarckstraße",
        "Verlegung von Leerrohren für Glasfaser im Gehweg zwischen L 6 und L 10; Gehweg abschnittsweise gesperrt, "
        "Fußgänger über die gegenüberliegende Straßenseite.",
        ("Bismarckstraße",),
        _line([(8.46569, 49.48327), (8.4672, 49.48269), (8.4683, 49.48242), (8.46919, 49.48207)]),
        RoadworkStatus.SUBMITTED,
        WorkKind.TELECOM,
        TrafficManagement.FOOTWAY_CLOSURE,
        start_day=3,
        days=17,
        extra={"excavation": True},
        purpose="Glasfaseranschluss der Gebäude L 6 bis L 10 (FTTH-Ausbau).",
        # The footway on the other side of the street, about 15 m north.
        pedestrian_route=[(8.46569, 49.48341), (8.4672, 49.48283), (8.4683, 49.48256), (8.46919, 49.48221)],
    ),
    RoadworkSpec(
        "DEMO-003",
        TIEFBAU,
        "Fahrbahnerneuerung Kaiserring (Nachtbaustelle)",
        "Abfräsen und Neueinbau der Asphaltdeckschicht zwischen Tattersall und Wasserturm. "
        "Vollsperrung jeweils von 20 bis 5 Uhr, Umleitung über Seckenheimer Straße und Friedrichsring.",
        ("Kaiserring",),
        _line([(8.47266, 49.48248), (8.47368, 49.48353), (8.47438, 49.4842)]),
        RoadworkStatus.APPROVED,
        WorkKind.ROAD_RESURFACING,
        TrafficManagement.FULL_CLOSURE,
        start_day=14,
        days=5,
        start_hour=20,
        end_hour=5,
        extra={"direction": Direction.BOTH},
        purpose="Erneuerung der verschlissenen Asphaltdeckschicht (Spurrinnen, Risse).",
        daily_hours=(20, 5),
        weekdays=(0, 1, 2, 3, 4),
        detours=(
            DetourSpec(
                "Umleitung Richtung Wasserturm",
                (SECKENHEIMER_STRASSE[:3], FRIEDRICHSRING),
                "Über Seckenheimer Straße und Friedrichsring, beschildert ab Tattersall.",
            ),
            DetourSpec("Umleitung Richtung Tattersall", (AUGUSTAANLAGE,), "Über die Augustaanlage."),
        ),
    ),
    RoadworkSpec(
        "DEMO-004",
        MVV,
        "Erneuerung Trinkwasserleitung Friedrichsring",
        "Austausch der Trinkwasser-Hauptleitung DN 300 zwischen Wasserturm und Q 7. "
        "Linker Fahrstreifen in beiden Richtungen gesperrt.",
        ("Friedrichsring",),
        _line([(8.47524, 49.48518), (8.47569, 49.48591), (8.47595, 49.48669), (8.47606, 49.48732), (8.47613, 49.4881)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.WATER,
        TrafficManagement.LANE_CLOSURE,
        start_day=-3,
        days=21,
        extra={"lanes_affected": 1, "direction": Direction.BOTH, "excavation": True, "max_width_m": Decimal("3.00")},
    ),
    RoadworkSpec(
        "DEMO-005",
        RNV,
        "Gleiserneuerung Planken",
        "Erneuerung der Stadtbahngleise zwischen Paradeplatz und Wasserturm. Die Fußgängerzone bleibt begehbar, "
        "Teilflächen sind abgesperrt; Stadtbahnen werden umgeleitet.",
        ("Planken", "Heidelberger Straße"),
        _line([(8.46638, 49.487523), (8.469714, 49.486248), (8.474119, 49.484563)]),
        RoadworkStatus.APPROVED,
        WorkKind.TRAM,
        TrafficManagement.FOOTWAY_CLOSURE,
        start_day=21,
        days=40,
    ),
    RoadworkSpec(
        "DEMO-006",
        TELEKOM,
        "Kabeleinzug in bestehende Leerrohre Kunststraße",
        "Kabelzug aus Schächten im Gehweg zwischen N 1 und N 7; keine Inanspruchnahme der Fahrbahn.",
        ("Kunststraße",),
        _line([(8.465779, 49.486678), (8.468042, 49.485813), (8.470185, 49.484994)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.TELECOM,
        TrafficManagement.NO_CARRIAGEWAY_INCURSION,
        start_day=-2,
        days=7,
    ),
    RoadworkSpec(
        "DEMO-007",
        MVV,
        "Gasleitung Luisenring",
        "Neuverlegung einer Gas-Mitteldruckleitung zwischen Kurpfalzkreisel und K 5 (Entwurf).",
        ("Luisenring",),
        _line(
            [(8.47009, 49.49353), (8.46931, 49.49369), (8.46822, 49.49386), (8.46742, 49.49391), (8.46625, 49.49394)]
        ),
        RoadworkStatus.DRAFT,
        WorkKind.GAS,
        TrafficManagement.LANE_CLOSURE,
        start_day=30,
        days=15,
        extra={"lanes_affected": 1, "excavation": True},
    ),
    RoadworkSpec(
        "DEMO-008",
        TIEFBAU,
        "Instandsetzung Fahrbahnübergänge Kurpfalzbrücke",
        "Austausch der Fahrbahnübergänge. Die Brücke ist nur stadteinwärts befahrbar; "
        "stadtauswärts Umleitung über die Jungbuschbrücke.",
        ("Kurpfalzbrücke",),
        _line([(8.471387, 49.493377), (8.472722, 49.494809)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.ROAD_CONSTRUCTION,
        TrafficManagement.ONE_WAY,
        start_day=-7,
        days=21,
        extra={"direction": Direction.BACKWARD, "max_weight_t": Decimal("7.50"), "speed_limit_kmh": 30},
    ),
    RoadworkSpec(
        "DEMO-009",
        MVV,
        "Mittelspannungskabel Augustaanlage",
        "Verlegung eines 20-kV-Kabels im Radweg zwischen Friedrichsplatz und Otto-Beck-Straße; "
        "Radfahrende werden auf die Fahrbahn geleitet.",
        ("Augustaanlage",),
        _line([(8.478602, 49.482874), (8.481713, 49.481709), (8.484586, 49.480632)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.ELECTRICITY,
        TrafficManagement.CYCLE_LANE_CLOSURE,
        start_day=-1,
        days=13,
        extra={"excavation": True},
    ),
    RoadworkSpec(
        "DEMO-010",
        TIEFBAU,
        "Kanalsanierung Seckenheimer Straße",
        "Inliner-Sanierung des Mischwasserkanals; Verkehr wechselseitig an einer Baustellenampel vorbei.",
        ("Seckenheimer Straße",),
        _line(
            [(8.47608, 49.48117), (8.47736, 49.48091), (8.47948, 49.48028), (8.48105, 49.47964), (8.48224, 49.47867)]
        ),
        RoadworkStatus.SUBMITTED,
        WorkKind.SEWER,
        TrafficManagement.ALTERNATING_ONE_WAY,
        start_day=10,
        days=30,
        extra={"lanes_affected": 1, "max_width_m": Decimal("2.75")},
        purpose="Sanierung des Mischwasserkanals DN 800 im Inliner-Verfahren.",
        history=("create", "submit", "request_modification", "resubmit"),
    ),
    RoadworkSpec(
        "DEMO-011",
        TIEFBAU,
        "Deckenerneuerung Reichskanzler-Müller-Straße",
        "Abgeschlossen: neue Asphaltdeckschicht zwischen Hauptbahnhof und Lindenhofüberführung.",
        ("Reichskanzler-Müller-Straße",),
        _line([(8.47775, 49.47654), (8.4764, 49.47762), (8.47538, 49.47847), (8.47477, 49.47897)]),
        RoadworkStatus.COMPLETED,
        WorkKind.ROAD_RESURFACING,
        TrafficManagement.LANE_CLOSURE,
        start_day=-21,
        days=14,
        extra={"lanes_affected": 1},
    ),
    RoadworkSpec(
        "DEMO-012",
        MVV,
        "Fernwärmetrasse Möhlstraße",
        "Querung der Möhlstraße mit einer Fernwärmeleitung in offener Bauweise. "
        "Vollsperrung, Umleitung über Viehhofstraße und Seckenheimer Straße.",
        ("Möhlstraße",),
        _line([(8.48691, 49.47446), (8.4871, 49.47473), (8.48752, 49.47532), (8.48801, 49.47584), (8.48824, 49.4763)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.DISTRICT_HEATING,
        TrafficManagement.FULL_CLOSURE,
        start_day=-5,
        days=14,
        extra={"direction": Direction.BOTH, "excavation": True},
        detours=(
            DetourSpec(
                "Umleitung über Seckenheimer Straße",
                (SECKENHEIMER_STRASSE[2:],),
                "Während der Querung der Fahrbahn (erste Woche).",
                days=7,
            ),
        ),
    ),
    RoadworkSpec(
        "DEMO-013",
        TELEKOM,
        "Glasfaser Wilhelm-Varnholt-Allee",
        "Entwurf: Leerrohrverband im Radweg Richtung SAP Arena.",
        ("Wilhelm-Varnholt-Allee",),
        _line([(8.49568, 49.47607), (8.49741, 49.4754), (8.4984, 49.47501), (8.49878, 49.47486)]),
        RoadworkStatus.DRAFT,
        WorkKind.TELECOM,
        TrafficManagement.CYCLE_LANE_CLOSURE,
        start_day=20,
        days=15,
    ),
    RoadworkSpec(
        "DEMO-014",
        MVV,
        "Neubau Netzstation Parkring – Baugrube",
        "Baugrube und Lagerfläche für eine Netzstation auf dem inneren Fahrstreifen des Parkrings "
        "auf Höhe B 7; ein Fahrstreifen bleibt je Richtung frei.",
        ("Parkring",),
        _polygon([(8.456421, 49.484632), (8.455941, 49.485622), (8.456164, 49.485668), (8.456644, 49.484678)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.ELECTRICITY,
        TrafficManagement.LANE_CLOSURE,
        start_day=-14,
        days=42,
        extra={"lanes_affected": 1, "excavation": True},
    ),
    RoadworkSpec(
        "DEMO-015",
        TIEFBAU,
        "Baustelleneinrichtungsfläche Hochbau Viehhofstraße",
        "Kran-, Lager- und Containerfläche neben der Fahrbahn; Zufahrt über die Viehhofstraße.",
        ("Viehhofstraße",),
        _polygon([(8.4840, 49.47368), (8.4852, 49.47368), (8.4852, 49.47380), (8.4840, 49.47380)]),
        RoadworkStatus.APPROVED,
        WorkKind.BUILDING_SITE,
        TrafficManagement.NO_CARRIAGEWAY_INCURSION,
        start_day=12,
        days=120,
    ),
    RoadworkSpec(
        "DEMO-016",
        TIEFBAU,
        "Bauwerksprüfung Konrad-Adenauer-Brücke, Rampe Mannheim",
        "Brückenprüfung mit Untersichtgerät in zwei Nächten; rechter Fahrstreifen Richtung Ludwigshafen gesperrt.",
        ("Konrad-Adenauer-Brücke",),
        # Only the Mannheim side: the city boundary runs along the Rhine, at the end of this ramp.
        _line([(8.45794, 49.48195), (8.4570, 49.48151), (8.45622, 49.48114)]),
        RoadworkStatus.APPROVED,
        WorkKind.OTHER,
        TrafficManagement.LANE_CLOSURE,
        start_day=7,
        days=2,
        start_hour=21,
        end_hour=5,
        extra={"lanes_affected": 1, "direction": Direction.BACKWARD, "speed_limit_kmh": 40},
        daily_hours=(21, 5),
    ),
    RoadworkSpec(
        "DEMO-017",
        MVV,
        "Wasserrohrbruch Reichskanzler-Müller-Straße",
        "Notfall: Rohrbruch der Trinkwasserleitung, Aufgrabung auf dem rechten Fahrstreifen Richtung Lindenhof. "
        "Gemeldet nach Beginn der Arbeiten, Entscheidung der Behörde steht aus.",
        ("Reichskanzler-Müller-Straße",),
        _line([(8.4764, 49.47762), (8.47538, 49.47847)]),
        RoadworkStatus.IN_PROGRESS,
        WorkKind.WATER,
        TrafficManagement.LANE_CLOSURE,
        start_day=0,
        days=2,
        start_hour=0,
        extra={"lanes_affected": 1, "direction": Direction.FORWARD, "excavation": True},
        purpose="Beseitigung eines Wasserrohrbruchs (Versorgungssicherheit).",
        is_emergency=True,
    ),
    # On the other carriageway of the Konrad-Adenauer-Brücke, overlapping DEMO-016's nights: the Rhine crossing
    # corridor allows one work at a time (rule C4), and both are on the same street nearby (rule C2).
    RoadworkSpec(
        "DEMO-018",
        TIEFBAU,
        "Fahrbahnübergang Konrad-Adenauer-Brücke, Richtung Innenstadt",
        "Austausch eines Fahrbahnübergangs auf der Rampe Mannheim; rechter Fahrstreifen Richtung Innenstadt gesperrt.",
        ("Konrad-Adenauer-Brücke",),
        # The eastbound carriageway (OSM way 258194205), from the city boundary towards the city.
        _line([(8.4560, 49.480898), (8.4572, 49.481461)]),
        RoadworkStatus.APPROVED,
        WorkKind.BRIDGE,
        TrafficManagement.LANE_CLOSURE,
        start_day=6,
        days=5,
        extra={"lanes_affected": 1, "direction": Direction.FORWARD, "speed_limit_kmh": 40},
    ),
)

# --- Incidents ---------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentSpec:
    key: str
    kind: str
    status: str
    street_name: str
    description: str
    location: tuple[float, float]
    minutes_ago: int  # when it occurred, relative to now
    affected_line: Coords | None = None
    lanes_blocked: int | None = None
    direction: str = IncidentDirection.UNKNOWN
    cleared_minutes_ago: int | None = None
    expected_clearance_in_minutes: int | None = None


DEMO_INCIDENTS = (
    IncidentSpec(
        "accident-tattersall",
        IncidentKind.ACCIDENT,
        IncidentStatus.CONFIRMED,
        "Bismarckplatz / Kaiserring",
        "Auffahrunfall mit zwei Pkw am Tattersall, ein Fahrstreifen blockiert.",
        (8.47195, 49.48095),
        minutes_ago=35,
        lanes_blocked=1,
        direction=IncidentDirection.FORWARD,
        expected_clearance_in_minutes=40,
    ),
    IncidentSpec(
        "breakdown-adenauer-bridge",
        IncidentKind.BREAKDOWN,
        IncidentStatus.REPORTED,
        "Konrad-Adenauer-Brücke",
        "Liegengebliebener Lkw auf dem rechten Fahrstreifen Richtung Ludwigshafen.",
        (8.4566, 49.48132),
        minutes_ago=12,
        affected_line=[(8.45772, 49.48184), (8.4566, 49.48132), (8.45622, 49.48114)],
        lanes_blocked=1,
        direction=IncidentDirection.BACKWARD,
    ),
    IncidentSpec(
        "obstruction-reichskanzler-mueller",
        IncidentKind.OBSTRUCTION,
        IncidentStatus.REPORTED,
        "Reichskanzler-Müller-Straße",
        "Verlorene Ladung (Paletten) auf der Fahrbahn.",
        (8.47887, 49.47573),
        minutes_ago=8,
        lanes_blocked=1,
    ),
    IncidentSpec(
        "hazard-augustaanlage-signals",
        IncidentKind.HAZARD,
        IncidentStatus.CONFIRMED,
        "Augustaanlage / Wilhelm-Varnholt-Allee",
        "Ausfall der Lichtsignalanlage, Polizei regelt den Verkehr.",
        (8.49193, 49.47788),
        minutes_ago=50,
        direction=IncidentDirection.BOTH,
        expected_clearance_in_minutes=60,
    ),
    IncidentSpec(
        "police-wasserturm",
        IncidentKind.POLICE_OPERATION,
        IncidentStatus.CONFIRMED,
        "Friedrichsring",
        "Versammlung am Wasserturm; Friedrichsring zwischen Kaiserring und Q 7 zeitweise gesperrt.",
        (8.47567, 49.48586),
        minutes_ago=90,
        affected_line=[(8.47524, 49.48518), (8.47569, 49.48591), (8.47606, 49.48732)],
        lanes_blocked=2,
        direction=IncidentDirection.BOTH,
        expected_clearance_in_minutes=120,
    ),
    IncidentSpec(
        "spill-parkring",
        IncidentKind.SPILL,
        IncidentStatus.REPORTED,
        "Parkring",
        "Ölspur über etwa 200 m, Feuerwehr ist verständigt.",
        (8.45606, 49.48542),
        minutes_ago=20,
    ),
    IncidentSpec(
        "accident-luisenring-cleared",
        IncidentKind.ACCIDENT,
        IncidentStatus.CLEARED,
        "Luisenring",
        "Unfall mit Radfahrer am Kurpfalzkreisel; Unfallstelle geräumt.",
        (8.46822, 49.49386),
        minutes_ago=26 * 60,
        lanes_blocked=1,
        cleared_minutes_ago=24 * 60 + 30,
    ),
)


def demo_incident_id(key: str) -> uuid.UUID:
    return uuid.uuid5(DEMO_NAMESPACE, f"incident:{key}")


# --- Rule layers ------------------------------------------------------------------------
# The authority's corridors, moratoria and events, and the tram line file, so the demo shows every rule:
# C4 on the Rhine crossing (DEMO-016 and DEMO-018), C5 at the Parkring (DEMO-014; the moratorium on the
# Reichskanzler-Müller-Straße shows emergency works exempt: DEMO-017), C6 at the Wasserturm (DEMO-004),
# C7 on the Planken and Kaiserring (DEMO-005, and DEMO-003's night closures as an error).

# Both carriageways of the bridge's Mannheim ramp (OSM ways 14189055 and 258194205, cut at the city boundary).
ADENAUER_BRIDGE: tuple[Coords, ...] = (
    [(8.4579407, 49.4819515), (8.4577222, 49.4818449), (8.4562212, 49.4811351), (8.4558, 49.480945)],
    [(8.4558, 49.480804), (8.4578466, 49.4817646)],
)
DEMO_CORRIDORS = (
    {
        "name": "Rheinquerung Konrad-Adenauer-Brücke",
        "description": "B 37 zwischen Ludwigshafen und der Innenstadt: höchstens eine Baustelle gleichzeitig.",
        "lines": ADENAUER_BRIDGE,
        "max_simultaneous": 1,
    },
)


@dataclass(frozen=True)
class MoratoriumSpec:
    name: str
    ring: Coords
    resurfaced_days_ago: int
    reason: str


DEMO_MORATORIA = (
    MoratoriumSpec(
        "Parkring zwischen B 5 und B 7",
        # Both carriageways of the Parkring along B 5 to B 7 (OSM ways 184156816, 292947986), about 15 m wide.
        [(8.45560, 49.48625), (8.45575, 49.48625), (8.45680, 49.48440), (8.45650, 49.48430)],
        resurfaced_days_ago=2 * 365,
        reason="Deckenerneuerung mit Fahrbahnsanierung; Aufgrabeverbot laut Aufbruchsatzung.",
    ),
    MoratoriumSpec(
        "Reichskanzler-Müller-Straße zwischen Hauptbahnhof und Lindenhofüberführung",
        # Around the line of DEMO-011, the resurfacing completed last week.
        [(8.47795, 49.47660), (8.47490, 49.47910), (8.47460, 49.47890), (8.47760, 49.47645)],
        resurfaced_days_ago=7,
        reason="Neue Asphaltdeckschicht (DEMO-011); Notmaßnahmen bleiben zulässig.",
    ),
)
DEMO_EVENTS = (
    {
        "name": "Stadtfest am Wasserturm",
        "description": "Bühnen und Stände auf dem Friedrichsplatz; Aufbau am Vortag.",
        # Friedrichsplatz around the Wasserturm.
        "ring": [(8.47440, 49.48500), (8.47590, 49.48560), (8.47720, 49.48440), (8.47560, 49.48380)],
        "start_day": 3,
        "days": 3,
        "expected_visitors": 40000,
    },
)
DEMO_TRAM_FILE = Path(__file__).resolve().parents[2] / "data" / "demo_tram_line.geojson"


# --- Building the rows ---------------------------------------------------------------


def _stored_geometry(geojson: dict[str, Any], *, allowed_types: tuple[str, ...], label: str) -> GEOSGeometry:
    """The demo geometry through the same checks as the API, so demo data never holds what users could not enter."""
    geom = GEOSGeometry(json.dumps(geojson), srid=WGS84)
    try:
        return clean_geometry(geom, allowed_types=allowed_types)
    except ValidationError as exc:
        raise CommandError(f"Demo geometry of {label} is rejected: {' '.join(exc.messages)}") from exc


def _local_time(now: datetime, *, day_offset: int, hour: int) -> datetime:
    # Whole local hours on whole days: a second run on the same day yields the same periods.
    tz = ZoneInfo(settings.TIME_ZONE)
    day = timezone.localtime(now, tz).date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour), tzinfo=tz)


def roadwork_period(spec: RoadworkSpec, now: datetime) -> DateTimeTZRange:
    start = _local_time(now, day_offset=spec.start_day, hour=spec.start_hour)
    end = _local_time(now, day_offset=spec.start_day + spec.days, hour=spec.end_hour)
    return DateTimeTZRange(start, end, "[)")


@dataclass(frozen=True)
class Step:
    action: str
    from_status: str
    to_status: str
    at: datetime
    by: User | None
    comment: str = ""


SUBMITTING = ("submit", "resubmit", "create_emergency")
DECIDING = ("approve", "refuse")
# The plain path to each status, as workflow.py defines the steps.
PATHS = {
    RoadworkStatus.DRAFT: ("create",),
    RoadworkStatus.SUBMITTED: ("create", "submit"),
    RoadworkStatus.APPROVED: ("create", "submit", "approve"),
    RoadworkStatus.IN_PROGRESS: ("create", "submit", "approve", "start"),
    RoadworkStatus.COMPLETED: ("create", "submit", "approve", "start", "complete"),
}
COMMENTS = {
    "approve": "Verkehrsrechtliche Anordnung erteilt; Auflagen laut Verkehrszeichenplan.",
    "request_modification": "Bitte Verkehrszeichenplan mit Baustellenampel und Gehwegführung nachreichen.",
    "resubmit": "Verkehrszeichenplan ergänzt.",
}


def _history(
    spec: RoadworkSpec, period: DateTimeTZRange, now: datetime, *, applicant: User, authority: User
) -> list[Step]:
    """The steps of a demo work, at times before now that fit its period; start and end by the system."""
    if spec.is_emergency:
        reported = min(period.lower + timedelta(hours=1), now)
        return [Step("create_emergency", "", RoadworkStatus.IN_PROGRESS, reported, applicant)]
    actions = spec.history or PATHS[spec.status]
    # Long applications (a modification round) began earlier; everything lies before now and the start.
    at = min(period.lower, now) - timedelta(days=45 if len(actions) > 3 and "start" not in actions else 21)
    gaps = {"create": 0, "submit": 1, "request_modification": 4, "resubmit": 5, "approve": 4}
    status = ""
    steps = []
    for action in actions:
        target = {
            "create": RoadworkStatus.DRAFT,
            "submit": RoadworkStatus.SUBMITTED,
            "resubmit": RoadworkStatus.SUBMITTED,
            "request_modification": RoadworkStatus.MODIFICATION_REQUESTED,
            "approve": RoadworkStatus.APPROVED,
            "start": RoadworkStatus.IN_PROGRESS,
            "complete": RoadworkStatus.COMPLETED,
        }[action]
        if action == "start":
            at = period.lower + timedelta(minutes=20 if spec.reported_start else 0)
            by = applicant if spec.reported_start else None
        elif action == "complete":
            at, by = period.upper, None
        else:
            at = at + timedelta(days=gaps[action])
            by = authority if action in ("approve", "request_modification") else applicant
        steps.append(Step(action, status, target, at, by, COMMENTS.get(action, "")))
        status = target
    return steps


MSG_REAL_DATA = _(
    "This register holds %(count)s roadworks that are not demo data. load_demo would publish demo roadworks and "
    "incidents in its feeds and create logins with documented passwords. Use --force to load it anyway."
)
MSG_PUBLIC_SITE = _(
    "SITE_URL is %(url)s, a public HTTPS address: demo logins with documented passwords do not belong there. "
    "Use --force to load the demo data anyway."
)


def refusal() -> str | None:
    """Why the demo data must not be loaded here, or None. Demo roadworks go into the public feeds and demo users
    have passwords printed in the README: neither may reach a register in real use by accident."""
    real = Roadwork.objects.exclude(reference__startswith=DEMO_REFERENCE_PREFIX).count()
    if real:
        return str(MSG_REAL_DATA % {"count": real})
    if settings.SITE_URL.startswith("https://"):
        return str(MSG_PUBLIC_SITE % {"url": settings.SITE_URL})
    return None


class Command(BaseCommand):
    help = "Load (or refresh) the Mannheim demo data: organisations, demo logins, roadworks, incidents, conflicts."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="load even into a register with real data or on an https site"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reason = None if options["force"] else refusal()
        if reason:
            raise CommandError(reason)
        now = timezone.now()
        with transaction.atomic():
            organisations = self._organisations()
            users = self._users(organisations)
            self._roadworks(organisations, users, now)
            self._incidents(organisations, users, now)
            self._layers(now)
            # Directly, not through Celery: the demo must show its conflicts even without a worker.
            sweep = conflicts_sweep_all()
        held = sum(result["found"] for result in sweep.values())
        self.stdout.write(
            f"Demo data loaded: {len(organisations)} organisations, {len(users)} users, "
            f"{len(DEMO_ROADWORKS)} roadworks, {len(DEMO_INCIDENTS)} incidents; "
            f"conflict sweep: {held} conflicts hold. Logins: python manage.py demo_logins"
        )

    def _layers(self, now: datetime) -> None:
        """Corridors, moratoria and events by name, the tram line by its id in the file: the same rows every run."""
        for corridor in DEMO_CORRIDORS:
            lines = {"type": "MultiLineString", "coordinates": [[list(c) for c in line] for line in corridor["lines"]]}
            Corridor.objects.update_or_create(
                name=corridor["name"],
                defaults={
                    "description": corridor["description"],
                    "geometry": _stored_geometry(lines, allowed_types=("MultiLineString",), label=corridor["name"]),
                    "max_simultaneous": corridor["max_simultaneous"],
                    "active": True,
                },
            )
        for spec in DEMO_MORATORIA:
            area = _stored_geometry(_polygon(spec.ring), allowed_types=("Polygon",), label=spec.name)
            MoratoriumArea.objects.update_or_create(
                name=spec.name,
                defaults={
                    "geometry": MultiPolygon(area, srid=area.srid),
                    "resurfaced_on": timezone.localdate(now) - timedelta(days=spec.resurfaced_days_ago),
                    "years": settings.AUMAN_MORATORIUM_YEARS,
                    "reason": spec.reason,
                },
            )
        for event in DEMO_EVENTS:
            area = _stored_geometry(_polygon(event["ring"]), allowed_types=("Polygon",), label=event["name"])
            start = _local_time(now, day_offset=event["start_day"], hour=10)
            Event.objects.update_or_create(
                name=event["name"],
                defaults={
                    "description": event["description"],
                    "area": MultiPolygon(area, srid=area.srid),
                    "period": DateTimeTZRange(
                        start, _local_time(now, day_offset=event["start_day"] + event["days"], hour=0), "[)"
                    ),
                    "expected_visitors": event["expected_visitors"],
                },
            )
        loaded = network_layer_load(kind=NetworkKind.TRAM_LINE, features=read_features(DEMO_TRAM_FILE))
        if loaded.rejected:
            raise CommandError(f"{DEMO_TRAM_FILE}: rejected {'; '.join(loaded.rejected)}")

    def _organisations(self) -> dict[str, Organisation]:
        organisations = {}
        for spec in DEMO_ORGANISATIONS:
            organisation, _ = Organisation.objects.update_or_create(
                name=spec.name, defaults={"kind": spec.kind, "email": spec.email, "phone": spec.phone}
            )
            organisations[spec.name] = organisation
        return organisations

    def _users(self, organisations: dict[str, Organisation]) -> dict[str, User]:
        users = {}
        for spec in DEMO_USERS:
            user, created = User.objects.update_or_create(
                username=spec.username,
                defaults={
                    "role": spec.role,
                    "organisation": organisations[spec.organisation],
                    "first_name": spec.first_name,
                    "last_name": spec.last_name,
                    "email": f"{spec.username}@example.org",
                    "is_active": True,
                },
            )
            # Only a new user gets the demo password: someone who changed it keeps theirs.
            if created:
                user.set_password(demo_password(spec.username))
                user.save(update_fields=["password"])
            Token.objects.get_or_create(user=user)
            users[spec.username] = user
        return users

    def _roadworks(self, organisations: dict[str, Organisation], users: dict[str, User], now: datetime) -> None:
        # MVV's works are entered by its applicant; everything else by the authority on the applicant's behalf.
        applicant_org = next(spec.organisation for spec in DEMO_USERS if spec.username == "antrag")
        contacts = {spec.name: spec for spec in DEMO_ORGANISATIONS}
        for spec in DEMO_ROADWORKS:
            if not spec.reference.startswith(DEMO_REFERENCE_PREFIX):
                raise CommandError(f"Demo roadwork reference {spec.reference} must start with {DEMO_REFERENCE_PREFIX}")
            applicant = users["antrag"] if spec.organisation == applicant_org else users["behoerde"]
            period = roadwork_period(spec, now)
            steps = _history(spec, period, now, applicant=applicant, authority=users["behoerde"])
            category = categorise(
                period=period, traffic_management=spec.traffic_management, is_emergency=spec.is_emergency
            )
            submitted_at = max((step.at for step in steps if step.action in SUBMITTING), default=None)
            contact = contacts[spec.organisation]
            roadwork, _ = Roadwork.objects.update_or_create(
                reference=spec.reference,
                defaults={
                    "organisation": organisations[spec.organisation],
                    "title": spec.title,
                    "description": spec.description,
                    "purpose": spec.purpose,
                    "street_names": list(spec.street_names),
                    "geometry": _stored_geometry(
                        spec.geometry, allowed_types=LINE_AND_AREA_TYPES, label=spec.reference
                    ),
                    "period": period,
                    "daily_start": time(spec.daily_hours[0]) if spec.daily_hours else None,
                    "daily_end": time(spec.daily_hours[1]) if spec.daily_hours else None,
                    "weekdays": list(spec.weekdays),
                    "is_emergency": spec.is_emergency,
                    "work_kind": spec.work_kind,
                    "traffic_management": spec.traffic_management,
                    "pedestrian_route": (
                        _stored_geometry(
                            _line(spec.pedestrian_route), allowed_types=PEDESTRIAN_ROUTE_TYPES, label=spec.reference
                        )
                        if spec.pedestrian_route
                        else None
                    ),
                    "status": spec.status,
                    "contact_name": f"{spec.organisation}, Baustellenkoordination",
                    "contact_phone": contact.phone,
                    "contact_email": contact.email,
                    "created_by": applicant,
                    "submitted_at": submitted_at,
                    "decision_due": (
                        decision_due(category=category, submitted_at=submitted_at) if submitted_at else None
                    ),
                    "decided_at": next((step.at for step in steps if step.action in DECIDING), None),
                    "actual_start": next(
                        (step.at for step in steps if step.action == "start" and step.by is not None), None
                    ),
                    "actual_end": None,
                    # Fields a spec leaves out are reset, so an edited demo row returns to its defined state.
                    "direction": Direction.BOTH,
                    "lanes_affected": None,
                    "excavation": False,
                    "max_width_m": None,
                    "max_height_m": None,
                    "max_weight_t": None,
                    "speed_limit_kmh": None,
                    **spec.extra,
                },
            )
            # Detours and history are rebuilt from the spec on every run: the same content, never more rows.
            roadwork.detours.all().delete()
            Detour.objects.bulk_create(
                Detour(
                    roadwork=roadwork,
                    name=detour.name,
                    description=detour.description,
                    geometry=_stored_geometry(detour.geometry(), allowed_types=DETOUR_TYPES, label=spec.reference),
                    period=(
                        DateTimeTZRange(period.lower, period.lower + timedelta(days=detour.days), "[)")
                        if detour.days
                        else None
                    ),
                )
                for detour in spec.detours
            )
            roadwork.transitions.all().delete()
            RoadworkTransition.objects.bulk_create(
                RoadworkTransition(
                    roadwork=roadwork,
                    action=step.action,
                    from_status=step.from_status,
                    to_status=step.to_status,
                    at=step.at,
                    by=step.by,
                    comment=step.comment,
                )
                for step in steps
            )

    def _incidents(self, organisations: dict[str, Organisation], users: dict[str, User], now: datetime) -> None:
        police = users["polizei"]
        for spec in DEMO_INCIDENTS:
            label = f"incident {spec.key}"
            occurred_at = now - timedelta(minutes=spec.minutes_ago)
            confirmed = spec.status in (IncidentStatus.CONFIRMED, IncidentStatus.CLEARED)
            Incident.objects.update_or_create(
                id=demo_incident_id(spec.key),
                defaults={
                    "kind": spec.kind,
                    "status": spec.status,
                    "street_name": spec.street_name,
                    "description": spec.description,
                    "location": _stored_geometry(
                        {"type": "Point", "coordinates": list(spec.location)}, allowed_types=("Point",), label=label
                    ),
                    "affected_line": (
                        _stored_geometry(_line(spec.affected_line), allowed_types=("LineString",), label=label)
                        if spec.affected_line
                        else None
                    ),
                    "lanes_blocked": spec.lanes_blocked,
                    "direction": spec.direction,
                    "occurred_at": occurred_at,
                    "reported_at": occurred_at + timedelta(minutes=3),
                    "confirmed_at": min(occurred_at + timedelta(minutes=10), now) if confirmed else None,
                    "cleared_at": (
                        now - timedelta(minutes=spec.cleared_minutes_ago)
                        if spec.cleared_minutes_ago is not None
                        else None
                    ),
                    "expected_clearance_at": (
                        now + timedelta(minutes=spec.expected_clearance_in_minutes)
                        if spec.expected_clearance_in_minutes is not None
                        else None
                    ),
                    "organisation": organisations[POLICE],
                    "reported_by": police,
                },
            )
