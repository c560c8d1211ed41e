"""Reads behind an orchestrator's personal pages, private API and exports: its own sessions with their
failure and swap reasons and trace timelines, the explanation of its scores, its per-GPU breakdown and its
place among the network's percentiles for the same workflow and region.

Every function takes the orchestrator's address and returns only rows attributed to it; aggregates of the
network (percentiles across orchestrators) never name another orchestrator. Frozen dataclasses out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce

from sla import metrics
from sla import queries as sla_queries
from sla.models import Segment
from sla.refresh import ceil_to
from sla.rollups import Filters, PerfPoint, ReliabilityPoint, perf_series, perf_window, reliability_series
from sla.rollups import reliability_window as rel_window
from sla.scoring import (
    ScoreInputs,
    ScoringParams,
    latency_subscore,
    performance_subscore,
    reliability_subscore,
    score,
)
from sla.scoring_models import Score, ScoringConfig
from telemetry import queries as telemetry_queries

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
SERIES_INTERVAL: dict[str, str] = {"1h": "5m", "24h": "1h", "7d": "1h"}
ALIGN: dict[str, timedelta] = {
    "1h": timedelta(minutes=5),
    "24h": timedelta(hours=1),
    "7d": timedelta(hours=1),
}
SCORE_PERIOD: dict[str, str] = {"1h": "1h", "24h": "24h", "7d": "24h"}  # stored score read per window
PERCENTILES = (0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Window:
    name: str
    start: datetime
    end: datetime
    interval: str  # rollup level of the charts


def window_for(name: str, now: datetime) -> Window:
    """[end − length, end) with ``end`` the next boundary after ``now`` that the rollup levels tile."""
    if name not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}")
    end = ceil_to(now, ALIGN[name])
    return Window(name, end - WINDOWS[name], end, SERIES_INTERVAL[name])


# --- sessions (segments served by the orchestrator) ------------------------------------------------------


@dataclass(frozen=True)
class SegmentRow:
    """The part of one session served by the orchestrator, with its outcome."""

    segment_id: int
    stream_id: str
    request_id: str
    ordinal: int
    gateway: str
    pipeline: str
    region: str
    gpu_id: str
    gpu_type: str
    signing_address: str
    request_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    started: bool
    ended: bool
    ended_cleanly: bool
    swapped_away: bool
    swap_reason: str
    error_class: str
    error_message: str
    p2ff_ms: float | None
    startup_ms: float | None
    e2e_ms: float | None
    fps_mean: float | None
    restart_count: int

    @property
    def failed(self) -> bool:
        """The rollups' definition: ended, and not (started and (clean or client error)), not a client error."""
        if not self.ended or self.error_class == "client":
            return False
        return not (self.started and self.ended_cleanly)

    @property
    def outcome(self) -> str:
        if not self.ended:
            return "open"
        if self.swapped_away:
            return "swapped"
        if self.failed:
            return "failed"
        return "client_error" if self.error_class == "client" else "ok"

    @property
    def reason(self) -> str:
        """Why the segment failed or was swapped away ("" when it did neither)."""
        parts = []
        if self.swapped_away:
            parts.append(f"swapped away: {self.swap_reason or 'unknown'}")
        if self.failed or self.error_class:
            label = self.error_class or ("did not start" if not self.started else "unclean end")
            parts.append(f"{label}: {self.error_message}" if self.error_message else label)
        return "; ".join(parts)


SEGMENT_FIELDS = (
    "id",
    "session__stream_id",
    "session__request_id",
    "ordinal",
    "gateway",
    "pipeline",
    "region",
    "gpu_id",
    "gpu_type",
    "signing_address",
    "at",
    "started_at",
    "ended_at",
    "started",
    "ended",
    "ended_cleanly",
    "swapped_away",
    "swap_reason",
    "error_class",
    "error_message",
    "p2ff_ms",
    "startup_ms",
    "e2e_ms",
    "fps_sum",
    "fps_samples",
    "restart_count",
)


