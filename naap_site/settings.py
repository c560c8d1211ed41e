"""Django settings. Every value comes from an environment variable with a documented default (README)."""

from __future__ import annotations

from pathlib import Path

from naap_site.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_int_list,
    env_list,
    env_secret,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("NAAP_DEBUG", False)
# No built-in key outside debug mode: sessions and CSRF tokens signed with a published key are forgeable.
SECRET_KEY = env_secret("NAAP_SECRET_KEY", debug=DEBUG)
ALLOWED_HOSTS = env_list("NAAP_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("NAAP_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "telemetry",
    "sla",
    "leaderboard",
]

# Every entry must be async-capable: under ASGI one sync-only middleware sends each request through the
# single thread Django keeps for sync code, and concurrent API reads would then be served one at a time.
# Django's built-ins are (they still hop briefly to that thread for their own hooks); the others here are
# checked by tests/sla/test_api_concurrency.py.
MIDDLEWARE = [
    # First, so that refused (429) and cached public reads cost nothing further down.
    "sla.http.PublicReadMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /static/ served by the ASGI app itself (uvicorn naap_site.asgi:application), no collectstatic needed:
    # WhiteNoise, through an async-capable subclass.
    "naap_site.static.StaticFilesMiddleware",
    "leaderboard.middleware.FramePolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "naap_site.urls"
ASGI_APPLICATION = "naap_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/naap")
# Connections per process in the psycopg pool; 0 turns the pool off (persistent connections instead).
NAAP_DB_POOL_SIZE = env_int("NAAP_DB_POOL_SIZE", 8, minimum=0)
DATABASES = {"default": database_from_url(DATABASE_URL, NAAP_DB_POOL_SIZE)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Celery: broker and queues. Queue names live in naap_site/celery.py.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("NAAP_CELERY_EAGER", False)
CELERY_KEY_PREFIX = env_str("NAAP_CELERY_KEY_PREFIX", "")

CHANNEL_LAYER_BACKEND = env_choice("NAAP_CHANNEL_LAYER", "redis", ("redis", "memory"))
if CHANNEL_LAYER_BACKEND == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("NAAP_CHANNEL_PREFIX", "naap")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("NAAP_CACHE_KEY_PREFIX", "naap"),
    }
}
if CHANNEL_LAYER_BACKEND == "memory":  # running without Redis (`make demo` says so): a per-process cache
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Ingest
NAAP_MAX_EVENT_BYTES = env_int("NAAP_MAX_EVENT_BYTES", 64 * 1024, minimum=1024)
NAAP_MAX_BODY_BYTES = env_int("NAAP_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
NAAP_MAX_FUTURE_SKEW_S = env_int("NAAP_MAX_FUTURE_SKEW_S", 300, minimum=0)
NAAP_INGEST_BATCH_SIZE = env_int("NAAP_INGEST_BATCH_SIZE", 2000, minimum=1)
NAAP_REJECTED_KEEP_BYTES = env_int("NAAP_REJECTED_KEEP_BYTES", 4096, minimum=64)
NAAP_PARTITION_DAYS_AHEAD = env_int("NAAP_PARTITION_DAYS_AHEAD", 3, minimum=1)
# 0 keeps the raw log forever (the default: it is the source of truth anyone can replay).
NAAP_RAW_RETENTION_DAYS = env_int("NAAP_RAW_RETENTION_DAYS", 0, minimum=0)

# Source adapters: how batches are cut and where they run (auto: Celery when the broker answers)
NAAP_SOURCE_MODE = env_choice("NAAP_SOURCE_MODE", "auto", ("auto", "celery", "inprocess"))
# a batch waits at most this long for more messages: it bounds the adapter's share of freshness
NAAP_SOURCE_MAX_DELAY_MS = env_int("NAAP_SOURCE_MAX_DELAY_MS", 250, minimum=1)
NAAP_SOURCE_MAX_IN_FLIGHT = env_int("NAAP_SOURCE_MAX_IN_FLIGHT", 4, minimum=1)
NAAP_SOURCE_RESULT_TIMEOUT_S = env_int("NAAP_SOURCE_RESULT_TIMEOUT_S", 120, minimum=1)

# Streamr node (WebSocket plugin) and MQTT plugin
NAAP_STREAMR_WS_URL = env_str("NAAP_STREAMR_WS_URL", "ws://127.0.0.1:7170")
NAAP_STREAMR_API_KEY = env_str("NAAP_STREAMR_API_KEY", "")
NAAP_STREAMR_STREAMS = env_list("NAAP_STREAMR_STREAMS", [])
NAAP_STREAMR_PARTITIONS = [int(p) for p in env_list("NAAP_STREAMR_PARTITIONS", [])]
# "auto" recognises {content, metadata} messages; "true"/"false" as the node's payloadMetadata
NAAP_STREAMR_PAYLOAD_METADATA = env_choice("NAAP_STREAMR_PAYLOAD_METADATA", "auto", ("auto", "true", "false"))
NAAP_MQTT_URL = env_str("NAAP_MQTT_URL", "mqtt://127.0.0.1:1883")
NAAP_MQTT_CLIENT_ID = env_str("NAAP_MQTT_CLIENT_ID", "naap-analytics")
NAAP_MQTT_PROTOCOL = env_choice("NAAP_MQTT_PROTOCOL", "5", ("5", "3.1.1"))  # a Streamr node's plugin: 3.1.1
NAAP_MQTT_SHARE_GROUP = env_str("NAAP_MQTT_SHARE_GROUP", "")  # consumers in one group split the stream
NAAP_KAFKA_BOOTSTRAP = env_str("NAAP_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
NAAP_KAFKA_TOPICS = env_list("NAAP_KAFKA_TOPICS", ["livepeer-events"])
NAAP_KAFKA_GROUP = env_str("NAAP_KAFKA_GROUP", "naap-analytics")

# Public API
NAAP_API_RATE_LIMIT = env_int("NAAP_API_RATE_LIMIT", 120, minimum=1)
NAAP_API_RATE_WINDOW_S = env_int("NAAP_API_RATE_WINDOW_S", 60, minimum=1)
NAAP_API_PUBLIC_PREFIX = env_str("NAAP_API_PUBLIC_PREFIX", "/v1/sla/")
NAAP_API_TRUST_FORWARDED_FOR = env_bool("NAAP_API_TRUST_FORWARDED_FOR", False)  # behind a trusted proxy
NAAP_API_DEFAULT_MAX_AGE_S = env_int("NAAP_API_DEFAULT_MAX_AGE_S", 30, minimum=0)
NAAP_API_RESPONSE_CACHE_S = env_int("NAAP_API_RESPONSE_CACHE_S", 60, minimum=0)  # 0 = no shared cache
NAAP_API_CACHE_NAMESPACE = env_str("NAAP_API_CACHE_NAMESPACE", "api")

# Session derivation: facts received this recently are read again by the next run (late commits)
NAAP_SLA_DERIVE_SETTLE_S = env_float("NAAP_SLA_DERIVE_SETTLE_S", 2.0, minimum=0.0)

# Embeds and ENS
NAAP_EMBED_FRAME_ANCESTORS = env_list("NAAP_EMBED_FRAME_ANCESTORS", ["https://explorer.livepeer.org"])
NAAP_ETH_RPC_URL = env_str("NAAP_ETH_RPC_URL", "")
NAAP_ENS_REGISTRY = env_str("NAAP_ENS_REGISTRY", "")  # empty: the mainnet ENS registry

# Sign-in with Ethereum and the personal pages
NAAP_SIWE_CHAIN_IDS = env_int_list("NAAP_SIWE_CHAIN_IDS", [1, 42161])  # mainnet, Arbitrum One
NAAP_SIWE_NONCE_RATE_LIMIT = env_int("NAAP_SIWE_NONCE_RATE_LIMIT", 20, minimum=1)  # per client IP ...
NAAP_SIWE_NONCE_RATE_WINDOW_S = env_int("NAAP_SIWE_NONCE_RATE_WINDOW_S", 60, minimum=1)  # ... per window
# Alert webhooks to private, loopback or link-local addresses are refused unless this is on (tests, LANs)
NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE", False)

# Publisher access control (telemetry.access): delegations, reconcile, ingest enforcement
NAAP_PUBLISHER_ENFORCEMENT = env_choice("NAAP_PUBLISHER_ENFORCEMENT", "off", ("off", "report", "enforce"))
NAAP_ACCESS_CACHE_S = env_int("NAAP_ACCESS_CACHE_S", 5, minimum=0)  # authorised set cached per process
NAAP_ACCESS_CHAIN_ID = env_int("NAAP_ACCESS_CHAIN_ID", 42161, minimum=1)  # EIP-712 domain chainId
NAAP_ACCESS_ACTIVE_WINDOW_H = env_int("NAAP_ACCESS_ACTIVE_WINDOW_H", 24, minimum=1)
NAAP_ACCESS_MAX_DELEGATION_DAYS = env_int("NAAP_ACCESS_MAX_DELEGATION_DAYS", 366, minimum=1)
NAAP_ACCESS_RECONCILE_S = env_int("NAAP_ACCESS_RECONCILE_S", 60, minimum=5)
NAAP_ACCESS_BACKEND = env_choice("NAAP_ACCESS_BACKEND", "database", ("database", "streamr"))
NAAP_STREAMR_RPC_URL = env_str("NAAP_STREAMR_RPC_URL", "")  # Polygon JSON-RPC for the StreamRegistry
NAAP_STREAMR_REGISTRY_ADDRESS = env_str("NAAP_STREAMR_REGISTRY_ADDRESS", "")
NAAP_STREAMR_STREAM_ID = env_str("NAAP_STREAMR_STREAM_ID", "")  # e.g. <owner>/naap/telemetry
NAAP_STREAMR_PRIVATE_KEY = env_str("NAAP_STREAMR_PRIVATE_KEY", "")  # key with grant rights on the stream

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "leaderboard.staticfinders.PlotlyFinder",  # vendor/plotly.min.js from the installed plotly package
]
# WhiteNoise serves what the finders find (Plotly included) when STATIC_ROOT was never collected.
WHITENOISE_USE_FINDERS = env_bool("NAAP_STATIC_USE_FINDERS", True)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("NAAP_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

LOG_LEVEL = env_str("NAAP_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
