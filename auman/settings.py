"""AUMAn settings: everything an operator may change comes from the environment.

Every variable is listed in README.md. Bad values fail loudly at start-up with
ImproperlyConfigured instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_json(name: str, default: object) -> object:
    """A JSON value from the environment (structured settings such as rule sets); the default when unset."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be valid JSON: {exc}") from exc


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("AUMAN_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set in production")
    # A fixed key for local runs and tests only; README tells operators to set SECRET_KEY.
    SECRET_KEY = "auman-local-development-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_gis",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "leaflet",
    # Login lockout (django-axes) and the Content-Security-Policy header (django-csp): see docs/security.md.
    "axes",
    "csp",
    # History of roadworks, decisions, conflicts and incidents, written by triggers (django-pghistory).
    "pgtrigger",
    "pghistory",
    "accounts",
    "jobs",
    "roadworks",
    "traffic",
    "maps",
    "gisio",
    # External sources: neighbours' roadworks feeds read periodically (docs/interop.md).
    "interop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "auman.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "auman.middleware.GermanFirstMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: names the user (also a DRF token user) in every history entry of the request.
    "auman.history.HistoryMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication: the feeds' and tiles' limits count signed-in users per user, not per address.
    "auman.ratelimit.RateLimitMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "auman.urls"
WSGI_APPLICATION = "auman.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "auman.context_processors.city",
            ],
        },
    },
]

# --- Servers -----------------------------------------------------------------
# Without DATABASE_URL / REDIS_URL, `make run` and `make test` start project-local
# servers under ./var on these ports; the defaults point there.
DATABASE_URL = env_str("DATABASE_URL", "postgis://auman@127.0.0.1:54329/auman")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)
# PostGIS functions carry high cost estimates, which make PostgreSQL JIT-compile even 1 ms queries
# (about 300 ms each, measured for the WZDx feed). AUMAn's queries are short: JIT never pays off.
DATABASES["default"]["OPTIONS"]["options"] = "-c jit=off"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:63799/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "auman"),
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            # A cache outage must not take the site down: feeds are rebuilt from PostGIS instead.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task a killed worker never acknowledged goes back to the queue after this many seconds. Above the longest
# task and above retry_backoff_max (600 s: a retry waiting for its countdown is held unacknowledged), so only lost
# tasks come back; tasks are idempotent, so a rare double run is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("AUMAN_BROKER_VISIBILITY_TIMEOUT", 900, minimum=1),
    "socket_connect_timeout": 2,
}
# Publishing never waits for a broker that is down: the outbox (jobs/) keeps the task and sends it later.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Workers wait for the broker however long it is away, rather than exit after 100 attempts.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Every worker hands pending outbox messages to the broker this often (0: off); sent ones are kept for days.
AUMAN_OUTBOX_RELAY_SECONDS = env_float("AUMAN_OUTBOX_RELAY_SECONDS", 10, minimum=0)
AUMAN_OUTBOX_KEEP_DAYS = env_int("AUMAN_OUTBOX_KEEP_DAYS", 7, minimum=0)
CELERY_TIMEZONE = "UTC"
AUMAN_BLACKSPOT_HOUR_UTC = env_int("AUMAN_BLACKSPOT_HOUR_UTC", 2, minimum=0)
if AUMAN_BLACKSPOT_HOUR_UTC > 23:
    raise ImproperlyConfigured(f"AUMAN_BLACKSPOT_HOUR_UTC must be an hour from 0 to 23, not {AUMAN_BLACKSPOT_HOUR_UTC}")
# Every periodic job is declared here, in one place.
CELERY_BEAT_SCHEDULE = {
    # Besides each worker's own relay loop: pending outbox messages go out even with a single busy worker.
    "jobs-outbox-relay": {
        "task": "jobs.tasks.outbox_relay",
        "schedule": timedelta(minutes=1),
    },
    "conflicts-full-sweep": {
        "task": "roadworks.tasks.conflicts_sweep",
        "schedule": timedelta(minutes=env_int("AUMAN_CONFLICT_SWEEP_MINUTES", 15, minimum=1)),
    },
    # Approved works whose period began go in progress, running works whose period ended are completed.
    "roadworks-advance-statuses": {
        "task": "roadworks.tasks.roadworks_advance_statuses",
        "schedule": timedelta(minutes=env_int("AUMAN_STATUS_ADVANCE_MINUTES", 5, minimum=1)),
    },
    # Black spots change with the accidents of a day at most; nightly, at a quiet hour (UTC, like CELERY_TIMEZONE).
    "blackspots-nightly": {
        "task": "traffic.tasks.blackspots_recompute",
        "schedule": crontab(hour=AUMAN_BLACKSPOT_HOUR_UTC, minute=30),
    },
    # The accident tiles' grid (maps/accident_grid.py) is rebuilt after accident writes; nightly as well, so a
    # rebuild lost on the way (or accidents written past the services) is made good within a day.
    "maps-accident-grid-nightly": {
        "task": "maps.tasks.accident_grid_rebuild_task",
        "schedule": crontab(hour=AUMAN_BLACKSPOT_HOUR_UTC, minute=10),
    },
    # External sources: each minute, the sources whose own poll interval has passed are polled (interop).
    "interop-poll-sources": {
        "task": "interop.tasks.sources_poll_due",
        "schedule": timedelta(minutes=1),
    },
}

