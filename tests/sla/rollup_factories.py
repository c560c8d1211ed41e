"""Build sessions, segments, segment-minutes and facts with explicit timestamps for rollup tests."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from naap_site.timeseries import ensure_partitions
from sla.models import DirtyRange, Segment, SegmentMinute, Session
from tests.conftest import ANCHOR

ORCH_A = "0x" + "a" * 40
ORCH_B = "0x" + "b" * 40
PIPE = "streamdiffusion-sdxl"


@dataclass
class SegSpec:
    orchestrator: str = ORCH_A
    offset_s: float = 0.0  # segment start relative to the session request
    started: bool = True
    ended: bool = True
    ended_cleanly: bool = True
    swapped_away: bool = False
    swap_reason: str = ""
    error_class: str = ""
    gpu_id: str = "gpu-0"
    gpu_type: str = "NVIDIA GeForce RTX 4090"
    region: str = "eu"
    p2ff_ms: float | None = 900.0
    startup_ms: float | None = 300.0
    e2e_ms: float | None = 450.0
    # minute offset (from the request minute) → fps samples of that minute
    fps: dict[int, list[float]] = field(default_factory=dict)
    in_fps: float = 30.0
    restarts: dict[int, int] = field(default_factory=dict)
    output_seconds: dict[int, float] = field(default_factory=dict)


def make_session(
    stream_id: str,
    request_id: str = "r1",
    request_at: datetime = ANCHOR,
    segments: tuple[SegSpec, ...] = (SegSpec(),),
    *,
    gateway: str = "gw-1",
    pipeline: str = PIPE,
    closed: bool = True,
    outcome: str = "ok",
    duration_s: float = 120.0,
) -> Session:
    ended_at = request_at + timedelta(seconds=duration_s) if closed else None
    last_orch = next((s.orchestrator for s in reversed(segments)), "")
    session = Session.objects.create(
        stream_id=stream_id,
        request_id=request_id,
        gateway=gateway,
        pipeline=pipeline,
        region=segments[0].region if segments else "",
        request_at=request_at,
        ended_at=ended_at,
        closed_at=ended_at,
        first_event_at=request_at,
        last_event_at=ended_at or request_at,
        orchestrator=last_orch,
        attribution_final=closed,
        status="closed" if closed else "open",
        outcome=outcome,
        started=any(s.started for s in segments),
        swap_count=sum(s.swapped_away for s in segments),
        segment_count=len(segments),
        updated_at=request_at,
    )
    for ordinal, spec in enumerate(segments):
        started_at = request_at + timedelta(seconds=spec.offset_s)
        seg = Segment.objects.create(
            session=session,
            ordinal=ordinal,
            orchestrator=spec.orchestrator,
            gpu_id=spec.gpu_id,
            gpu_type=spec.gpu_type,
            region=spec.region,
            pipeline=pipeline,
            gateway=gateway,
            started_at=started_at,
            ended_at=ended_at,
            started=spec.started,
            ended=spec.ended,
            ended_cleanly=spec.ended_cleanly,
            swapped_away=spec.swapped_away,
            swap_reason=spec.swap_reason,
            error_class=spec.error_class,
            request_at=request_at if ordinal == 0 else started_at,
            p2ff_ms=spec.p2ff_ms,
            startup_ms=spec.startup_ms,
            e2e_ms=spec.e2e_ms,
        )
        minute0 = request_at.replace(second=0, microsecond=0)
        for offset in sorted(set(spec.fps) | set(spec.output_seconds) | set(spec.restarts)):
            samples = spec.fps.get(offset, [])
            n = len(samples)
            mean = sum(samples) / n if n else 0.0
            jitter = None
            if n >= 3 and mean > 0:
                jitter = (sum((x - mean) ** 2 for x in samples) / n) ** 0.5 / mean
            SegmentMinute.objects.create(
                segment=seg,
                bucket=minute0 + timedelta(minutes=offset),
                orchestrator=spec.orchestrator,
                pipeline=pipeline,
                region=spec.region,
                gpu_id=spec.gpu_id,
                gpu_type=spec.gpu_type,
                gateway=gateway,
                samples=n,
                fps_sum=sum(samples),
                fps_sumsq=sum(x * x for x in samples),
                fps_min=min(samples) if samples else None,
                fps_max=max(samples) if samples else None,
                in_fps_sum=spec.in_fps * n,
                in_fps_samples=n,
                jitter=jitter,
                output_seconds=spec.output_seconds.get(offset, 10.0 * n),
                restarts=spec.restarts.get(offset, 0),
            )
    return session


def mark_dirty(start: datetime, end: datetime, kind: str = "sessions") -> None:
    DirtyRange.objects.create(kind=kind, start=start, end=end, created_at=start)


def _key(*parts: Any) -> bytes:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()


def insert_fact(table: str, event_time: datetime, received_at: datetime, **values: Any) -> None:
    cols = ["event_time", "dedup_key", "received_at", *values]
    params = [event_time, _key(table, event_time, *values.values()), received_at, *values.values()]
    with connection.cursor() as cursor:
        ensure_partitions(cursor, table, [event_time])
        placeholders = ", ".join(["%s"] * len(cols))
        cursor.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders})", params)


def ingest_sample(
    stream_id: str,
    request_id: str,
    at: datetime,
    bytes_received: int,
    bytes_sent: int,
    video: tuple[int, int] = (0, 0),
    audio: tuple[int, int] = (0, 0),
    received_at: datetime | None = None,
) -> None:
    insert_fact(
        "telemetry_fact_ingest",
        at,
        received_at or at,
        stream_id=stream_id,
        request_id=request_id,
        bytes_received=bytes_received,
        bytes_sent=bytes_sent,
        video_packets_received=video[0],
        video_packets_lost=video[1],
        audio_packets_received=audio[0],
        audio_packets_lost=audio[1],
    )


def payment(at: datetime, request_id: str, wei: int | str, gateway: str = "gw-1") -> None:
    insert_fact(
        "telemetry_fact_payment",
        at,
        at,
        gateway=gateway,
        request_id=request_id,
        expected_value_wei=Decimal(wei),
    )


def capability(
    at: datetime,
    address: str,
    capacity: int,
    *,
    pipeline: str = PIPE,
    gpu_id: str = "gpu-0",
    gpu_type: str = "NVIDIA GeForce RTX 4090",
    region: str = "eu",
    ord_: int = 0,
) -> None:
    insert_fact(
        "telemetry_fact_capability",
        at,
        at,
        ord=ord_,
        origin="network_capabilities",
        address=address,
        pipeline=pipeline,
        gpu_id=gpu_id,
        gpu_type=gpu_type,
        region=region,
        capacity=capacity,
    )
