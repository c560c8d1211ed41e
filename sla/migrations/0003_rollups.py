"""Rollup tables (plain PostgreSQL) or hypertables and hierarchical continuous aggregates (TimescaleDB),
and the refresh bookkeeping."""

from django.db import migrations

from naap_site.timeseries import CreateRollups
from sla.rollup_defs import ROLLUPS


class Migration(migrations.Migration):
    dependencies = [("sla", "0002_rollup_functions"), ("telemetry", "0002_time_tables")]

    operations = [
        CreateRollups(tuple(ROLLUPS.values())),
        migrations.RunSQL(
            sql="""
            CREATE TABLE sla_refresh_state (
                name text PRIMARY KEY,
                position timestamptz,
                pending_start timestamptz,
                pending_end timestamptz,
                refreshed_at timestamptz
            )""",
            reverse_sql="DROP TABLE sla_refresh_state",
        ),
    ]
