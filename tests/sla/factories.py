"""Fact rows for session tests, with explicit times (seconds after ANCHOR) and content-derived dedup keys,
so that delivering the same fact twice is a duplicate exactly as in ingest."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from psycopg import sql

from naap_site.timeseries import ensure_partitions
from telemetry.tables import FACT_CAPABILITY, FACT_ERROR, FACT_STATUS, FACT_TRACE, TimeTable
from tests.conftest import ANCHOR

PIPELINE = "streamdiffusion-sdxl"
SIGNING_A = "0x52cf2968b3dc6016778742d3539449a6597d5954"
ONCHAIN_B = "0xd00354656922168815fcd1e51cbddb9e359e3c7f"
ORCH_C = "0x5263e0ce3a97b634d8828ce4337ad0f70b30b077"
ORCH_D = "0x1111111111111111111111111111111111111111"
URL_B = "https://orch-b.example:8935"
URL_C = "https://orch-c.example:8935"
URL_D = "https://orch-d.example:8935"


def at(seconds: float) -> datetime:
    return ANCHOR + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Fact:
    table: TimeTable
    values: tuple[tuple[str, Any], ...]  # column → value, without dedup_key and received_at

    @property
    def event_time(self) -> datetime:
        return dict(self.values)["event_time"]

    @property
    def dedup_key(self) -> bytes:
        return hashlib.blake2b(repr((self.table.name, self.values)).encode(), digest_size=16).digest()


def _fact(table: TimeTable, **values: Any) -> Fact:
    return Fact(table, tuple(sorted(values.items())))


def status(
    t: float,
    fps: float | None,
    *,
    stream: str = "s1",
    request: str = "r1",
    orch: str = SIGNING_A,
    url: str = URL_B,
    in_fps: float | None = None,
    restarts: int | None = None,
    last_error: str | None = None,
    gateway: str = "gw-1",
    pipeline: str = PIPELINE,
    region: str = "",
) -> Fact:
    return _fact(
        FACT_STATUS,
        region=region,
        event_time=at(t),
        gateway=gateway,
        stream_id=stream,
        request_id=request,
        pipeline=pipeline,
        orchestrator=orch,
        orchestrator_url=url,
        state="ONLINE",
        output_fps=fps,
        input_fps=in_fps,
        restart_count=restarts,
        last_error=last_error,
    )


def trace(
    t: float,
    trace_type: str,
    *,
    stream: str = "s1",
    request: str = "r1",
    orch: str = "",
    url: str = "",
    detail: str = "",
    gateway: str = "gw-1",
    pipeline: str = PIPELINE,
) -> Fact:
    return _fact(
        FACT_TRACE,
        event_time=at(t),
        gateway=gateway,
        stream_id=stream,
        request_id=request,
        pipeline=pipeline,
        trace_type=trace_type,
        orchestrator=orch,
        orchestrator_url=url,
        detail=detail,
    )


def error(
    t: float,
    message: str,
    error_class: str,
    *,
    stream: str = "s1",
    request: str = "r1",
    gateway: str = "gw-1",
) -> Fact:
    return _fact(
        FACT_ERROR,
        event_time=at(t),
        gateway=gateway,
        stream_id=stream,
        request_id=request,
        pipeline=PIPELINE,
        event_kind="error",
        message=message,
        error_class=error_class,
    )


def capability(
    t: float,
    address: str,
    *,
    local_address: str = "",
    url: str = "",
    pipeline: str = "live-video-to-video",
    model_id: str = PIPELINE,
    gpu_id: str = "",
    gpu_type: str = "",
    region: str = "",
    origin: str = "network_capabilities",
    ord: int = 0,
) -> Fact:
    return _fact(
        FACT_CAPABILITY,
        event_time=at(t),
        ord=ord,
        origin=origin,
        address=address,
        local_address=local_address,
        orchestrator_url=url,
        pipeline=pipeline,
        model_id=model_id,
        gpu_id=gpu_id,
        gpu_type=gpu_type,
        region=region,
    )


def healthy_session(
    stream: str = "s1", request: str = "r1", start: float = 0.0, orch: str = SIGNING_A, url: str = URL_B
) -> list[Fact]:
    """Request → first frame after 3.8 s, five samples, closed at +90 s."""

    def t(seconds: float) -> float:
        return start + seconds

    keys = {"stream": stream, "request": request}
    return [
        trace(t(0), "gateway_receive_stream_request", **keys),
        trace(t(0.5), "gateway_send_first_ingest_segment", **keys),
        trace(t(1.0), "runner_receive_first_ingest_segment", orch=orch, url=url, **keys),
        trace(t(3.0), "runner_send_first_processed_segment", orch=orch, url=url, **keys),
        trace(t(3.8), "gateway_receive_first_processed_segment", orch=orch, url=url, **keys),
        *(status(t(10 * i), 20.0, orch=orch, url=url, in_fps=30.0, **keys) for i in range(1, 6)),
        trace(t(90), "gateway_ingest_stream_closed", **keys),
    ]


def insert(facts: Iterable[Fact], received_at: datetime) -> None:
    """Write fact rows as ingest does (a re-delivered fact is ignored)."""
    by_table: dict[TimeTable, list[Fact]] = {}
    for f in facts:
        by_table.setdefault(f.table, []).append(f)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        for table, rows in by_table.items():
            ensure_partitions(cursor, table.name, (f.event_time for f in rows))
            for f in rows:
                columns = ["dedup_key", "received_at", *(name for name, _ in f.values)]
                values = [f.dedup_key, received_at, *(value for _, value in f.values)]
                cursor.execute(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
                        sql.Identifier(table.name),
                        sql.SQL(", ").join(sql.Identifier(c) for c in columns),
                        sql.SQL(", ").join(sql.Placeholder() * len(values)),
                    ),
                    values,
                )
