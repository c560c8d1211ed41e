"""Fact relations read by the sla rollups, and the event-time minutes that received new fact rows."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from psycopg import sql

from telemetry.tables import FACT_CAPABILITY, FACT_INGEST, FACT_PAYMENT

# The rollup SELECTs in ``sla/sql`` name the fact tables they read through these placeholders (substituted as
# identifiers when the SQL is composed), so renaming a telemetry table cannot silently break them.
ROLLUP_FACT_RELATIONS: dict[str, str] = {
    "fact_ingest": FACT_INGEST.name,
    "fact_payment": FACT_PAYMENT.name,
    "fact_capability": FACT_CAPABILITY.name,
}
# The fact tables whose new rows change rollups (ingest counters, payments, capabilities).
ROLLUP_FACT_TABLES: tuple[str, ...] = tuple(ROLLUP_FACT_RELATIONS.values())

# The minutes that received fact rows (not the span between the earliest and latest: one hours-late row
# among current ones must not make every level recompute the hours in between).
FACT_MINUTES_RECEIVED_SQL = """
SELECT date_bin(INTERVAL '1 minute', event_time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), max(received_at)
FROM {table} WHERE received_at > %s GROUP BY 1
"""


def fact_minutes_received(table: str, since: datetime) -> list[tuple[datetime, datetime]]:
    """(minute, newest received_at) for each event-time minute of ``table`` with rows received after ``since``."""
    if table not in ROLLUP_FACT_TABLES:
        raise ValueError(f"not a fact table read by the rollups: {table}")
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(FACT_MINUTES_RECEIVED_SQL).format(table=sql.Identifier(table)), [since])
        return [(minute, newest) for minute, newest in cursor.fetchall()]