def _segments(orchestrator: str, start: datetime, end: datetime) -> Any:
    # The same request time as the rollups: the segment's, else its session's, else its start.
    return (
        Segment.objects.filter(orchestrator=orchestrator.lower())
        .annotate(at=Coalesce(F("request_at"), F("session__request_at"), F("started_at")))
        .filter(at__gte=start, at__lt=end)
    )


def _row(values: dict[str, Any]) -> SegmentRow:
    samples = int(values["fps_samples"] or 0)
    return SegmentRow(
        segment_id=int(values["id"]),
        stream_id=values["session__stream_id"],
        request_id=values["session__request_id"],
        ordinal=int(values["ordinal"]),
        gateway=values["gateway"],
        pipeline=values["pipeline"],
        region=values["region"],
        gpu_id=values["gpu_id"],
        gpu_type=values["gpu_type"],
        signing_address=values["signing_address"],
        request_at=values["at"],
        started_at=values["started_at"],
        ended_at=values["ended_at"],
        started=bool(values["started"]),
        ended=bool(values["ended"]),
        ended_cleanly=bool(values["ended_cleanly"]),
        swapped_away=bool(values["swapped_away"]),
        swap_reason=values["swap_reason"],
        error_class=values["error_class"],
        error_message=values["error_message"],
        p2ff_ms=values["p2ff_ms"],
        startup_ms=values["startup_ms"],
        e2e_ms=values["e2e_ms"],
        fps_mean=metrics.mean(float(values["fps_sum"] or 0.0), samples),
        restart_count=int(values["restart_count"] or 0),
    )


def iter_segments(orchestrator: str, start: datetime, end: datetime) -> Iterator[SegmentRow]:
    """Every segment of the orchestrator requested in [start, end), oldest first, streamed from the DB."""
    rows = _segments(orchestrator, start, end).order_by("at", "id").values(*SEGMENT_FIELDS)
    for values in rows.iterator(chunk_size=2000):
        yield _row(values)


def segments(
    orchestrator: str, start: datetime, end: datetime, limit: int = 100, offset: int = 0
) -> tuple[int, list[SegmentRow]]:
    """One page of segments, newest first, with the total count."""
    qs = _segments(orchestrator, start, end)
    page = qs.order_by("-at", "-id").values(*SEGMENT_FIELDS)[offset : offset + limit]
    return qs.count(), [_row(v) for v in page]


def _problem_filter() -> Q:
    failed = Q(ended=True) & ~Q(error_class="client") & ~(Q(started=True) & Q(ended_cleanly=True))
    return Q(swapped_away=True) | failed


def problem_segments(
    orchestrator: str, start: datetime, end: datetime, limit: int = 50, offset: int = 0
) -> tuple[int, list[SegmentRow]]:
    """Segments that failed or were swapped away, newest first, with the total count."""
    qs = _segments(orchestrator, start, end).filter(_problem_filter())
    page = qs.order_by("-at", "-id").values(*SEGMENT_FIELDS)[offset : offset + limit]
    return qs.count(), [_row(v) for v in page]


def error_segments(
    orchestrator: str, start: datetime, end: datetime, limit: int = 100, offset: int = 0
) -> tuple[int, list[SegmentRow]]:
    """Segments that carry an error (any class) or failed, newest first, with the total count."""
    qs = _segments(orchestrator, start, end).filter(
        ~Q(error_class="") | (_problem_filter() & Q(swapped_away=False))
    )
    page = qs.order_by("-at", "-id").values(*SEGMENT_FIELDS)[offset : offset + limit]
    return qs.count(), [_row(v) for v in page]


def segment_of(orchestrator: str, segment_id: int) -> SegmentRow | None:
    """One segment, only when it belongs to ``orchestrator``."""
    qs: Any = Segment.objects.filter(id=segment_id, orchestrator=orchestrator.lower()).annotate(
        at=Coalesce(F("request_at"), F("session__request_at"), F("started_at"))
    )
    values = qs.values(*SEGMENT_FIELDS).first()
    return _row(values) if values else None


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    source: str  # trace | error
    kind: str
    detail: str
    error_class: str


