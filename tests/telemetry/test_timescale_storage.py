"""The time tables on TimescaleDB: hypertables, compression with its policy, and the retention policy.

These need a PostgreSQL server whose shared_preload_libraries has timescaledb (``DATABASE_URL=... pytest -m
timescale``); elsewhere they skip.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from naap_site.timeseries import storage_mode
from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.storage import maintain_storage
from telemetry.tables import ALL_TABLES, RAW
from tests.conftest import ANCHOR, ANCHOR_MS
from tests.timescale_support import SKIP_REASON, TIMESCALE_MARKS

pytestmark = [pytest.mark.django_db, *TIMESCALE_MARKS]
TABLES = {t.name for t in ALL_TABLES}


@pytest.fixture(autouse=True)
def _timescale_only() -> None:
    if storage_mode() != "timescale":
        pytest.skip(SKIP_REASON)


def rows(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params or [])
        return list(cursor.fetchall())


def status_events(n: int, *, fps: float = 20.0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"ev-{i}",
            "type": "ai_stream_status",
            "timestamp": str(ANCHOR_MS + 1000 * i),
            "gateway": "gw-1",
            "data": {
                "stream_id": f"stream-{i % 3}",
                "request_id": f"req-{i % 3}",
                "pipeline": "streamdiffusion-sdxl",
                "orchestrator_info": {"address": "0x" + "a" * 40, "url": "https://o:1"},
                "inference_status": {"fps": fps + i},
            },
        }
        for i in range(n)
    ]


def retention_days() -> dict[str, timedelta]:
    return dict(
        rows(
            "SELECT hypertable_name, (config->>'drop_after')::interval FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention'"
        )
    )


def test_every_time_table_is_a_daily_hypertable_on_its_time_column() -> None:
    assert storage_mode() == "timescale"
    found = {
        name: (column, interval)
        for name, column, interval in rows(
            "SELECT hypertable_name, column_name, time_interval FROM timescaledb_information.dimensions"
        )
    }
    for table in ALL_TABLES:
        assert found[table.name] == (table.time_column, timedelta(days=1))
    keys = rows(
        "SELECT c.relname, pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " WHERE k.contype = 'p' AND c.relname = ANY(%s)",
        [sorted(TABLES)],
    )
    assert len(keys) == len(TABLES)
    assert all("event_time" in definition for _, definition in keys)  # the time column is in every key


def test_compression_is_enabled_segmented_and_scheduled_after_seven_days() -> None:
    enabled = dict(
        rows("SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables")
    )
    assert all(enabled[name] for name in TABLES)
    settings = {
        (name, attname): (segmentby, orderby, desc)
        for name, attname, segmentby, orderby, desc in rows(
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings"
        )
    }
    assert settings[(RAW.name, "event_type")][0] == 1
    for name in TABLES:
        assert settings[(name, "event_time")][1:] == (1, False)  # newest first inside a segment
    policies = dict(
        rows(
            "SELECT hypertable_name, (config->>'compress_after')::interval FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_compression'"
        )
    )
    assert policies == {name: timedelta(days=7) for name in TABLES}


def test_compressed_chunks_keep_every_row_and_still_refuse_duplicates() -> None:
    first = ingest_messages([Message(body=json.dumps(status_events(30)))], source="test", received_at=ANCHOR)
    assert first.accepted == 30
    raw_query = f"SELECT event_id, event_type, stream_id, event_time FROM {RAW.name} ORDER BY event_id"
    fact_query = "SELECT stream_id, output_fps, event_time FROM telemetry_fact_status ORDER BY event_time"
    raw_before, facts_before = rows(raw_query), rows(fact_query)
    compressed = rows(
        "SELECT compress_chunk(c) FROM show_chunks(%s) c UNION ALL SELECT compress_chunk(c)"
        " FROM show_chunks('telemetry_fact_status') c",
        [RAW.name],
    )
    assert len(compressed) == 2
    stats = rows(
        "SELECT chunk_name, compression_status FROM chunk_compression_stats(%s)"
        " UNION ALL SELECT chunk_name, compression_status FROM chunk_compression_stats('telemetry_fact_status')",
        [RAW.name],
    )
    assert [s[1] for s in stats] == ["Compressed", "Compressed"]
    assert rows(raw_query) == raw_before and rows(fact_query) == facts_before
    assert len(raw_before) == 30 and len(facts_before) == 30

    again = ingest_messages(
        [Message(body=json.dumps(status_events(32)))], source="test", received_at=ANCHOR + timedelta(days=8)
    )
    assert (again.accepted, again.duplicates) == (2, 30)
    assert len(rows(raw_query)) == 32 and len(rows(fact_query)) == 32


def test_the_retention_policy_follows_the_raw_retention_setting() -> None:
    with override_settings(NAAP_RAW_RETENTION_DAYS=30):
        report = maintain_storage(now=ANCHOR)
        assert report.mode == "timescale" and report.dropped == []
        assert report.retention_policies == dict.fromkeys(TABLES, "added")
        assert retention_days() == {name: timedelta(days=30) for name in TABLES}
        assert maintain_storage(now=ANCHOR).retention_policies == dict.fromkeys(TABLES, "kept")
    with override_settings(NAAP_RAW_RETENTION_DAYS=10):
        assert maintain_storage(now=ANCHOR).retention_policies == dict.fromkeys(TABLES, "replaced")
        assert retention_days() == {name: timedelta(days=10) for name in TABLES}
    with override_settings(NAAP_RAW_RETENTION_DAYS=0):
        assert maintain_storage(now=ANCHOR).retention_policies == dict.fromkeys(TABLES, "removed")
        assert retention_days() == {}
        assert maintain_storage(now=ANCHOR).retention_policies == dict.fromkeys(TABLES, "none")