# --- Auth --------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "maps:index"
LOGOUT_REDIRECT_URL = "maps:index"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG and SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Security (docs/security.md) ---------------------------------------------
# Production is a site served over https (SITE_URL); there cookies are secure, http redirects to https
# and browsers remember it (HSTS). Behind a TLS-terminating proxy, it must set X-Forwarded-Proto.
AUMAN_HTTPS = SITE_URL.startswith("https")
SECURE_SSL_REDIRECT = env_bool("AUMAN_SSL_REDIRECT", AUMAN_HTTPS and not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("AUMAN_BEHIND_PROXY", False) else None
SECURE_HSTS_SECONDS = env_int("AUMAN_HSTS_SECONDS", 31536000 if AUMAN_HTTPS and not DEBUG else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("AUMAN_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("AUMAN_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("AUMAN_SESSION_HOURS", 12, minimum=1) * 3600
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
# No browser feature AUMAn does not use. Geolocation stays for the police quick entry ("here").
AUMAN_PERMISSIONS_POLICY = "camera=(), microphone=(), payment=(), usb=(), geolocation=(self)"


def _origin(url: str) -> str | None:
    """scheme://host of a tile URL template, for the policy's img-src."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("{s}", "*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


_TILE_ORIGIN = _origin(env_str("AUMAN_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png"))
# No inline scripts, handlers or style attributes anywhere: data reaches the scripts by json_script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *([_TILE_ORIGIN] if _TILE_ORIGIN else [])],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Login lockout (django-axes): after AUMAN_LOGIN_FAILURE_LIMIT wrong passwords for one user name from one
# address, that pair waits AUMAN_LOGIN_COOLOFF_MINUTES. Locking the pair (not the name alone) keeps a
# guesser from locking real users out from elsewhere; the per-address API and feed limits cap the rest.
AUTHENTICATION_BACKENDS = [
    "auman.security.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AUMAN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AUMAN_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "auman.security.lockout_response"
AXES_CLIENT_IP_CALLABLE = "auman.ratelimit.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False  # no banner on every start of every process
# Failed API token look-ups per address within a window before the API answers 429 (token guessing).
AUMAN_TOKEN_FAILURE_LIMIT = env_int("AUMAN_TOKEN_FAILURE_LIMIT", 20, minimum=1)

# Rate limits per client (address for anonymous clients, user when signed in): "count/period" with period
# s, m, h or d. The API's are DRF throttles; /feeds/ and /tiles/ are counted by auman.ratelimit's middleware.
AUMAN_RATE_API_ANON = env_str("AUMAN_RATE_API_ANON", "600/m")
AUMAN_RATE_API_USER = env_str("AUMAN_RATE_API_USER", "1200/m")
AUMAN_RATE_FEEDS = env_str("AUMAN_RATE_FEEDS", "120/m")
AUMAN_RATE_TILES = env_str("AUMAN_RATE_TILES", "3000/m")
for _name in ("AUMAN_RATE_API_ANON", "AUMAN_RATE_API_USER", "AUMAN_RATE_FEEDS", "AUMAN_RATE_TILES"):
    _count, _sep, _period = globals()[_name].partition("/")
    if not (_count.isdigit() and _period[:1] in ("s", "m", "h", "d")):
        raise ImproperlyConfigured(f"{_name} must look like 120/m (count/s, m, h or d), not {globals()[_name]!r}")
# Trusted aggregators that poll more often: addresses (or networks, CIDR) and API tokens exempt from all limits.
AUMAN_RATE_EXEMPT_IPS = env_list("AUMAN_RATE_EXEMPT_IPS", "")
AUMAN_RATE_EXEMPT_TOKENS = env_list("AUMAN_RATE_EXEMPT_TOKENS", "")
# Reverse proxies in front of AUMAn that append to X-Forwarded-For; 0: the client is REMOTE_ADDR.
AUMAN_PROXY_COUNT = env_int("AUMAN_PROXY_COUNT", 0, minimum=0)

# --- I18n --------------------------------------------------------------------
LANGUAGE_CODE = "de"
LANGUAGES = [("de", _("German")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("TIME_ZONE", "Europe/Berlin")  # shown to users; stored in UTC

# --- Static ------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Oversized payloads are refused before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("AUMAN_MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)

# --- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "auman.security.ThrottledTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "auman.api.FeaturePagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 100, minimum=1),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "auman.api.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_THROTTLE_CLASSES": ["auman.ratelimit.ApiAnonThrottle", "auman.ratelimit.ApiUserThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": AUMAN_RATE_API_ANON, "user": AUMAN_RATE_API_USER},
    # DRF's default (None) would take the client's own X-Forwarded-For: spoofable.
    "NUM_PROXIES": AUMAN_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AUMAn API",
    "DESCRIPTION": "Roadworks and traffic incidents. Geometry is GeoJSON in WGS84 (lon/lat).",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # One name per choice set: a roadwork's and an incident's statuses appear under several field names.
    "ENUM_NAME_OVERRIDES": {
        "RoadworkStatusEnum": "roadworks.models.RoadworkStatus",
        "IncidentStatusEnum": "traffic.models.IncidentStatus",
        "ImportJobStatusEnum": "gisio.models.ImportJobStatus",
    },
}

# --- The city ------------------------------------------------------------------
AUMAN_CITY_NAME = env_str("AUMAN_CITY_NAME", "Mannheim")
# Metric CRS for storage: buffers and distances in metres. Changing it needs a fresh database.
AUMAN_SRID = env_int("AUMAN_SRID", 25832)
AUMAN_SERVICE_AREA_FILE = Path(
    env_str("AUMAN_SERVICE_AREA_FILE", str(BASE_DIR / "auman/data/mannheim_boundary.geojson"))
)
# Tolerance around the service area in metres: works on a boundary road stay valid.
AUMAN_SERVICE_AREA_TOLERANCE_M = env_float("AUMAN_SERVICE_AREA_TOLERANCE_M", 50, minimum=0)
# Districts (GeoJSON polygons, WGS84) for the timeline's district filter; empty: no district filter.
AUMAN_DISTRICTS_FILE = env_str("AUMAN_DISTRICTS_FILE", str(BASE_DIR / "auman/data/mannheim_districts.geojson"))
AUMAN_DISTRICTS_NAME_PROPERTY = env_str("AUMAN_DISTRICTS_NAME_PROPERTY", "name")
# The property holding a district's official number (Mannheim: "011"); empty when the file has none.
AUMAN_DISTRICTS_NUMBER_PROPERTY = env_str("AUMAN_DISTRICTS_NUMBER_PROPERTY", "id")
AUMAN_MAX_VERTICES = env_int("AUMAN_MAX_VERTICES", 5000, minimum=2)
# Largest polygon (roadwork area, moratorium, event) accepted, in km²: larger ones are drawing mistakes.
AUMAN_MAX_AREA_KM2 = env_float("AUMAN_MAX_AREA_KM2", 25, minimum=0.001)
AUMAN_CONFLICT_BUFFER_M = env_float("AUMAN_CONFLICT_BUFFER_M", 10, minimum=0)
# A moratorium area (Aufgrabeverbot, rule C5) lasts this many years from its resurfacing unless it says otherwise.
AUMAN_MORATORIUM_YEARS = env_int("AUMAN_MORATORIUM_YEARS", 5, minimum=1)


def _conflict_rules() -> dict[str, object]:
    """The coordination rules' parameters (roadworks/rules.py; README lists them). AUMAN_CONFLICT_RULES (JSON)
    overrides single parameters per rule, e.g. {"C2": {"distance_m": 500}, "C10": {"enabled": false}}.

    Checked at start-up by the system check roadworks.E001: unknown rules or parameters and bad values stop
    manage.py check, migrate, runserver and the workers with a message naming them."""
    buffer = AUMAN_CONFLICT_BUFFER_M
    rules: dict[str, object] = {
        "C1": {"enabled": True, "severity": "error", "buffer_m": buffer},
        "C2": {"enabled": True, "severity": "warning", "distance_m": 300.0, "skip_when_c1": True},
        "C3": {"enabled": True, "severity": "error", "buffer_m": buffer},
        "C4": {"enabled": True, "severity": "warning", "buffer_m": buffer, "impacts": ["closure", "restriction"]},
        "C5": {"enabled": True, "severity": "error", "buffer_m": 0.0, "exempt_emergency": True},
        "C6": {"enabled": True, "severity": "warning", "distance_m": 100.0},
        "C7": {
            "enabled": True,
            "severity": "warning",
            "closure_severity": "error",
            "buffer_m": buffer,
            "stop_buffer_m": 25.0,
            "kinds": ["tram_line", "bus_line", "stop", "emergency_route"],
        },
        "C9": {"enabled": True, "severity": "warning", "distance_m": buffer, "kinds": ["roadworks", "closure"]},
        "C10": {"enabled": True, "severity": "info", "months": 6, "distance_m": 50.0, "street_distance_m": 300.0},
    }
    given = env_json("AUMAN_CONFLICT_RULES", {})
    if not isinstance(given, dict):
        raise ImproperlyConfigured("AUMAN_CONFLICT_RULES must be a JSON object: rule code -> {parameter: value}")
    for code, parameters in given.items():
        # Merged parameter by parameter; unknown rules and parameters are kept for the system check to name.
        default = rules.get(code)
        merge = isinstance(default, dict) and isinstance(parameters, dict)
        rules[code] = {**default, **parameters} if merge else parameters
    return rules


AUMAN_CONFLICT_RULES = _conflict_rules()
# New conflicts of these severities are e-mailed to the applicants and the coordinators.
AUMAN_CONFLICT_NOTIFY_SEVERITIES = env_list("AUMAN_CONFLICT_NOTIFY_SEVERITIES", "error,warning,info")
# Completed works stay public this many days.
AUMAN_PUBLIC_COMPLETED_DAYS = env_int("AUMAN_PUBLIC_COMPLETED_DAYS", 14, minimum=0)
AUMAN_MAP_CENTER = [env_float("AUMAN_MAP_CENTER_LAT", 49.4875), env_float("AUMAN_MAP_CENTER_LON", 8.4660)]
AUMAN_MAP_ZOOM = env_int("AUMAN_MAP_ZOOM", 13, minimum=1)
# How often the staff's map (the control room) asks for changes; each unchanged answer is a 304 without a body.
AUMAN_MAP_POLL_SECONDS = env_int("AUMAN_MAP_POLL_SECONDS", 30, minimum=5)
# Vector tiles (maps/tiles.py): how long a browser may reuse a public tile before revalidating, in seconds, and
# how many years of accidents up to the chosen day the accidents layer shows.
AUMAN_TILE_MAX_AGE = env_int("AUMAN_TILE_MAX_AGE", 60, minimum=0)
AUMAN_TILE_ACCIDENT_YEARS = env_int("AUMAN_TILE_ACCIDENT_YEARS", 3, minimum=1)
# Base map tiles; empty means no base map (offline test machines).
AUMAN_TILE_URL = env_str("AUMAN_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
AUMAN_TILE_ATTRIBUTION = env_str("AUMAN_TILE_ATTRIBUTION", "&copy; OpenStreetMap contributors")
AUMAN_FEED_MAX_AGE = env_int("AUMAN_FEED_MAX_AGE", 60, minimum=0)
# Each web process reuses a feed's data fingerprint for this long: polls cost no query, and a change is served
# within this many seconds (issue: within 2 s). 0 takes it on every request.
AUMAN_FEED_FINGERPRINT_SECONDS = env_float("AUMAN_FEED_FINGERPRINT_SECONDS", 1.0, minimum=0)
AUMAN_FEED_PUBLISHER = env_str("AUMAN_FEED_PUBLISHER", "Stadt Mannheim")
AUMAN_FEED_CONTACT_EMAIL = env_str("AUMAN_FEED_CONTACT_EMAIL", "verkehr@mannheim.de")
AUMAN_HEALTH_WORKER_TIMEOUT = env_float("AUMAN_HEALTH_WORKER_TIMEOUT", 2.0, minimum=0.1)

# --- Roadworks: permit workflow, deadlines, attachments ----------------------------------------
# Public holidays of this German state (ISO 3166-2 suffix) are not working days.
GERMAN_STATES = ("BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH")
AUMAN_HOLIDAY_STATE = env_str("AUMAN_HOLIDAY_STATE", "BW").upper()
if AUMAN_HOLIDAY_STATE not in GERMAN_STATES:
    raise ImproperlyConfigured(
        f"AUMAN_HOLIDAY_STATE must be one of {', '.join(GERMAN_STATES)}, not {AUMAN_HOLIDAY_STATE!r}"
    )


def _decision_days() -> dict[str, int]:
    """Working days the authority has for a decision, per category; the JSON may override some of them.

    Defaults follow the lead times German road traffic authorities ask for (about one week for short works,
    two weeks as a rule, four weeks with full closures); emergency works are decided within two days."""
    days = {"minor": 5, "standard": 10, "major": 20, "emergency": 2}
    given = env_json("AUMAN_DECISION_DAYS", {})
    if not isinstance(given, dict) or set(given) - set(days):
        raise ImproperlyConfigured(f"AUMAN_DECISION_DAYS must be a JSON object with keys from {sorted(days)}")
    for key, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ImproperlyConfigured(f"AUMAN_DECISION_DAYS[{key!r}] must be a whole number of days >= 0")
        days[key] = value
    return days


AUMAN_DECISION_DAYS = _decision_days()
# Uploaded files (roadwork attachments). They are served only through the API's permission-checked
# download, never directly from MEDIA_URL.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "var/media")))
MEDIA_URL = "media/"
AUMAN_MAX_ATTACHMENT_BYTES = env_int("AUMAN_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, minimum=1024)
# Bulk imports (gisio) of at most this many features run in the request; larger files become a background job
# (about 30 ms per feature: 200 take some 6 s, well inside gunicorn's 30 s timeout).
AUMAN_IMPORT_SYNC_FEATURES = env_int("AUMAN_IMPORT_SYNC_FEATURES", 200, minimum=0)

# --- Accidents: black spots (Unfallhäufungsstellen) and work-zone crashes ---------------------
# Rules as the FGSV guideline for accident commissions (M Uko 2012) defines them; the rule set is
# checked by traffic.blackspots.blackspot_rules() and documented in README.md. radius_m is the
# DBSCAN neighbourhood: 25 m gives the compact spot (about 50 m across) M Uko means inside towns.
AUMAN_BLACKSPOT_RADIUS_M = env_float("AUMAN_BLACKSPOT_RADIUS_M", 25, minimum=1)
AUMAN_BLACKSPOT_RULES = env_json(
    "AUMAN_BLACKSPOT_RULES",
    [
        # One-year map: at least 5 accidents of the same type (Unfalltyp).
        {"code": "UHS-1J", "years": 1, "radius_m": AUMAN_BLACKSPOT_RADIUS_M, "min_accidents": 5, "same_type": True},
        # Three-year map: at least 3 accidents with people killed or seriously injured.
        {
            "code": "UHS-3J-SP",
            "years": 3,
            "radius_m": AUMAN_BLACKSPOT_RADIUS_M,
            "min_accidents": 3,
            "categories": [1, 2],
        },
        # Three-year map, weighted: 2 x slightly injured + 5 x killed or seriously injured >= 15.
        {
            "code": "UHS-3J-SCORE",
            "years": 3,
            "radius_m": AUMAN_BLACKSPOT_RADIUS_M,
            "categories": [1, 2, 3],
            "weights": {"1": 5, "2": 5, "3": 2},
            "min_score": 15,
        },
    ],
)
# Whether anonymous users may read black spots through the API (many cities publish them).
AUMAN_BLACKSPOTS_PUBLIC = env_bool("AUMAN_BLACKSPOTS_PUBLIC", False)
# An accident this close (metres) to a roadwork active at its time is a work-zone crash.
AUMAN_WORK_ZONE_CRASH_DISTANCE_M = env_float("AUMAN_WORK_ZONE_CRASH_DISTANCE_M", 50, minimum=0)

# --- E-mail (work-zone crash notices) ----------------------------------------------------------
# The console backend by default: mails are printed, not sent, until an operator configures SMTP.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "auman@localhost")

LEAFLET_CONFIG = {
    "DEFAULT_CENTER": tuple(AUMAN_MAP_CENTER),
    "DEFAULT_ZOOM": AUMAN_MAP_ZOOM,
    "TILES": [("OSM", AUMAN_TILE_URL, {"attribution": AUMAN_TILE_ATTRIBUTION})] if AUMAN_TILE_URL else [],
    "SRID": 3857,
}

# Debian 12 ships GDAL 3.6, which cannot block network access for spatial references.
# AUMAn never lets users name a spatial reference: GeoJSON with a "crs" member is rejected.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- External sources (interop; docs/interop.md) ------------------------------------------------------------
# Seconds an external source may take to answer (connect and each read).
AUMAN_INTEROP_TIMEOUT = env_float("AUMAN_INTEROP_TIMEOUT", 20, minimum=1)
# A source's answer (decompressed) larger than this is refused, and nothing of it is stored.
AUMAN_INTEROP_MAX_BYTES = env_int("AUMAN_INTEROP_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)
AUMAN_INTEROP_USER_AGENT = env_str("AUMAN_INTEROP_USER_AGENT", f"AUMAn/1.0 (+{SITE_URL})")
