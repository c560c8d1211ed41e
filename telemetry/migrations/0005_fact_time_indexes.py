"""Indexes added to the time-table definitions after 0002 (the event-time indexes the sla rollups read fact
tables by). Idempotent: databases where ``sla`` 0005 created them before they moved here keep them as is."""

from django.db import migrations

from naap_site.timeseries import CreateTimeTableIndexes
from telemetry.tables import ALL_TABLES


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_access")]

    operations = [CreateTimeTableIndexes(ALL_TABLES)]
