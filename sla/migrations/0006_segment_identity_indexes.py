"""Indexes for the query that finds sessions affected by late capability facts (``CAPABILITY_STREAMS_SQL``
in ``sla/sessions/queries.py``): it matches segments by signing address, on-chain address or URL. The
on-chain address is served by ``sla_segment_orch``; these two cover the other keys, so the three
conditions become one bitmap OR instead of a scan of ``sla_segment``."""

from django.db import migrations

_INDEXES = """
CREATE INDEX IF NOT EXISTS sla_segment_signing ON sla_segment (signing_address);
CREATE INDEX IF NOT EXISTS sla_segment_url ON sla_segment (orchestrator_url);
"""
_INDEXES_REVERSE = """
DROP INDEX IF EXISTS sla_segment_signing;
DROP INDEX IF EXISTS sla_segment_url;
"""


class Migration(migrations.Migration):
    dependencies = [("sla", "0005_refresh_speed")]

    operations = [migrations.RunSQL(_INDEXES, _INDEXES_REVERSE)]