def timeline(orchestrator: str, row: SegmentRow, limit: int = 200) -> list[TimelineEvent]:
    """Traces and errors of the session during the part this orchestrator served.

    Bounded to [request (or start), end] of the segment; traces sent about another orchestrator (the one
    swapped to, or from) are left out so that no other operator's data shows.
    """
    known = [t for t in (row.request_at, row.started_at) if t is not None]
    if not known:
        return []
    begin = min(known)
    finish = row.ended_at or datetime.max.replace(tzinfo=begin.tzinfo)
    mine = {"", orchestrator.lower(), row.signing_address.lower()}
    facts = telemetry_queries.session_timeline(row.stream_id, row.request_id, begin, finish, limit)
    return [
        TimelineEvent(f.event_time, f.source, f.kind, f.detail, f.error_class)
        for f in facts
        if f.orchestrator.lower() in mine
    ]


# --- score explanation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscoreLine:
    name: str  # latency | reliability | performance
    value: float | None  # as stored
    weight: float
    formula: str
    inputs: dict[str, float | int | None]


@dataclass(frozen=True)
class ScoreExplanation:
    stored: sla_queries.StoredScore
    subscores: tuple[SubscoreLine, ...]
    recomputed: float | None  # the score recomputed from the stored inputs with the same version
    min_sessions: int
    insufficient_reason: str


def _num(inputs: dict[str, Any], key: str) -> float | None:
    value = inputs.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def explain(stored: sla_queries.StoredScore, params: ScoringParams) -> ScoreExplanation:
    """Each subscore with the inputs and thresholds that produced it (pure: no database)."""
    i = stored.inputs
    targets = params.targets_for(stored.workflow)
    inputs = ScoreInputs(
        sessions=int(_num(i, "sessions") or 0),
        started=int(_num(i, "started") or 0),
        effective_ok=int(_num(i, "effective_ok") or 0),
        swaps=int(_num(i, "swaps") or 0),
        streams=int(_num(i, "streams") or 0),
        p2ff_p95_ms=_num(i, "p2ff_p95_ms"),
        output_fps_mean=_num(i, "output_fps_mean"),
        jitter_mean=_num(i, "jitter_mean"),
    )
    wilson = metrics.wilson_interval(inputs.effective_ok, inputs.started)
    swap_rate = min(1.0, inputs.swaps / inputs.streams) if inputs.streams > 0 else 0.0
    fps_part = (
        min(1.0, inputs.output_fps_mean / targets.fps)
        if inputs.output_fps_mean is not None and targets.fps > 0
        else None
    )
    jitter_part = max(
        0.0, 1.0 - max(0.0, (inputs.jitter_mean or 0.0) - params.jitter_free) / params.jitter_span
    )
    lines = (
        SubscoreLine(
            "latency",
            stored.latency,
            params.weight_latency,
            f"100 when P2FF p95 ≤ target, 0 at {params.latency_zero_multiple:g}× target, linear between",
            {
                "p2ff_p95_ms": inputs.p2ff_p95_ms,
                "target_p2ff_ms": targets.p2ff_ms,
                "zero_at_ms": params.latency_zero_multiple * targets.p2ff_ms,
                "recomputed": latency_subscore(
                    inputs.p2ff_p95_ms, targets.p2ff_ms, params.latency_zero_multiple
                ),
            },
        ),
        SubscoreLine(
            "reliability",
            stored.reliability,
            params.weight_reliability,
            "100 × Wilson 95 % lower bound of effective success × (1 − swap rate)",
            {
                "effective_ok": inputs.effective_ok,
                "started": inputs.started,
                "wilson_lower": wilson[0] if wilson else None,
                "swaps": inputs.swaps,
                "streams": inputs.streams,
                "swap_rate": swap_rate,
                "recomputed": reliability_subscore(
                    inputs.effective_ok, inputs.started, inputs.swaps, inputs.streams
                ),
            },
        ),
        SubscoreLine(
            "performance",
            stored.performance,
            params.weight_performance,
            "100 × min(1, FPS ÷ target) × jitter factor (free up to "
            f"{params.jitter_free:g}, 0 at {params.jitter_free + params.jitter_span:g})",
            {
                "output_fps_mean": inputs.output_fps_mean,
                "target_fps": targets.fps,
                "fps_part": fps_part,
                "jitter_mean": inputs.jitter_mean,
                "jitter_part": jitter_part,
                "recomputed": performance_subscore(
                    inputs.output_fps_mean,
                    inputs.jitter_mean,
                    targets.fps,
                    params.jitter_free,
                    params.jitter_span,
                ),
            },
        ),
    )
    result = score(inputs, stored.workflow, params)
    reason = ""
    if not stored.sufficient:
        reason = (
            f"{inputs.sessions} ended sessions in the window; a score needs at least {params.min_sessions}"
        )
    return ScoreExplanation(stored, lines, result.score, params.min_sessions, reason)


