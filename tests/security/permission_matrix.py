"""Who may do what, written down once: role x object x action, for every page and API endpoint.

tests/security/test_permission_matrix.py checks every row against the running code, and checks that every
URL pattern of the project has rows here: a new page or endpoint without them fails the suite, so it must
declare its access. docs/permissions.md is generated from this table (`python -m tests.security.permission_matrix`)
and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The personas (tests/conftest.py, plus leo of the control room, defined in the test module).
ANONYMOUS = "anonymous"
OWN = "own_applicant"  # alice, applicant of Stadtwerke, which owns the roadworks below
OTHER = "other_applicant"  # erin, applicant of Telekom Bau
AUTHORITY = "authority"  # bob
POLICE = "police"  # carol
CONTROL_ROOM = "control_room"  # leo
NO_ROLE = "no_role"  # dave, signed in without a role

PERSONAS = (ANONYMOUS, OWN, OTHER, AUTHORITY, POLICE, CONTROL_ROOM, NO_ROLE)
EVERYONE = frozenset(PERSONAS)
SIGNED_IN = EVERYONE - {ANONYMOUS}
STAFF = frozenset({AUTHORITY, POLICE, CONTROL_ROOM})
APPLICANTS = frozenset({OWN, OTHER})
NOBODY: frozenset[str] = frozenset()

# The objects the rows act on (built by the test's `world` fixture):
OBJECTS = {
    "draft": "a draft roadwork of Stadtwerke (not public)",
    "approved": "an approved roadwork of Stadtwerke (public)",
    "submitted": "a submitted roadwork of Stadtwerke (under review: staff and Stadtwerke only)",
    "attachment": "a file of the draft",
    "conflict": "a conflict between two submitted works of Stadtwerke",
    "incident": "a reported (active) incident",
    "black_spot": "a black spot (AUMAN_BLACKSPOTS_PUBLIC off)",
    "corridor": "a corridor",
    "moratorium": "a moratorium area",
    "event": "an event",
    "external_item": "an item of a non-public external source",
    "import_job": "a background import of roadworks started by the own applicant (alice)",
}


@dataclass(frozen=True)
class Rule:
    name: str  # URL name (namespace:name), as reverse() takes it
    method: str
    allowed: frozenset[str]
    obj: str | None = None  # key of OBJECTS; None: no object in the URL
    api: bool = False  # API rows are checked with each persona's token, pages with its session
    action: str = ""  # what the row does, for docs/permissions.md
    visible: frozenset[str] | None = None  # list rows: who finds `obj` in the answer
    params: tuple[tuple[str, str], ...] = ()  # fixed URL arguments (layer names, formats)
    shows_draft: frozenset[str] | None = None  # maps, feeds, exports: who finds the draft's reference in the answer
    shows_obj: str = "draft"  # the roadwork shows_draft looks for (its reference)


def page(
    name: str,
    method: str,
    allowed: frozenset[str],
    obj: str | None = None,
    action: str = "",
    shows_draft: frozenset[str] | None = None,
    shows_obj: str = "draft",
    **params: str,
) -> Rule:
    return Rule(
        name,
        method,
        frozenset(allowed),
        obj,
        False,
        action,
        params=tuple(params.items()),
        shows_draft=shows_draft,
        shows_obj=shows_obj,
    )


def api(
    name: str,
    method: str,
    allowed: frozenset[str],
    obj: str | None = None,
    action: str = "",
    visible: frozenset[str] | None = None,
    shows_draft: frozenset[str] | None = None,
    **params: str,
) -> Rule:
    return Rule(name, method, frozenset(allowed), obj, True, action, visible, tuple(params.items()), shows_draft)


OWN_AND_STAFF = STAFF | {OWN}
OWN_AND_AUTHORITY = frozenset({OWN, AUTHORITY})
APPLICANTS_AND_STAFF = STAFF | APPLICANTS
AUTHORITY_ONLY = frozenset({AUTHORITY})
INCIDENT_STAFF = STAFF

MATRIX: tuple[Rule, ...] = (
    # --- Public pages and feeds ---------------------------------------------------------------------------------
    page("maps:index", "GET", EVERYONE, action="the map"),
    page(
        "maps:features",
        "GET",
        EVERYONE,
        action="the map's GeoJSON on the works' days",
        shows_draft=OWN_AND_STAFF,
        shows_obj="submitted",
    ),
    page("feeds:wzdx-workzones", "GET", EVERYONE, action="WZDx feed", shows_draft=NOBODY, shows_obj="submitted"),
    page("roadworks:timeline", "GET", EVERYONE, action="timeline (content filtered by role)"),
    page("healthz", "GET", EVERYONE, action="health check"),
    page("login", "GET", EVERYONE, action="login page"),
    page("login", "POST", EVERYONE, action="log in (wrong password here)"),
    page("logout", "POST", EVERYONE, action="log out"),
    page("set_language", "POST", EVERYONE, action="choose the language"),
    page("schema", "GET", EVERYONE, action="OpenAPI schema"),
    page("api-docs", "GET", EVERYONE, action="Swagger UI"),
    # --- Roadwork pages -------------------------------------------------------------------------------------------
    page("roadworks:create", "GET", APPLICANTS | {AUTHORITY}, action="application form"),
    page("roadworks:create", "POST", APPLICANTS | {AUTHORITY}, action="send the application form"),
    page("roadworks:detail", "GET", OWN_AND_STAFF, "draft", "view a draft"),
    page("roadworks:detail", "GET", EVERYONE, "approved", "view an approved work"),
    page("roadworks:edit", "GET", OWN_AND_AUTHORITY, "draft", "edit form of a draft"),
    page("roadworks:edit", "POST", OWN_AND_AUTHORITY, "draft", "edit a draft"),
    page("roadworks:edit", "GET", AUTHORITY_ONLY, "approved", "edit form of an approved work"),
    # The authority may take the applicant's steps on its behalf (roadworks/workflow.py).
    page("roadworks:step", "POST", OWN_AND_AUTHORITY, "draft", "submit a draft (workflow step)"),
    page("roadworks:attachments", "POST", OWN_AND_AUTHORITY, "draft", "upload a file to a draft"),
    page("roadworks:dashboard", "GET", AUTHORITY_ONLY, action="coordination dashboard"),
    page("roadworks:conflict", "GET", OWN_AND_STAFF, "conflict", "view a conflict"),
    page("roadworks:conflict-status", "POST", OWN_AND_AUTHORITY, "conflict", "acknowledge a conflict"),
    # --- Police and accident commission pages -----------------------------------------------------------------------
    page("traffic:incident-list", "GET", INCIDENT_STAFF, action="active incidents list"),
    page("traffic:quick-entry", "GET", INCIDENT_STAFF, action="police quick entry"),
    page("blackspots:list", "GET", STAFF, action="black spot list"),
    page("blackspots:csv", "GET", STAFF, action="black spot CSV"),
    # --- API: roadworks -------------------------------------------------------------------------------------------
    api("api:api-root", "GET", EVERYONE, action="API root"),
    api("api:roadwork-list", "GET", EVERYONE, "draft", "list roadworks", visible=OWN_AND_STAFF),
    api("api:roadwork-list", "POST", APPLICANTS | {AUTHORITY}, action="create a roadwork"),
    api("api:roadwork-detail", "GET", OWN_AND_STAFF, "draft", "read a draft"),
    api("api:roadwork-detail", "GET", EVERYONE, "approved", "read an approved work"),
    api("api:roadwork-detail", "PATCH", OWN_AND_AUTHORITY, "draft", "change a draft"),
    api("api:roadwork-detail", "PUT", OWN_AND_AUTHORITY, "draft", "replace a draft"),
    api("api:roadwork-detail", "PATCH", AUTHORITY_ONLY, "approved", "change an approved work"),
    api("api:roadwork-history", "GET", OWN_AND_STAFF, "approved", "history of a work"),
    api("api:roadwork-attachments", "GET", OWN_AND_STAFF, "draft", "list the files of a draft"),
    api("api:roadwork-attachments", "POST", OWN_AND_AUTHORITY, "draft", "upload a file"),
    api("api:roadwork-attachment", "GET", OWN_AND_STAFF, "attachment", "download a file"),
    api("api:roadwork-transition", "POST", OWN_AND_AUTHORITY, "draft", "submit a draft"),
    api("api:roadwork-report", "POST", OWN_AND_AUTHORITY, "approved", "report the actual start"),
    api("api:conflict-list", "GET", EVERYONE, "conflict", "list conflicts", visible=OWN_AND_STAFF),
    api("api:conflict-detail", "GET", OWN_AND_STAFF, "conflict", "read a conflict"),
    api("api:conflict-set-status", "POST", OWN_AND_AUTHORITY, "conflict", "acknowledge a conflict"),
    api("api:conflict-rule-list", "GET", APPLICANTS_AND_STAFF, action="rule catalogue"),
    # --- API: rule layers (corridors, moratoria, events) --------------------------------------------------------------
    *(
        rule
        for layer, plural in (("corridor", "corridors"), ("moratorium", "moratoria"), ("event", "events"))
        for rule in (
            api(
                f"api:{layer}-list", "GET", APPLICANTS_AND_STAFF, layer, f"list {plural}", visible=APPLICANTS_AND_STAFF
            ),
            api(f"api:{layer}-list", "POST", AUTHORITY_ONLY, action=f"record a {layer}"),
            api(f"api:{layer}-detail", "GET", APPLICANTS_AND_STAFF, layer, f"read a {layer}"),
            api(f"api:{layer}-detail", "PATCH", AUTHORITY_ONLY, layer, f"change a {layer}"),
            api(f"api:{layer}-detail", "DELETE", AUTHORITY_ONLY, layer, f"delete a {layer}"),
        )
    ),
    # --- API: incidents, accidents, black spots -------------------------------------------------------------------
    api("api:incident-list", "GET", EVERYONE, "incident", "list incidents", visible=EVERYONE),
    api("api:incident-list", "POST", INCIDENT_STAFF, action="log an incident"),
    api("api:incident-detail", "GET", EVERYONE, "incident", "read an active incident"),
    api("api:incident-detail", "PATCH", INCIDENT_STAFF, "incident", "change an incident"),
    api("api:incident-transition", "POST", INCIDENT_STAFF, "incident", "confirm an incident"),
    api("api:incident-transitions", "GET", STAFF, "incident", "incident status history"),
    api("api:accident-codes-list", "GET", EVERYONE, action="accident code lists"),
    api("api:black-spot-list", "GET", STAFF, "black_spot", "list black spots", visible=STAFF),
    api("api:black-spot-detail", "GET", STAFF, "black_spot", "read a black spot"),
    api("streets-search", "GET", EVERYONE, action="street search"),
    api("streets-nearest", "GET", EVERYONE, action="nearest street"),
    # --- Change history (auman.history) -------------------------------------------------------------------------------
    api("api:roadwork-changes", "GET", OWN_AND_STAFF, "approved", "change history of a work"),
    api("api:incident-changes", "GET", STAFF, "incident", "change history of an incident"),
    page("traffic:incident-changes", "GET", STAFF, "incident", "incident history page"),
    # --- Map data, tiles, subscriptions, feeds: public, content filtered by role -------------------------------------
    page(
        "maps:tile",
        "GET",
        EVERYONE,
        action="vector tile (content filtered)",
        layer="roadworks",
        z="14",
        x="8594",
        y="5613",
    ),
    api("maps:districts", "GET", EVERYONE, action="districts"),
    page(
        "maps:roadworks-calendar",
        "GET",
        EVERYONE,
        action="iCalendar of roadworks",
        shows_draft=NOBODY,
        shows_obj="submitted",
    ),
    page(
        "maps:incidents-atom",
        "GET",
        EVERYONE,
        action="Atom feed of incidents",
        shows_draft=NOBODY,
        shows_obj="submitted",
    ),
    page("feeds:index", "GET", EVERYONE, action="feed index"),
    page(
        "feeds:tdx-incidents", "GET", EVERYONE, action="TDx incidents feed", shows_draft=NOBODY, shows_obj="submitted"
    ),
    page(
        "feeds:geojson-public", "GET", EVERYONE, action="public GeoJSON feed", shows_draft=NOBODY, shows_obj="submitted"
    ),
    page("feeds:waze-cifs-xml", "GET", EVERYONE, action="Waze CIFS (XML)", shows_draft=NOBODY, shows_obj="submitted"),
    page("feeds:waze-cifs-json", "GET", EVERYONE, action="Waze CIFS (JSON)", shows_draft=NOBODY, shows_obj="submitted"),
    page(
        "feeds:datex2-situations",
        "GET",
        EVERYONE,
        action="DATEX II situations",
        shows_draft=NOBODY,
        shows_obj="submitted",
    ),
    # --- Applications list, external sources ----------------------------------------------------------------------
    page("roadworks:applications", "GET", APPLICANTS | {AUTHORITY}, action="list of applications"),
    page("interop:sources", "GET", STAFF, action="external sources' health"),
    api("api:external-item-list", "GET", EVERYONE, "external_item", "list external items", visible=STAFF),
    api("api:external-item-detail", "GET", STAFF, "external_item", "read an external item"),
    # --- GIS import and export, OGC API Features ---------------------------------------------------------------------
    page("gisio:import", "GET", APPLICANTS | {AUTHORITY}, action="GIS import page"),
    api("gisio-api:roadworks-import", "POST", APPLICANTS | {AUTHORITY}, action="import roadworks (dry run)"),
    # A background import is its starter's alone: everyone else gets 404 (the authority too).
    page("gisio:import-job", "GET", frozenset({OWN}), "import_job", "follow one's background import"),
    api("gisio-api:roadworks-import-job", "GET", frozenset({OWN}), "import_job", "read one's background import"),
    api(
        "gisio-api:export",
        "GET",
        EVERYONE,
        action="export roadworks",
        layer="roadworks",
        fmt="geojson",
        shows_draft=OWN_AND_STAFF,
    ),
    api("gisio-api:export", "GET", APPLICANTS_AND_STAFF, action="export conflicts", layer="conflicts", fmt="csv"),
    api("gisio-api:export", "GET", STAFF, action="export black spots", layer="black_spots", fmt="csv"),
    api("gisio-ogc:ogc-landing", "GET", EVERYONE, action="OGC API landing page"),
    api("gisio-ogc:ogc-conformance", "GET", EVERYONE, action="OGC API conformance"),
    api("gisio-ogc:ogc-api", "GET", EVERYONE, action="OGC API definition"),
    api("gisio-ogc:ogc-collections", "GET", EVERYONE, action="OGC API collections"),
    api(
        "gisio-ogc:ogc-collection",
        "GET",
        APPLICANTS_AND_STAFF,
        action="conflicts collection",
        collection_id="conflicts",
    ),
    api(
        "gisio-ogc:ogc-items",
        "GET",
        EVERYONE,
        action="roadworks items",
        collection_id="roadworks",
        shows_draft=OWN_AND_STAFF,
    ),
    api("gisio-ogc:ogc-item", "GET", OWN_AND_STAFF, "draft", "read a draft as an OGC item", collection_id="roadworks"),
)

# The admin is for superusers and staff accounts only (none of the personas): every admin URL sends them to the
# admin's login, except the login page itself.
ADMIN_NAMESPACE = "admin"
ADMIN_OPEN = ("admin:login",)

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"

_SHORT = {
    ANONYMOUS: "anon",
    OWN: "own appl.",
    OTHER: "other appl.",
    AUTHORITY: "authority",
    POLICE: "police",
    CONTROL_ROOM: "control room",
    NO_ROLE: "no role",
}


def render_markdown() -> str:
    lines = [
        "# Permissions",
        "",
        "Who may do what, page by page and endpoint by endpoint. Generated from",
        "`tests/security/permission_matrix.py` (`python -m tests.security.permission_matrix`), which",
        "`tests/security/test_permission_matrix.py` checks against the running code for each persona: pages with",
        "the persona's session, API endpoints with the persona's API token (anonymous: neither). A new URL pattern",
        "without a row fails that test. The rules themselves live in each app's `permissions.py`.",
        "",
        "Personas: **own appl.** is an applicant of the organisation owning the roadwork, **other appl.** an",
        "applicant of another organisation, **no role** a signed-in user without a role. ✔ allowed, – refused",
        "(401/403, 404 where the object stays hidden, or a redirect to the login).",
        "",
        "Objects: " + "; ".join(f"*{key}*: {text}" for key, text in OBJECTS.items()) + ".",
        "",
        "| URL name | method | object | action | " + " | ".join(_SHORT[p] for p in PERSONAS) + " |",
        "|---|---|---|---|" + "|".join(":-:" for _ in PERSONAS) + "|",
    ]
    for rule in MATRIX:
        marks = " | ".join("✔" if p in rule.allowed else "–" for p in PERSONAS)
        kind = "API" if rule.api else "page"
        target = rule.obj or ", ".join(
            f"{key}={value}" for key, value in rule.params if key in ("layer", "collection_id")
        )
        lines.append(f"| `{rule.name}` ({kind}) | {rule.method} | {target} | {rule.action} | {marks} |")
    lines += [
        "",
        "Lists, maps, feeds and exports answer everyone allowed, but hold only what the persona may see",
        "(*draft*, *submitted*: whether that work's reference appears in the answer at all):",
        "",
        "| URL name | object | " + " | ".join(_SHORT[p] for p in PERSONAS) + " |",
        "|---|---|" + "|".join(":-:" for _ in PERSONAS) + "|",
    ]
    for rule in MATRIX:
        for obj, who in ((rule.obj, rule.visible), (rule.shows_obj, rule.shows_draft)):
            if who is not None:
                marks = " | ".join("✔" if p in who else "–" for p in PERSONAS)
                lines.append(f"| `{rule.name}` | {obj} | {marks} |")
    lines += [
        "",
        "Admin (`/admin/`): superusers and staff accounts only; every persona above is sent to the admin's login.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    DOC_PATH.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {DOC_PATH}")
