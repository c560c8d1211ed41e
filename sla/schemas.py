"""Input and output shapes of the public ``/v1/sla`` API (OpenAPI comes from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Schema(BaseModel):
    """Output shapes are plain pydantic models, built once by the handlers from frozen dataclasses.

    ninja's own ``Schema`` wraps every validation in an attribute getter for Django models, which costs
    ~1 ms per nested row here; nothing in this API validates ORM objects, so the plain model is enough.
    """


Interval = Literal["1m", "5m", "1h", "1d"]
Period = Literal["1h", "24h"]


class ErrorOut(Schema):
    detail: str = Field(description="What was wrong, naming the parameter when a parameter was wrong.")
    param: str | None = Field(None, description="The offending parameter, if any.")


class Page(Schema):
    limit: int
    offset: int
    total: int = Field(description="Rows matching the filters, across all pages.")
    next: str | None = Field(None, description="URL of the next page, or null on the last page.")


class Latency(Schema):
    """Latency distribution from fixed log-spaced histogram buckets (≤ 5 % relative error)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    count: int = 0


class Ratio(Schema):
    """A ratio published with its numerator, denominator and 95 % Wilson interval."""

    value: float | None = None
    numerator: int = 0
    denominator: int = 0
    wilson_low: float | None = None
    wilson_high: float | None = None


class GpuMetrics(Schema):
    output_fps: float | None = Field(None, description="Mean output FPS over performance samples.")
    input_fps: float | None = Field(None, description="Mean input (ingest) FPS.")
    prompt_to_first_frame_latency_ms: Latency
    jitter_coefficient: float | None = Field(None, description="Mean σ/μ of fps over session-minutes.")
    jitter_coefficient_p95: float | None = Field(None, description="95th percentile of per-minute σ/μ.")
    startup_time_ms: Latency
    e2e_latency_ms: Latency
    startup_success: Ratio = Field(description="Segments that produced output ÷ segments that ended.")
    effective_success: Ratio = Field(
        description="Started segments that ended cleanly without swap ÷ started."
    )
    failure_rate_pct: float | None = Field(None, description="Failed ÷ ended segments, in percent.")
    failures_by_class: dict[str, int] = Field(description="Failed segments per error class.")
    swap_rate_pct: float | None = Field(None, description="Swaps away ÷ streams, in percent.")
    swaps_by_reason: dict[str, int] = Field(description="Swaps away per reason.")
    restart_rate_per_hour: float | None = Field(None, description="Runner restarts per hour of output.")
    bandwidth_up_mbps: float | None = None
    bandwidth_down_mbps: float | None = None
    video_packet_loss_pct: float | None = None
    audio_packet_loss_pct: float | None = None
    cuda_utilization_efficiency_pct: float | None = Field(
        None, description="CUE proxy: achieved ÷ peak FLOP/s, from lookup tables; null when unknown."
    )
    cuda_utilization_efficiency_confidence: Literal["low", "high"] | None = None


class SampleCounts(Schema):
    fps_samples: int = 0
    jitter_samples: int = Field(0, description="Session-minutes with a jitter value (≥ 3 fps samples).")
    segments: int = Field(0, description="Orchestrator segments (one per session per orchestrator).")
    segments_ended: int = 0
    streams: int = 0
    swaps: int = 0
    network_samples: int = 0
    output_minutes: float = Field(0.0, description="Minutes of output produced.")


class GpuMetricsRow(Schema):
    o_wallet: str
    gpu_id: str
    gpu_type: str
    region: str
    workflow: str
    time_window: str = Field(description="ISO 8601 interval start/end (UTC, Z), end exclusive.")
    metrics: GpuMetrics
    samples: SampleCounts


class GpuMetricsOut(Schema):
    interval: Interval
    start: datetime
    end: datetime
    data: list[GpuMetricsRow]
    page: Page


