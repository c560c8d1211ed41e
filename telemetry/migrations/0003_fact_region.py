"""Add ``region`` (NaaP v1 ``geo.region``) to the status and trace fact tables.

``0002`` builds the tables from ``telemetry.tables`` as it is today, so on a new database the column
already exists: hence ``IF NOT EXISTS``. On a partitioned parent (or hypertable) the column reaches every
partition (chunk).
"""

from django.db import migrations

_TABLES = ("telemetry_fact_status", "telemetry_fact_trace")

_FORWARD = [
    f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS region text NOT NULL DEFAULT ''" for name in _TABLES
]
_REVERSE = [f"ALTER TABLE {name} DROP COLUMN IF EXISTS region" for name in _TABLES]


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0002_time_tables")]

    operations = [migrations.RunSQL(_FORWARD, _REVERSE)]
