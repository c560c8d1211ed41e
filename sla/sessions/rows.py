"""The rows assembly produces, one dataclass per table; field names equal the model's column names."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(slots=True)
class MinuteRow:
    bucket: datetime
    orchestrator: str = ""
    pipeline: str = ""
    region: str = ""
    gpu_id: str = ""
    gpu_type: str = ""
    gateway: str = ""
    samples: int = 0
    fps_sum: float = 0.0
    fps_sumsq: float = 0.0
    fps_min: float | None = None
    fps_max: float | None = None
    in_fps_sum: float = 0.0
    in_fps_samples: int = 0
    jitter: float | None = None
    output_seconds: float = 0.0
    restarts: int = 0


@dataclass(slots=True)
class SegmentRow:
    ordinal: int
    orchestrator: str = ""
    signing_address: str = ""
    orchestrator_url: str = ""
    gpu_id: str = ""
    gpu_type: str = ""
    region: str = ""
    pipeline: str = ""
    gateway: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    first_output_at: datetime | None = None
    last_output_at: datetime | None = None
    started: bool = False
    ended: bool = False
    ended_cleanly: bool = False
    swapped_away: bool = False
    swap_reason: str = ""
    error_class: str = ""
    error_message: str = ""
    fps_samples: int = 0
    fps_sum: float = 0.0
    restart_count: int = 0
    request_at: datetime | None = None
    p2ff_ms: float | None = None
    startup_ms: float | None = None
    e2e_ms: float | None = None
    minutes: list[MinuteRow] = field(default_factory=list)


@dataclass(slots=True)
class SessionRow:
    stream_id: str
    request_id: str
    gateway: str = ""
    pipeline: str = ""
    region: str = ""
    request_at: datetime | None = None
    first_ingest_at: datetime | None = None
    runner_in_at: datetime | None = None
    runner_out_at: datetime | None = None
    first_frame_at: datetime | None = None
    closed_at: datetime | None = None
    first_output_at: datetime | None = None
    last_output_at: datetime | None = None
    ended_at: datetime | None = None
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None
    orchestrator: str = ""
    attribution_final: bool = False
    status: str = "open"
    close_cause: str = ""
    outcome: str = ""
    started: bool = False
    error_class: str = ""
    error_message: str = ""
    p2ff_ms: float | None = None
    startup_ms: float | None = None
    e2e_ms: float | None = None
    swap_count: int = 0
    restart_count: int = 0
    segment_count: int = 0
    segments: list[SegmentRow] = field(default_factory=list)


def column_names(row_type: type) -> list[str]:
    """The row's table columns (every field but the nested child lists)."""
    return [f.name for f in fields(row_type) if f.name not in {"segments", "minutes"}]