class DemandRowOut(Schema):
    workflow: str
    region: str
    gateway: str | None = Field(description="The `gateway` filter, or null for all gateways together.")
    time_window: str = Field(description="ISO 8601 interval start/end (UTC, Z), end exclusive.")
    streams: int = Field(description="Streams first requested in this bucket.")
    sessions: int = Field(description="Stream request attempts in this bucket (a retry is a new session).")
    failed_sessions: int
    missing_capacity: int = Field(description="Sessions refused for lack of an orchestrator.")
    inference_minutes: float
    inference_minutes_by_gpu_type: dict[str, float]
    capacity_minutes: float = Field(description="Advertised slot-minutes (0 when a gateway is chosen).")
    capacity_rate: float | None = Field(
        None, description="inference ÷ capacity minutes; null without capacity."
    )
    fees_wei: str = Field(description="Expected ticket value in wei, integer as a string.")
    fees_eth: str = Field(description="Expected ticket value in ETH, exact decimal as a string.")
    active_orchestrators: int = Field(description="Distinct orchestrators producing output in the bucket.")


DemandInterval = Literal["1h", "1d"]


class DemandOut(Schema):
    interval: DemandInterval
    start: datetime
    end: datetime
    data: list[DemandRowOut]
    page: Page


class Subscores(Schema):
    latency: float | None = None
    reliability: float | None = None
    performance: float | None = None


class ComplianceOut(Schema):
    orchestrator_id: str
    workflow: str
    period: Period
    window_start: datetime
    window_end: datetime
    score: float | None
    subscores: Subscores
    inputs: dict[str, float | int | str | None]
    scoring_version: int
    sufficient: bool = Field(description="False when the sample was below the minimum; then not ranked.")


class ComplianceListOut(Schema):
    orchestrator_id: str
    period: Period
    data: list[ComplianceOut] = Field(description="The newest score of each workflow (or of `workflow`).")


class Headline(Schema):
    output_fps: float | None = None
    prompt_to_first_frame_p95_ms: float | None = None
    effective_success_ratio: float | None = None
    swap_rate_pct: float | None = None
    sessions: int = 0


class LeaderboardRow(Schema):
    rank: int
    address: str
    ens_name: str | None = Field(None, description="Verified ENS reverse name, when known.")
    workflow: str
    score: float
    subscores: Subscores
    headline: Headline
    scoring_version: int


class LeaderboardOut(Schema):
    period: Period
    workflow: str | None
    region: str | None
    window_start: datetime | None
    window_end: datetime | None
    data: list[LeaderboardRow]
    page: Page


OrchestratorWindow = Literal["1h", "24h", "7d", "30d"]


class WorkflowMetrics(Schema):
    workflow: str
    metrics: GpuMetrics
    samples: SampleCounts


class SeriesPoint(Schema):
    time_window: str = Field(description="ISO 8601 interval start/end (UTC, Z), end exclusive.")
    workflow: str
    metrics: GpuMetrics
    samples: SampleCounts


class GpuOut(Schema):
    gpu_id: str
    gpu_type: str
    region: str
    workflows: list[str]
    output_fps: float | None
    segments: int


class OrchestratorOut(Schema):
    address: str
    ens_name: str | None = Field(None, description="Verified ENS reverse name, when known.")
    window: OrchestratorWindow
    start: datetime
    end: datetime
    latest_scores: list[ComplianceOut] = Field(description="Newest 1 h and 24 h score of each workflow.")
    metrics: GpuMetrics = Field(description="Headline metrics over the whole window.")
    samples: SampleCounts
    workflows: list[WorkflowMetrics]
    gpus: list[GpuOut]
    interval: Interval = Field(description="Bucket width of `series`, chosen by the window.")
    series: list[SeriesPoint]


class CountOut(Schema):
    publisher: str
    key: str
    count: int


class LagOut(Schema):
    publisher: str | None = Field(description="null for all publishers together")
    events: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None


class SkewOut(Schema):
    publisher: str
    events: int
    median_offset_s: float | None = Field(description="median of event_time − received_at (s)")
    max_ahead_s: float | None
    events_ahead: int


class QualityOut(Schema):
    start: datetime
    end: datetime
    accepted_total: int
    rejected_total: int
    accepted: list[CountOut] = Field(description="accepted events per publisher and event type (key)")
    rejected: list[CountOut] = Field(description="rejected events per publisher and reason (key)")
    lag: list[LagOut]
    clock_skew: list[SkewOut]
