"""SQL helpers of the rollups: the histogram bucket function and the mergeable aggregates."""

from pathlib import Path

from django.db import migrations

_SQL = Path(__file__).resolve().parent.parent / "sql"


class Migration(migrations.Migration):
    dependencies = [("sla", "0001_sessions")]

    operations = [
        migrations.RunSQL(
            sql=(_SQL / "functions.sql").read_text(),
            reverse_sql=(_SQL / "functions_reverse.sql").read_text(),
        )
    ]
