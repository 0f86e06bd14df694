"""Settings for the test suite: the same real servers, but their own Redis database and key prefix,
so a running `make run` worker never takes the tests' tasks."""

import os
from urllib.parse import urlsplit, urlunsplit

from .settings import *  # noqa: F403
from .settings import REDIS_URL


def _with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


TEST_REDIS_URL = os.environ.get("AUMAN_TEST_REDIS_URL", _with_redis_db(REDIS_URL, 15))
CACHES["default"]["LOCATION"] = TEST_REDIS_URL  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = "auman-test"  # noqa: F405
CELERY_BROKER_URL = TEST_REDIS_URL
# The map must work without a base map: no tile server is reachable in tests.
AUMAN_TILE_URL = ""
LEAFLET_CONFIG["TILES"] = []  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in production
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

# Parallel runs (several developers or helpers on one machine) each get their own test database.
DATABASES["default"]["TEST"] = {"NAME": "test_auman" + os.environ.get("AUMAN_TEST_DB_SUFFIX", "")}  # noqa: F405
# The suite makes many requests from one address; the rate-limit tests set small limits of their own.
AUMAN_RATE_API_ANON = AUMAN_RATE_API_USER = AUMAN_RATE_FEEDS = AUMAN_RATE_TILES = "1000000/m"
# Feeds take their fingerprint on every request, so a test sees its change in the very next answer
# (tests/feeds/test_http.py checks the production setting's 2-second promise on its own).
AUMAN_FEED_FINGERPRINT_SECONDS = 0
