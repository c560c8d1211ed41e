"""Whether the configured PostgreSQL server preloads timescaledb, known before any test database exists.

Tests of the TimescaleDB path carry :func:`needs_timescale` (or :data:`TIMESCALE_MARKS`), so that on a plain server (as in CI) they are
skipped at collection and never set up a transactional database. The storage mode of the test database is
chosen by its first migration with the same check (``naap_site.timeseries.timescale_available``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import pytest

SKIP_REASON = "timescaledb extension not available"
F = TypeVar("F", bound=Callable[..., Any])


@cache
def timescale_preloaded() -> bool:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    try:
        conn = psycopg.connect(
            host=str(db["HOST"] or ""),
            port=str(db["PORT"] or ""),
            user=str(db["USER"] or ""),
            password=str(db["PASSWORD"] or ""),
            dbname="postgres",
            autocommit=True,
        )
    except psycopg.OperationalError:
        return False
    with conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return available is not None and preload is not None and "timescaledb" in str(preload[0])


TIMESCALE_MARKS = [
    pytest.mark.timescale,
    pytest.mark.skipif(not timescale_preloaded(), reason=SKIP_REASON),
]


def needs_timescale(test: F) -> F:
    for mark in TIMESCALE_MARKS:
        test = mark(test)
    return test
