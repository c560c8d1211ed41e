"""Rebuild and refresh speed (issue 4 §5c): session indexes the rollup SELECTs and the change collection read by,
and a faster histogram merge function (same results)."""

from pathlib import Path

from django.db import migrations

_SQL = Path(__file__).resolve().parent.parent / "sql"

# Payments are attributed to the earliest session of their request (demand_1h.sql); the refresh collects
# sessions updated since its last position.
_SESSION_INDEXES = """
CREATE INDEX IF NOT EXISTS sla_session_request_id ON sla_session (request_id, request_at, id);
CREATE INDEX IF NOT EXISTS sla_session_updated_at ON sla_session (updated_at);
"""
_SESSION_INDEXES_REVERSE = """
DROP INDEX IF EXISTS sla_session_request_id;
DROP INDEX IF EXISTS sla_session_updated_at;
"""

# The event-time indexes on the fact tables that the 1 m network and demand SELECTs read were created here
# at first; they belong to the telemetry table definitions now (telemetry 0005 creates them where missing).


class Migration(migrations.Migration):
    dependencies = [("sla", "0004_scoring"), ("telemetry", "0002_time_tables")]

    operations = [
        migrations.RunSQL(sql=_SESSION_INDEXES, reverse_sql=_SESSION_INDEXES_REVERSE),
        migrations.RunSQL(
            sql=(_SQL / "hist_add_fast.sql").read_text(),
            reverse_sql=(_SQL / "hist_add_fast_reverse.sql").read_text(),
        ),
    ]
