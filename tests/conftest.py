"""Shared fixtures. Time is anchored on a constant; tests never depend on the wall clock's date."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from django.db import connection

from naap_site.timeseries import forget_partitions
from telemetry.tables import ALL_TABLES

ANCHOR = datetime(2026, 1, 9, 14, 0, tzinfo=UTC)
ANCHOR_MS = int(ANCHOR.timestamp() * 1000)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop test databases left behind by killed runs (named test_naap_<pid> of a dead process)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        conn = psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"],
            dbname="postgres",
            autocommit=True,
        )
    except psycopg.OperationalError:
        return
    with conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'test_naap_%'"
        ).fetchall():
            suffix = name.removeprefix("test_naap_")
            if suffix.isdigit() and not os.path.exists(f"/proc/{suffix}"):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _fresh_partition_cache() -> None:
    forget_partitions()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty Django cache (rate-limit counters, response cache, broadcast state).

    The cache is the real Redis; only this process's keys (its own KEY_PREFIX) are removed, so parallel
    runs on the same Redis database are left alone.
    """
    yield
    from django.conf import settings
    from django.core.cache import cache

    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    client = getattr(cache, "_cache", None)
    if not prefix or client is None or not hasattr(client, "get_client"):
        cache.clear()
        return
    redis = client.get_client(write=True)
    keys = list(redis.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        redis.delete(*keys)


@pytest.fixture
def clean_time_tables(transactional_db: None):
    """For transactional tests: time tables are partitioned, so truncate them explicitly afterwards."""
    yield
    with connection.cursor() as cursor:
        names = ", ".join(t.name for t in ALL_TABLES)
        cursor.execute(f"TRUNCATE {names}")
    forget_partitions()
