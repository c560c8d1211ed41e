"""SLA score (scoring version 1 of METRICS.md) as a pure function: frozen dataclasses in and out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sla.metrics import wilson_interval


@dataclass(frozen=True)
class Targets:
    fps: float
    p2ff_ms: float


@dataclass(frozen=True)
class ScoringParams:
    version: int
    weight_latency: float
    weight_reliability: float
    weight_performance: float
    latency_zero_multiple: float  # latency subscore reaches 0 at this multiple of the target
    jitter_free: float  # jitter up to this costs nothing
    jitter_span: float  # ... and costs everything at jitter_free + jitter_span
    min_sessions: int
    default_targets: Targets
    workflow_targets: Mapping[str, Targets] = field(default_factory=dict)

    def targets_for(self, workflow: str) -> Targets:
        return self.workflow_targets.get(workflow, self.default_targets)


@dataclass(frozen=True)
class ScoreInputs:
    sessions: int  # segments attributed to the orchestrator that ended (the sample size)
    started: int
    effective_ok: int
    swaps: int
    streams: int
    p2ff_p95_ms: float | None
    output_fps_mean: float | None
    jitter_mean: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreResult:
    score: float | None
    latency: float | None
    reliability: float | None
    performance: float | None
    sufficient: bool
    version: int


def latency_subscore(p95_ms: float | None, target_ms: float, zero_multiple: float) -> float | None:
    if p95_ms is None:
        return None
    if p95_ms <= target_ms:
        return 100.0
    zero_at = zero_multiple * target_ms
    if p95_ms >= zero_at:
        return 0.0
    return 100.0 * (zero_at - p95_ms) / (zero_at - target_ms)


def reliability_subscore(effective_ok: int, started: int, swaps: int, streams: int) -> float | None:
    interval = wilson_interval(effective_ok, started)
    if interval is None:
        return None
    swap_rate = min(1.0, swaps / streams) if streams > 0 else 0.0
    return 100.0 * interval[0] * (1.0 - swap_rate)


def performance_subscore(
    fps_mean: float | None,
    jitter_mean: float | None,
    target_fps: float,
    jitter_free: float,
    jitter_span: float,
) -> float | None:
    if fps_mean is None or target_fps <= 0:
        return None
    fps_part = min(1.0, fps_mean / target_fps)
    jitter_value = jitter_mean or 0.0
    jitter_part = max(0.0, 1.0 - max(0.0, jitter_value - jitter_free) / jitter_span)
    return 100.0 * fps_part * jitter_part


def score(inputs: ScoreInputs, workflow: str, params: ScoringParams) -> ScoreResult:
    targets = params.targets_for(workflow)
    latency = latency_subscore(inputs.p2ff_p95_ms, targets.p2ff_ms, params.latency_zero_multiple)
    reliability = reliability_subscore(inputs.effective_ok, inputs.started, inputs.swaps, inputs.streams)
    performance = performance_subscore(
        inputs.output_fps_mean, inputs.jitter_mean, targets.fps, params.jitter_free, params.jitter_span
    )
    sufficient = inputs.sessions >= params.min_sessions
    total: float | None = None
    if sufficient:
        # A missing subscore (no latency sample, nothing started, no fps) scores 0: absence of evidence
        # must not lift an orchestrator above one that was measured.
        total = (
            params.weight_latency * (latency or 0.0)
            + params.weight_reliability * (reliability or 0.0)
            + params.weight_performance * (performance or 0.0)
        )
        total = round(total, 6)
    return ScoreResult(
        score=total,
        latency=None if latency is None else round(latency, 6),
        reliability=None if reliability is None else round(reliability, 6),
        performance=None if performance is None else round(performance, 6),
        sufficient=sufficient,
        version=params.version,
    )
