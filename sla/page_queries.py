"""Reads that only the pages need: filter choices, unranked scores, an orchestrator's breakdown and its recent
sessions, and the newest activity that anchors a page's window. Built on :mod:`sla.rollups`, the sla models
and :mod:`sla.queries`; frozen dataclasses out, no HTTP and no raw SQL here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max

from sla import metrics
from sla.models import Segment, Session
from sla.queries import StoredScore, ranked_scores
from sla.rollups import (
    Filters,
    OrchestratorSummary,
    PerfPoint,
    ReliabilityPoint,
    orchestrator_summary,
    perf_window,
    reliability_series,
    reliability_window,
)


@dataclass(frozen=True)
class Choices:
    """Workflows and regions seen in a window (for the page's dropdowns), sorted, without blanks."""

    workflows: tuple[str, ...]
    regions: tuple[str, ...]


def choices(start: datetime, end: datetime) -> Choices:
    """Every workflow and region with a segment in the reliability rollups over [start, end)."""
    keys = reliability_window(Filters(), start, end, ("pipeline", "region"))
    workflows = {p.keys["pipeline"] for p in keys if p.keys.get("pipeline")}
    regions = {p.keys["region"] for p in keys if p.keys.get("region")}
    return Choices(tuple(sorted(workflows)), tuple(sorted(regions)))


def unranked_scores(
    period: str, window_end: datetime, workflow: str | None, orchestrators: set[str] | None
) -> list[StoredScore]:
    """Scores of one window that are not ranked: :func:`sla.queries.ranked_scores` with ``sufficient=False``."""
    return ranked_scores(period, window_end, workflow, orchestrators, sufficient=False)


def last_activity(orchestrator: str | None = None) -> datetime | None:
    """Newest request or end time of any session (or, for one orchestrator, of its segments)."""
    if orchestrator is None:
        found = Session.objects.aggregate(r=Max("request_at"), e=Max("ended_at"))
    else:
        found = Segment.objects.filter(orchestrator=orchestrator.lower()).aggregate(
            r=Max("request_at"), e=Max("ended_at")
        )
    times: list[datetime] = [t for t in (found["r"], found["e"]) if t is not None]
    return max(times) if times else None


@dataclass(frozen=True)
class GpuLine:
    gpu_id: str
    gpu_type: str
    region: str
    workflows: tuple[str, ...]
    output_fps: float | None
    segments: int


@dataclass(frozen=True)
class OrchestratorOverview:
    """What the orchestrator page shows beside its scores, over [start, end)."""

    summary: OrchestratorSummary
    gpus: tuple[GpuLine, ...]
    series: tuple[ReliabilityPoint, ...]  # per bucket of ``interval``, all workflows together
    interval: str

    @property
    def failures_by_class(self) -> dict[str, int]:
        rel = self.summary.reliability
        return dict(rel.failures_by_class) if rel else {}

    @property
    def swaps_by_reason(self) -> dict[str, int]:
        rel = self.summary.reliability
        return {k: v for k, v in rel.swaps_by_reason.items() if v} if rel else {}


def _gpu_lines(perf: Sequence[PerfPoint], rel: Sequence[ReliabilityPoint]) -> tuple[GpuLine, ...]:
    samples: dict[tuple[str, str, str], int] = {}
    fps_sum: dict[tuple[str, str, str], float] = {}
    segments: dict[tuple[str, str, str], int] = {}
    workflows: dict[tuple[str, str, str], set[str]] = {}
    for p in perf:
        key = (p.keys["gpu_id"], p.keys["gpu_type"], p.keys["region"])
        samples[key] = samples.get(key, 0) + p.samples
        fps_sum[key] = fps_sum.get(key, 0.0) + (p.output_fps or 0.0) * p.samples
        workflows.setdefault(key, set()).add(p.keys["pipeline"])
    for r in rel:
        key = (r.keys["gpu_id"], r.keys["gpu_type"], r.keys["region"])
        segments[key] = segments.get(key, 0) + r.segments
        workflows.setdefault(key, set()).add(r.keys["pipeline"])
    return tuple(
        GpuLine(
            gpu_id=key[0],
            gpu_type=key[1],
            region=key[2],
            workflows=tuple(sorted(w for w in workflows[key] if w)),
            output_fps=metrics.mean(fps_sum.get(key, 0.0), samples.get(key, 0)),
            segments=segments.get(key, 0),
        )
        for key in sorted(workflows)
    )


def orchestrator_overview(
    address: str, start: datetime, end: datetime, interval: str = "1h"
) -> OrchestratorOverview:
    """Totals, failure and swap reasons, workflows, GPUs and the per-bucket reliability series."""
    address = address.lower()
    f = Filters(orchestrator=address)
    gpu_keys = ("pipeline", "region", "gpu_id", "gpu_type")
    return OrchestratorOverview(
        summary=orchestrator_summary(address, end - start, end),
        gpus=_gpu_lines(perf_window(f, start, end, gpu_keys), reliability_window(f, start, end, gpu_keys)),
        series=tuple(reliability_series(f, interval, start, end)),
        interval=interval,
    )


@dataclass(frozen=True)
class RecentSession:
    """One segment of an orchestrator with its session's outcome (the orchestrator page's table)."""

    request_at: datetime | None
    stream_id: str
    request_id: str
    workflow: str
    gpu_type: str
    region: str
    outcome: str
    started: bool
    swapped_away: bool
    swap_reason: str
    error_class: str
    p2ff_ms: float | None
    e2e_ms: float | None
    swaps: int


def recent_sessions(orchestrator: str, end: datetime, limit: int = 20) -> list[RecentSession]:
    """The newest segments of this orchestrator requested before ``end``, newest first."""
    rows = (
        Segment.objects.filter(orchestrator=orchestrator.lower(), request_at__lt=end)
        .select_related("session")
        .order_by("-request_at", "-id")[:limit]
    )
    return [
        RecentSession(
            request_at=s.request_at,
            stream_id=s.session.stream_id,
            request_id=s.session.request_id,
            workflow=s.pipeline,
            gpu_type=s.gpu_type,
            region=s.region,
            outcome=s.session.outcome or s.session.status,
            started=s.started,
            swapped_away=s.swapped_away,
            swap_reason=s.swap_reason,
            error_class=s.error_class,
            p2ff_ms=s.p2ff_ms,
            e2e_ms=s.e2e_ms,
            swaps=s.session.swap_count,
        )
        for s in rows
    ]
