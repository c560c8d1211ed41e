"""Shared fixtures. Time is anchored on a constant; tests never depend on the wall clock's date."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from naap_site.timeseries import forget_partitions
from telemetry.tables import ALL_TABLES

ANCHOR = datetime(2026, 1, 9, 14, 0, tzinfo=UTC)
ANCHOR_MS = int(ANCHOR.timestamp() * 1000)


@pytest.fixture(autouse=True)
def _fresh_partition_cache() -> None:
    forget_partitions()


@pytest.fixture
def clean_time_tables(transactional_db: None):
    """For transactional tests: time tables are partitioned, so truncate them explicitly afterwards."""
    yield
    with connection.cursor() as cursor:
        names = ", ".join(t.name for t in ALL_TABLES)
        cursor.execute(f"TRUNCATE {names}")
    forget_partitions()
