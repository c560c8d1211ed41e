"""Settings for the test suite: the plain-PostgreSQL path, an isolated Redis database and key prefix."""

from __future__ import annotations

import os

os.environ.setdefault("NAAP_SECURE_COOKIES", "false")
# A fixed key for tests; set in the environment so that servers and workers the tests start inherit it.
os.environ.setdefault("NAAP_SECRET_KEY", "test-only-secret-key-not-for-production")

from naap_site.settings import *  # noqa: E402,F403
from naap_site.settings import DATABASES, REDIS_URL  # noqa: E402

_pid = os.getpid()
# One test database per pytest process, so that several runs on one machine never collide.
DATABASES["default"]["TEST"] = {"NAME": f"test_naap_{_pid}"}
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].pop("OPTIONS", None)  # no pool: test transactions wrap single connections
TEST_REDIS_URL = os.environ.get("NAAP_TEST_REDIS_URL", REDIS_URL.rsplit("/", 1)[0] + "/15")
CELERY_BROKER_URL = TEST_REDIS_URL
CELERY_RESULT_BACKEND = TEST_REDIS_URL
CELERY_KEY_PREFIX = f"naaptest{_pid}:"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": TEST_REDIS_URL,
        "KEY_PREFIX": f"naaptest{_pid}",
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING", "handlers": []}}
