from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from telemetry.pipeline.classify import classify_error
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR
from tests.telemetry.examples import examples

pytestmark = pytest.mark.django_db

ORCH = "0x52cf2968b3dc6016778742d3539449a6597d5954"


def ingest(events: list[dict[str, Any]]) -> None:
    result = ingest_messages([Message(body=json.dumps(events))], source="test", received_at=ANCHOR)
    assert result.rejected == 0, result.rejected_by_reason


def rows(table: str, columns: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} ORDER BY event_time, dedup_key")  # noqa: S608
        return list(cursor.fetchall())


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def test_a_status_event_becomes_one_status_sample_with_output_and_input_fps() -> None:
    ingest(examples("ai_stream_status"))
    assert rows(
        "telemetry_fact_status",
        "event_time, received_at, gateway, stream_id, request_id, pipeline, orchestrator, orchestrator_url, "
        "state, output_fps, input_fps, restart_count, last_error, last_output_time, region",
    ) == [
        (
            ms(1767966802512),
            ANCHOR,
            "gw-example-1",
            "stream-374e1e-mk6xofol",
            "ce6ee475",
            "streamdiffusion-sdxl-faceid",
            ORCH,
            "https://rtav-orch2.xodeapp.xyz:28935",
            "ONLINE",
            19.987593721986812,
            20.087531690596748,
            0,
            None,
            ms(1767966802505),
            "",
        )
    ]


def test_trace_times_come_from_the_data_timestamp_in_milliseconds_or_runner_seconds() -> None:
    ingest(examples("stream_trace"))
    assert rows("telemetry_fact_trace", "event_time, trace_type, orchestrator, orchestrator_url") == [
        (ms(1767966890407), "gateway_receive_stream_request", "", ""),
        (
            ms(1767966892050),
            "runner_send_first_processed_segment",
            ORCH,
            "https://rtav-orch2.xodeapp.xyz:28935",
        ),
    ]


def test_naap_v1_gateway_events_map_onto_the_trace_subtypes_with_reason_and_region() -> None:
    ingest(
        examples("gateway.request.start")
        + examples("gateway.request.first_frame")
        + examples("gateway.swap")
        + examples("gateway.request.end")
    )
    t0 = 1767966890000
    assert rows("telemetry_fact_trace", "event_time, stream_id, pipeline, trace_type, detail, region") == [
        (ms(t0), "stream-naap-1", "krea-realtime-v1", "gateway_receive_stream_request", "", "us-east-1"),
        (
            ms(t0 + 1850),
            "stream-naap-1",
            "krea-realtime-v1",
            "gateway_receive_first_processed_segment",
            "",
            "us-east-1",
        ),
        (ms(t0 + 30000), "stream-naap-1", "krea-realtime-v1", "orchestrator_swap", "timeout", "us-east-1"),
        (
            ms(t0 + 600000),
            "stream-naap-1",
            "krea-realtime-v1",
            "gateway_ingest_stream_closed",
            "inference timeout",
            "us-east-1",
        ),
    ]


def test_a_runner_metrics_sample_is_a_status_sample() -> None:
    ingest(examples("runner.metrics.sample"))
    assert rows("telemetry_fact_status", "stream_id, orchestrator, output_fps, input_fps, region") == [
        ("stream-naap-1", ORCH, 23.5, 24.0, "us-east-1")
    ]


def test_ingest_metrics_keep_byte_counters_per_track_packets_and_rtt_in_milliseconds() -> None:
    event = examples("stream_ingest_metrics")[0]
    event["data"]["stats"]["track_stats"][0]["rtt"] = 45_500_000  # nanoseconds
    ingest([event])
    assert rows(
        "telemetry_fact_ingest",
        "conn_quality, bytes_received, bytes_sent, video_packets_received, video_packets_lost, "
        "audio_packets_received, audio_packets_lost, video_jitter_ms, rtt_ms",
    ) == [("good", 38372218, 138919, 33061, 0, 9016, 0, 6.874066136065424, 45.5)]


def test_stream_errors_are_stored_with_their_class() -> None:
    event = examples("ai_stream_events")[0]
    other = json.loads(json.dumps(event))
    other["id"] = "second"
    other["data"]["message"] = "runner crashed: CUDA out of memory"
    ingest([event, other])
    assert sorted(rows("telemetry_fact_error", "event_kind, message, error_class")) == [
        ("error", "runner crashed: CUDA out of memory", "orchestrator"),
        ("error", "whip disconnected", "client"),
    ]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("whip disconnected", "client"),
        ("user disconnected", "client"),
        ("context deadline exceeded", "network"),
        ("read tcp 10.0.0.1:443: connection reset by peer", "network"),
        ("i/o timeout", "network"),
        ("inference timeout", "orchestrator"),
        ("CUDA out of memory", "orchestrator"),
        ("runner process exited: panic", "orchestrator"),
        ("no orchestrators available", "orchestrator"),
        ("", "unknown"),
        ("something odd", "unknown"),
    ],
)
def test_error_messages_are_classified_by_who_is_to_blame(message: str, expected: str) -> None:
    assert classify_error(message, "error") == expected


