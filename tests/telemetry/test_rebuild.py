from __future__ import annotations

import copy
import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.services import rebuild_facts
from telemetry.tables import FACT_TABLES
from tests.conftest import ANCHOR, ANCHOR_MS
from tests.telemetry.examples import all_examples, examples

pytestmark = pytest.mark.django_db

START = ANCHOR - timedelta(days=60)  # the seed 001 examples are of December 2025
END = ANCHOR + timedelta(days=1)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every fact row of every table, sorted: the thing a rebuild must reproduce exactly."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with connection.cursor() as cursor:
        for table in FACT_TABLES:
            cursor.execute(f"SELECT * FROM {table.name}")  # noqa: S608
            out[table.name] = sorted(cursor.fetchall(), key=repr)
    return out


def shifted(event: dict[str, Any], days: int, suffix: str) -> dict[str, Any]:
    """A copy of a go-livepeer ms-timestamped example moved by whole days (a second day of data)."""
    copy_ = copy.deepcopy(event)
    copy_["id"] = f"{copy_['id']}-{suffix}"
    copy_["timestamp"] = str(int(copy_["timestamp"]) + days * 86_400_000)
    data = copy_["data"]
    if isinstance(data.get("timestamp"), int):
        data["timestamp"] += days * 86_400_000
    return copy_


def ingest_everything() -> None:
    events = all_examples() + [
        shifted(e, -1, "yesterday") for e in examples("ai_stream_status") + examples("stream_trace")[:1]
    ]
    ingest_messages([Message(body=json.dumps(events[:20]))], source="test", received_at=ANCHOR)
    later = ANCHOR + timedelta(minutes=1)
    ingest_messages([Message(body=json.dumps(events[20:]))], source="test", received_at=later)


def test_facts_after_rebuild_equal_facts_after_ingest_row_for_row() -> None:
    ingest_everything()
    before = snapshot()
    assert all(before.values()), {k: len(v) for k, v in before.items()}
    summary = rebuild_facts(START, END)
    assert snapshot() == before
    assert summary["raw_events"] == len(all_examples()) + 2
    assert summary["facts_written"] == summary["facts_deleted"] == sum(len(v) for v in before.values())
    assert summary["chunks"] == 62
    assert summary["invalid_now"] == 0


def test_rebuild_restores_facts_that_were_lost_or_changed() -> None:
    ingest_everything()
    before = snapshot()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_fact_status")
        cursor.execute("UPDATE telemetry_fact_payment SET expected_value_wei = 0")
        cursor.execute("DELETE FROM telemetry_fact_trace WHERE trace_type = 'orchestrator_swap'")
    rebuild_facts(START, END)
    assert snapshot() == before


def test_rebuild_touches_only_the_facts_of_raw_rows_in_its_range() -> None:
    ingest_everything()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM telemetry_fact_status")
    day_start = ANCHOR.replace(hour=0)
    summary = rebuild_facts(day_start, day_start + timedelta(days=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_time FROM telemetry_fact_status ORDER BY event_time")
        times = [row[0] for row in cursor.fetchall()]
    # today's status sample and today's runner sample come back; yesterday's copy stays deleted
    assert times and all(day_start <= t < day_start + timedelta(days=1) for t in times)
    assert summary["chunks"] == 1


def test_the_rebuild_command_reports_progress_on_stderr_and_a_json_summary_on_stdout() -> None:
    ingest_messages(
        [Message(body=json.dumps(examples("ai_stream_status")))], source="test", received_at=ANCHOR
    )
    out, err = StringIO(), StringIO()
    start = (ANCHOR - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (ANCHOR + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    call_command("rebuild", "--from", start, "--to", end, stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert (summary["raw_events"], summary["facts_written"], summary["chunks"]) == (1, 1, 3)
    assert summary["facts_by_table"] == {"telemetry_fact_status": 1}
    assert err.getvalue().count("rebuild: chunk") == 3
    assert "done until" in err.getvalue()


def test_raw_rows_that_no_longer_pass_the_contract_are_counted_not_fatal() -> None:
    ingest_messages(
        [Message(body=json.dumps(examples("ai_stream_status")))], source="test", received_at=ANCHOR
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE telemetry_events_raw SET payload = jsonb_set(payload, '{data,stream_id}', '\"\"')"
        )
    summary = rebuild_facts(ANCHOR - timedelta(hours=1), ANCHOR + timedelta(hours=1))
    assert (summary["raw_events"], summary["invalid_now"], summary["facts_written"]) == (1, 1, 0)
    assert ANCHOR_MS  # anchored data only
