from django.db import migrations

from naap_site.timeseries import CreateTimeTable
from telemetry.tables import ALL_TABLES


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0001_initial")]

    operations = [CreateTimeTable(table) for table in ALL_TABLES]