def test_payments_are_parsed_exactly_and_expected_value_is_tickets_times_face_value_times_win_prob() -> None:
    ingest(examples("create_new_payment")[:1])
    ((recipient, sender, request_id, session, tickets, face, prob, price, expected),) = rows(
        "telemetry_fact_payment",
        "recipient, sender, request_id, session_id, num_tickets, face_value_wei, win_prob, "
        "price_wei_per_pixel, expected_value_wei",
    )
    assert (recipient, sender) == (
        "0xd00354656922168815fcd1e51cbddb9e359e3c7f",
        "0x5ae4e42db3671370a0c25aff451e7482aaec3d0b",
    )
    assert (request_id, session, tickets) == ("ce6ee475", "ff083926", 2)
    assert face == Decimal("2400000000000000")
    assert prob == Decimal("0.001")
    assert price == Decimal("1646.821")
    assert expected == Decimal("4800000000000")  # 2 × 2.4e15 × 0.001, exact


def test_capabilities_give_one_row_per_orchestrator_without_hardware_and_per_gpu_with_it() -> None:
    ingest(examples("network_capabilities"))
    got = rows(
        "telemetry_fact_capability",
        "ord, origin, address, local_address, orchestrator_url, pipeline, model_id, gpu_id, gpu_type, "
        "capacity, version",
    )
    assert got == [
        # hardware null: one row; capacity = the largest AI-capability slot count (ids >= 27 are all 1)
        (0, "network_capabilities", "0x5263e0ce3a97b634d8828ce4337ad0f70b30b077", ORCH,
         "https://localhost:18935", "", "", "", "", 1, "0.8.3"),
        (0, "network_capabilities", "0xd00354656922168815fcd1e51cbddb9e359e3c7f", ORCH,
         "https://rtav-orch2.xodeapp.xyz:28935", "live-video-to-video", "streamdiffusion-sdxl",
         "GPU-7d1c2b3a-0000-4000-8000-1a2b3c4d5e6f", "NVIDIA GeForce RTX 4090", 3, "0.8.8"),
        (1, "network_capabilities", "0xd00354656922168815fcd1e51cbddb9e359e3c7f", ORCH,
         "https://rtav-orch2.xodeapp.xyz:28935", "live-video-to-video", "streamdiffusion-sdxl",
         "GPU-8e2d3c4b-0000-4000-8000-2b3c4d5e6f70", "NVIDIA GeForce RTX 4090", 3, "0.8.8"),
    ]  # fmt: skip


def test_discovery_results_and_orch_health_are_capability_rows_of_their_origin() -> None:
    ingest(examples("discovery_results") + examples("orch.health"))
    got = rows(
        "telemetry_fact_capability",
        "origin, address, orchestrator_url, model_id, gpu_type, region, capacity, latency_ms",
    )
    assert sorted(got) == [
        ("discovery_results", ORCH, "https://localhost:18935", "", "", "", None, 93.0),
        ("naap", ORCH, "https://rtav-orch2.xodeapp.xyz:28935", "krea-realtime-v1", "NVIDIA GeForce RTX 4090",
         "us-east-1", 4, None),
        ("naap", ORCH, "https://rtav-orch2.xodeapp.xyz:28935", "krea-realtime-v1", "NVIDIA GeForce RTX 4090",
         "us-east-1", 4, None),
    ]  # fmt: skip


def test_open_pool_jobs_and_worker_connections_are_job_rows() -> None:
    ingest(examples("job-processed") + examples("worker-connected") + examples("worker-disconnected"))
    worker = "0x5263e0ce3a97b634d8828ce4337ad0f70b30b077"
    assert rows(
        "telemetry_fact_job",
        "event_type, address, duration_ms, response_time_ms, compute_units, fees_wei, real_time_ratio",
    ) == [
        ("worker-connected", worker, None, None, None, None, None),
        ("job-processed", worker, 4167.0, 845.0, 41580000, Decimal("5696460000"), 4.0),
        ("worker-disconnected", worker, None, None, None, None, None),
    ]


def test_unknown_and_fact_less_types_are_kept_raw_only() -> None:
    ingest(
        examples("node_trace")
        + examples("orch.assignment")
        + [{"id": "n1", "type": "brand_new_thing", "timestamp": "1767966802512", "data": {"x": 1}}]
    )
    tables = ("status", "trace", "ingest", "error", "payment", "capability", "job")
    assert all(rows(f"telemetry_fact_{name}", "1") == [] for name in tables)
    assert len(rows("telemetry_events_raw", "1")) == 5