def score_explanations(orchestrator: str, period: str, workflow: str | None = None) -> list[ScoreExplanation]:
    """The newest stored score of each workflow (``period`` 1h or 24h), explained."""
    stored = sla_queries.latest_scores_of(orchestrator.lower(), period, workflow)
    versions = {s.version for s in stored}
    params = {c.version: c.params() for c in ScoringConfig.objects.filter(version__in=versions)}
    return [explain(s, params[s.version]) for s in stored if s.version in params]


def score_history(
    orchestrator: str, period: str, start: datetime, end: datetime
) -> list[sla_queries.StoredScore]:
    return sla_queries.score_series(orchestrator.lower(), period, start, end)


def scores_in(
    orchestrator: str, start: datetime, end: datetime, period: str | None = None
) -> list[sla_queries.StoredScore]:
    """Stored scores (newest version per window and workflow) whose window ends in (start, end]."""
    periods = [period] if period else ["1h", "24h"]
    out: list[sla_queries.StoredScore] = []
    for p in periods:
        out.extend(sla_queries.score_series(orchestrator.lower(), p, start, end))
    return sorted(out, key=lambda s: (s.window_end, s.period, s.workflow))


def latest_score_run() -> datetime | None:
    """When scores were last computed (any window): alert evaluation runs once per new score run."""
    value: datetime | None = Score.objects.aggregate(newest=Max("computed_at"))["newest"]
    return value


# --- per-GPU breakdown and the network's percentiles -----------------------------------------------------


@dataclass(frozen=True)
class GpuLine:
    pipeline: str
    region: str
    gpu_id: str
    gpu_type: str
    perf: PerfPoint | None
    rel: ReliabilityPoint | None


GPU_KEYS = ("pipeline", "region", "gpu_id", "gpu_type")


def gpu_breakdown(orchestrator: str, start: datetime, end: datetime) -> list[GpuLine]:
    f = Filters(orchestrator=orchestrator.lower())
    perf = {tuple(p.keys[k] for k in GPU_KEYS): p for p in perf_window(f, start, end, GPU_KEYS)}
    rel = {tuple(r.keys[k] for k in GPU_KEYS): r for r in rel_window(f, start, end, GPU_KEYS)}
    return [
        GpuLine(key[0], key[1], key[2], key[3], perf=perf.get(key), rel=rel.get(key))
        for key in sorted(set(perf) | set(rel))
    ]


@dataclass(frozen=True)
class MetricComparison:
    metric: str  # output_fps | p2ff_p95_ms | effective_success | swap_rate
    label: str
    unit: str
    higher_is_better: bool
    mine: float | None
    percentiles: dict[str, float | None]  # "p25", "p50", "p75", "p90" across orchestrators
    orchestrators: int  # how many orchestrators had a value
    rank_pct: float | None  # share of orchestrators the value is at least as good as (0–100)


@dataclass(frozen=True)
class NetworkComparison:
    pipeline: str
    region: str
    metrics: tuple[MetricComparison, ...]
    network_p2ff_p50_ms: float | None  # pooled over every session of the workflow and region
    network_p2ff_p95_ms: float | None


