"""The raw log's (event_type, event_time) and (stream_id, request_id) indexes were never read by a query but
were paid for on every insert."""

from django.db import migrations

INDEXES = ("telemetry_events_raw_event_type_event_time_idx", "telemetry_events_raw_stream_id_request_id_idx")

FORWARD = [f"DROP INDEX IF EXISTS {name}" for name in INDEXES]
BACKWARD = [
    "CREATE INDEX IF NOT EXISTS telemetry_events_raw_event_type_event_time_idx "
    "ON telemetry_events_raw (event_type, event_time)",
    "CREATE INDEX IF NOT EXISTS telemetry_events_raw_stream_id_request_id_idx "
    "ON telemetry_events_raw (stream_id, request_id)",
]


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0005_fact_time_indexes")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
