from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings

from naap_site.timeseries import storage_mode
from telemetry.storage import maintain_storage
from tests.conftest import ANCHOR

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plain_path_only() -> None:
    if storage_mode() != "plain":
        pytest.skip("partitions exist on the plain PostgreSQL path only")


def partitions_of(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s ORDER BY 1",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


@override_settings(NAAP_PARTITION_DAYS_AHEAD=2, NAAP_RAW_RETENTION_DAYS=0)
def test_partitions_for_the_coming_days_are_created_ahead() -> None:
    report = maintain_storage(now=ANCHOR)
    assert report.mode == "plain"
    assert partitions_of("telemetry_events_raw") == [
        "telemetry_events_raw_p20260109",
        "telemetry_events_raw_p20260110",
        "telemetry_events_raw_p20260111",
    ]


@override_settings(NAAP_PARTITION_DAYS_AHEAD=1, NAAP_RAW_RETENTION_DAYS=30)
def test_retention_drops_only_whole_days_older_than_the_cutoff() -> None:
    maintain_storage(now=ANCHOR - timedelta(days=31))  # creates 2025-12-09 and 2025-12-10
    report = maintain_storage(now=ANCHOR)  # cutoff 2025-12-10 14:00
    assert "telemetry_events_raw_p20251209" in report.dropped
    remaining = partitions_of("telemetry_events_raw")
    assert "telemetry_events_raw_p20251210" in remaining  # ends after the cutoff: kept whole
    assert "telemetry_events_raw_p20260109" in remaining


class _Abort(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_partition_created_in_a_rolled_back_batch_is_created_again_by_the_next_one(
    clean_time_tables,
) -> None:
    import json

    from django.db import transaction

    from naap_site.timeseries import ensure_partitions
    from telemetry.pipeline.ingest import Message, ingest_messages

    day = ANCHOR - timedelta(days=20)
    with pytest.raises(_Abort), transaction.atomic(), connection.cursor() as cursor:
        ensure_partitions(cursor.cursor, "telemetry_events_raw", [day])
        raise _Abort
    assert "telemetry_events_raw_p20251220" not in partitions_of("telemetry_events_raw")

    event = {"id": "late-1", "type": "brand_new_thing", "timestamp": int(day.timestamp() * 1000), "data": {}}
    result = ingest_messages([Message(body=json.dumps(event))], source="test", received_at=ANCHOR)
    assert result.accepted == 1
    assert "telemetry_events_raw_p20251220" in partitions_of("telemetry_events_raw")