def _compare(
    metric: str, label: str, unit: str, higher: bool, values: dict[str, float | None], me: str
) -> MetricComparison:
    present = [v for v in values.values() if v is not None]
    mine = values.get(me)
    rank: float | None = None
    if mine is not None and present:
        as_good = sum(1 for v in present if (mine >= v if higher else mine <= v))
        rank = 100.0 * as_good / len(present)
    return MetricComparison(
        metric=metric,
        label=label,
        unit=unit,
        higher_is_better=higher,
        mine=mine,
        percentiles={f"p{round(q * 100)}": metrics.exact_percentile(present, q) for q in PERCENTILES},
        orchestrators=len(present),
        rank_pct=rank,
    )


def network_comparison(orchestrator: str, start: datetime, end: datetime) -> list[NetworkComparison]:
    """For each workflow × region the orchestrator served: its values against the distribution of the
    same values over every orchestrator that served that workflow and region in the window."""
    me = orchestrator.lower()
    mine = rel_window(Filters(orchestrator=me), start, end, ("pipeline", "region"))
    mine_perf = perf_window(Filters(orchestrator=me), start, end, ("pipeline", "region"))
    pairs = sorted(
        {(r.keys["pipeline"], r.keys["region"]) for r in mine}
        | {(p.keys["pipeline"], p.keys["region"]) for p in mine_perf}
    )
    out: list[NetworkComparison] = []
    for pipeline, region in pairs:
        f = Filters(pipeline=pipeline, region=region)
        rel = {r.keys["orchestrator"]: r for r in rel_window(f, start, end, ("orchestrator",))}
        perf = {p.keys["orchestrator"]: p for p in perf_window(f, start, end, ("orchestrator",))}
        pooled = rel_window(f, start, end)
        everyone = set(rel) | set(perf)
        comparisons = (
            _compare(
                "output_fps",
                "Output FPS",
                "fps",
                True,
                {o: perf[o].output_fps if o in perf else None for o in everyone},
                me,
            ),
            _compare(
                "p2ff_p95_ms",
                "P2FF p95",
                "ms",
                False,
                {o: rel[o].p2ff_ms.p95 if o in rel else None for o in everyone},
                me,
            ),
            _compare(
                "effective_success",
                "Effective success",
                "ratio",
                True,
                {o: rel[o].effective_success.value if o in rel else None for o in everyone},
                me,
            ),
            _compare(
                "swap_rate",
                "Swap rate",
                "swaps per stream",
                False,
                {o: rel[o].swap_rate if o in rel else None for o in everyone},
                me,
            ),
        )
        out.append(
            NetworkComparison(
                pipeline=pipeline,
                region=region,
                metrics=comparisons,
                network_p2ff_p50_ms=pooled[0].p2ff_ms.p50 if pooled else None,
                network_p2ff_p95_ms=pooled[0].p2ff_ms.p95 if pooled else None,
            )
        )
    return out


# --- series for charts and exports -----------------------------------------------------------------------


@dataclass(frozen=True)
class MetricBucket:
    """Performance and reliability of one bucket × workflow × region × GPU of the orchestrator."""

    bucket: datetime
    pipeline: str
    region: str
    gpu_id: str
    gpu_type: str
    perf: PerfPoint | None
    rel: ReliabilityPoint | None


def metric_buckets(
    orchestrator: str, interval: str, start: datetime, end: datetime, group_by: Sequence[str] = GPU_KEYS
) -> list[MetricBucket]:
    f = Filters(orchestrator=orchestrator.lower())
    keys = tuple(group_by)

    def key_of(bucket: datetime | None, dims: dict[str, str]) -> tuple[datetime, tuple[str, ...]]:
        assert bucket is not None
        return bucket, tuple(dims.get(k, "") for k in GPU_KEYS)

    perf = {key_of(p.bucket, p.keys): p for p in perf_series(f, interval, start, end, keys)}
    rel = {key_of(r.bucket, r.keys): r for r in reliability_series(f, interval, start, end, keys)}
    return [
        MetricBucket(
            bucket,
            dims[0],
            dims[1],
            dims[2],
            dims[3],
            perf=perf.get((bucket, dims)),
            rel=rel.get((bucket, dims)),
        )
        for bucket, dims in sorted(set(perf) | set(rel))
    ]
