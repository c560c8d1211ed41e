from __future__ import annotations

import json

import pytest
from django.db import connection

from telemetry.models import RejectedEvent
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR, ANCHOR_MS

pytestmark = pytest.mark.django_db


def status_event(event_id: str, ts: int = ANCHOR_MS, fps: float = 19.9) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "ai_stream_status",
        "timestamp": str(ts),
        "gateway": "gw-1",
        "data": {
            "stream_id": "stream-1",
            "request_id": "req-1",
            "pipeline": "streamdiffusion-sdxl",
            "orchestrator_info": {
                "address": "0x52CF2968B3DC6016778742D3539449A6597D5954",
                "url": "https://o:1",
            },
            "inference_status": {"fps": fps},
        },
    }


def raw_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_events_raw")
        return int(cursor.fetchone()[0])


def test_a_batch_is_stored_once_even_when_delivered_twice() -> None:
    body = json.dumps([status_event("a"), status_event("b", ANCHOR_MS + 10_000)])
    first = ingest_messages([Message(body=body)], source="test", received_at=ANCHOR)
    again = ingest_messages([Message(body=body)], source="test", received_at=ANCHOR)
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (again.accepted, again.duplicates) == (0, 2)
    assert raw_count() == 2


def test_addresses_are_lower_cased_and_times_are_utc() -> None:
    ingest_messages([Message(body=json.dumps(status_event("a")))], source="test", received_at=ANCHOR)
    with connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator, event_time FROM telemetry_events_raw")
        orchestrator, event_time = cursor.fetchone()
    assert orchestrator == "0x52cf2968b3dc6016778742d3539449a6597d5954"
    assert event_time == ANCHOR


def test_a_poison_event_is_rejected_with_its_reason_and_the_rest_is_kept() -> None:
    lines = "\n".join(
        [
            json.dumps(status_event("good")),
            "{not json",
            json.dumps({"id": "x", "type": "ai_stream_status", "timestamp": str(ANCHOR_MS + 3_600_000)}),
            "[1, 2]",
        ]
    )
    result = ingest_messages([Message(body=lines)], source="test", received_at=ANCHOR)
    assert result.accepted == 1
    assert dict(result.rejected_by_reason) == {"malformed_json": 1, "future_timestamp": 1, "not_an_object": 1}
    assert sorted(RejectedEvent.objects.values_list("reason", flat=True)) == [
        "future_timestamp",
        "malformed_json",
        "not_an_object",
    ]


def test_unknown_event_types_are_stored_raw_and_counted() -> None:
    event = {"id": "u1", "type": "brand_new_thing", "timestamp": ANCHOR_MS, "data": {"x": 1}}
    result = ingest_messages([Message(body=json.dumps(event))], source="test", received_at=ANCHOR)
    assert (result.accepted, result.unknown_types) == (1, 1)
