"""The raw-log write path: new events are COPYed straight into the raw table after a key look-up, and a
delivery that races another one falls back to the staging insert without losing or doubling anything."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from telemetry.contracts import Event
from telemetry.pipeline import ingest
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR, ANCHOR_MS
from tests.telemetry.test_ingest_pipeline import status_event

pytestmark = pytest.mark.django_db


def stored(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a constant table name
        return int(cursor.fetchone()[0])


def test_a_delivery_racing_a_committed_one_stores_only_the_new_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = [status_event("a"), status_event("b", ANCHOR_MS + 1000)]
    second = [*first, status_event("c", ANCHOR_MS + 2000)]
    ingest_messages([Message(body=json.dumps(first))], source="test", received_at=ANCHOR)
    # The look-up ran before the other delivery committed: it saw none of the batch's keys.
    looked_up: list[int] = []

    def saw_nothing(cursor: object, events: list[Event]) -> list[Event]:
        looked_up.append(len(events))
        return events

    monkeypatch.setattr(ingest, "_not_stored", saw_nothing)
    result = ingest_messages([Message(body=json.dumps(second))], source="test", received_at=ANCHOR)
    assert looked_up == [3]
    assert (result.accepted, result.duplicates) == (1, 2)
    assert stored("telemetry_events_raw") == 3
    assert stored("telemetry_fact_status") == 3  # facts only for the one new event


def test_the_raw_log_keeps_the_event_text_as_received() -> None:
    line = (
        '{"id": "x1", "type": "ai_stream_status", "timestamp": "TS", "gateway": "gw-1", '
        '"data": {"stream_id": "s", "inference_status": {"fps": 12.5}, "extra": {"kept": [1, 2.0, "é"]}}}'
    ).replace("TS", str(ANCHOR_MS))
    ingest_messages([Message(body=line)], source="test", received_at=ANCHOR)
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload = %s::jsonb FROM telemetry_events_raw", [line])
        assert cursor.fetchone()[0] is True


def test_streamr_metadata_is_stored_with_the_event() -> None:
    meta = {"publisherId": "0xabc", "sequenceNumber": 7}
    ingest_messages([Message(value=status_event("m"), metadata=meta)], source="streamr", received_at=ANCHOR)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT payload -> '_streamr' ->> 'sequenceNumber', payload ->> 'id' FROM telemetry_events_raw"
        )
        assert cursor.fetchone() == ("7", "m")
