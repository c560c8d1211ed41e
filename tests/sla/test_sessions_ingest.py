"""End to end: go-livepeer events through the ingest pipeline, then session derivation."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from sla.models import Segment, SegmentMinute, Session
from sla.sessions.derive import derive
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR, ANCHOR_MS

pytestmark = pytest.mark.django_db

SIGNING = "0x52CF2968b3DC6016778742D3539449A6597D5954"
ONCHAIN = "0xd00354656922168815Fcd1e51CBddB9e359e3C7F"
URL = "https://rtav-orch2.example:28935"
OTHER = "0x5263E0Ce3a97B634D8828CE4337aD0F70B30B077"
OTHER_URL = "https://other.example:8935"


def envelope(n: int, kind: str, ms: int, data: Any) -> dict[str, Any]:
    return {
        "id": f"ev-{n}",
        "type": kind,
        "timestamp": str(ANCHOR_MS + ms),
        "gateway": "gw-e2e",
        "data": data,
    }


def trace(
    n: int, ms: int, subtype: str, address: str = "", url: str = "", seconds: bool = False
) -> dict[str, Any]:
    stamp: float = (ANCHOR_MS + ms) / 1000 if seconds else ANCHOR_MS + ms
    return envelope(
        n,
        "stream_trace",
        ms,
        {
            "stream_id": "stream-e2e",
            "request_id": "req-e2e",
            "pipeline": "streamdiffusion-sdxl",
            "type": subtype,
            "timestamp": stamp,
            "orchestrator_info": {"address": address, "url": url},
        },
    )


def status(n: int, ms: int, fps: float, address: str = SIGNING, url: str = URL) -> dict[str, Any]:
    return envelope(
        n,
        "ai_stream_status",
        ms,
        {
            "stream_id": "stream-e2e",
            "request_id": "req-e2e",
            "pipeline": "streamdiffusion-sdxl",
            "orchestrator_info": {"address": address, "url": url},
            "inference_status": {"fps": fps, "restart_count": 0},
            "input_status": {"fps": 30.0},
        },
    )


def capabilities() -> dict[str, Any]:
    return {
        "id": "caps-1",
        "type": "network_capabilities",
        "timestamp": str(ANCHOR_MS - 60_000),
        "payload": [
            {
                "address": ONCHAIN,
                "local_address": SIGNING,
                "orch_uri": URL,
                "capabilities": {"capacities": {"36": 3}, "version": "0.8.8"},
                "hardware": [
                    {
                        "pipeline": "live-video-to-video",
                        "model_id": "streamdiffusion-sdxl",
                        "gpu_info": {"0": {"id": "GPU-7d1c", "name": "NVIDIA GeForce RTX 4090"}},
                    }
                ],
            }
        ],
    }


def test_go_livepeer_events_become_a_session_with_segments_after_ingest() -> None:
    events = [
        capabilities(),
        trace(1, 0, "gateway_receive_stream_request"),
        trace(2, 400, "gateway_send_first_ingest_segment"),
        trace(3, 900, "runner_receive_first_ingest_segment", url=URL, seconds=True),
        trace(4, 3_000, "runner_send_first_processed_segment", SIGNING.lower(), URL, seconds=True),
        trace(5, 3_600, "gateway_receive_first_processed_segment", SIGNING, URL),
        status(6, 10_000, 20.0),
        status(7, 20_000, 22.0),
        status(8, 30_000, 18.0),
        envelope(
            9,
            "ai_stream_events",
            34_000,
            {
                "stream_id": "stream-e2e",
                "request_id": "req-e2e",
                "type": "error",
                "message": "runner crashed",
            },
        ),
        trace(10, 35_000, "orchestrator_swap"),
        status(11, 45_000, 25.0, OTHER, OTHER_URL),
        trace(12, 50_000, "gateway_ingest_stream_closed"),
    ]
    # delivered in two batches, the second one first and twice
    late_first = json.dumps(events[7:])
    ingest_messages([Message(body=late_first)], source="test", received_at=ANCHOR + timedelta(minutes=1))
    derive(now=ANCHOR + timedelta(minutes=1))
    ingest_messages(
        [Message(body=json.dumps(events[:7])), Message(body=late_first)],
        source="test",
        received_at=ANCHOR + timedelta(minutes=2),
    )
    derive(now=ANCHOR + timedelta(minutes=2))

    s = Session.objects.get(stream_id="stream-e2e", request_id="req-e2e")
    assert (s.status, s.close_cause, s.outcome, s.started) == ("closed", "trace", "ok", True)
    assert (s.p2ff_ms, s.startup_ms, s.e2e_ms) == pytest.approx((3600.0, 2100.0, 3200.0))
    assert (s.orchestrator, s.swap_count, s.segment_count) == (OTHER.lower(), 1, 2)
    first, second = Segment.objects.filter(session=s).order_by("ordinal")
    assert (first.orchestrator, first.signing_address, first.orchestrator_url) == (
        ONCHAIN.lower(),
        SIGNING.lower(),
        URL,
    )
    assert (first.gpu_id, first.gpu_type) == ("GPU-7d1c", "NVIDIA GeForce RTX 4090")
    assert (first.swapped_away, first.swap_reason, first.error_class) == (True, "model_error", "orchestrator")
    assert (first.fps_samples, first.fps_sum, first.p2ff_ms) == (3, 60.0, pytest.approx(3600.0))
    assert (second.orchestrator, second.fps_samples, second.ended_cleanly) == (OTHER.lower(), 1, True)
    minute = SegmentMinute.objects.get(segment=first)
    assert (minute.samples, minute.in_fps_samples, minute.bucket) == (3, 3, ANCHOR)
