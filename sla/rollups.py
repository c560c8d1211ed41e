"""Typed reads of the rollups: every METRICS.md metric computed from merged rollup state.

Each function selects the rollup level of ``interval``, merges the mergeable state per bucket (or over the
whole window) and applies the pure formulas of :mod:`sla.metrics`. Results are frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from psycopg import sql

from sla import metrics
from sla.rollup_defs import (
    DEMAND,
    DEMAND_KEYS,
    LEVELS,
    NET,
    ORCH_KEYS,
    PERF,
    REL,
    SWAP_REASONS,
    Family,
    sql_text,
)

INTERVALS = tuple(LEVELS)
WEI_PER_ETH = Decimal(10) ** 18
FAILURE_CLASSES = ("orchestrator", "network", "unknown")


@dataclass(frozen=True)
class Filters:
    orchestrator: str | None = None
    pipeline: str | None = None
    region: str | None = None
    gpu_id: str | None = None
    gpu_type: str | None = None
    gateway: str | None = None

    def items(self, allowed: Sequence[str]) -> list[tuple[str, str]]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name in allowed:
                out.append((f.name, value.lower() if f.name == "orchestrator" else value))
        return out


@dataclass(frozen=True)
class Latency:
    count: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


@dataclass(frozen=True)
class PerfPoint:
    bucket: datetime | None  # None for a whole-window aggregate
    keys: dict[str, str]
    samples: int
    output_fps: float | None
    output_fps_min: float | None
    output_fps_max: float | None
    output_fps_stddev: float | None
    input_fps: float | None
    jitter_mean: float | None
    jitter_p95: float | None
    jitter_samples: int
    output_hours: float
    restarts: int
    restart_rate_per_hour: float | None
    cue: metrics.Cue | None


@dataclass(frozen=True)
class ReliabilityPoint:
    bucket: datetime | None
    keys: dict[str, str]
    segments: int
    ended: int
    startup_success: metrics.Ratio
    effective_success: metrics.Ratio
    failure_rate: metrics.Ratio
    failures_by_class: dict[str, int]
    client_errors: int
    streams: int
    swaps: int
    swap_rate: float | None
    swaps_by_reason: dict[str, int]
    p2ff_ms: Latency
    startup_ms: Latency
    e2e_ms: Latency


@dataclass(frozen=True)
class NetworkPoint:
    bucket: datetime | None
    keys: dict[str, str]
    samples: int
    bandwidth_up_mbps: float | None
    bandwidth_down_mbps: float | None
    video_packet_loss_pct: float | None
    audio_packet_loss_pct: float | None
    video_packets: int
    audio_packets: int


@dataclass(frozen=True)
class DemandPoint:
    bucket: datetime | None
    keys: dict[str, str]
    streams: int
    sessions: int
    failed_sessions: int
    missing_capacity: int
    inference_minutes: float
    capacity_minutes: float
    capacity_rate: float | None
    fees_wei: Decimal
    fees_eth: Decimal
    active_orchestrators: int
    orchestrators: tuple[str, ...]


def _latency(n: int | None, total: float | None, hist: Sequence[int] | None) -> Latency:
    count = int(n or 0)
    p50, p95, p99 = metrics.percentiles(hist, (0.50, 0.95, 0.99))  # one pass over the histogram
    return Latency(count=count, mean=(total or 0.0) / count if count else None, p50=p50, p95=p95, p99=p99)


def _rows(
    family: Family,
    read_file: str,
    interval: str,
    start: datetime,
    end: datetime,
    filters: Filters,
    group_by: Sequence[str],
    per_bucket: bool,
) -> list[tuple[datetime | None, dict[str, str], tuple[Any, ...]]]:
    if interval not in family.levels:
        raise ValueError(f"interval must be one of {', '.join(family.levels)}")
    unknown = [g for g in group_by if g not in family.keys]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}")
    group_cols = (["bucket"] if per_bucket else []) + list(group_by)
    keys = sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(c)) for c in group_cols)
    group = sql.SQL(", ").join(sql.Identifier(c) for c in group_cols) if group_cols else sql.SQL("()")
    order = (
        sql.SQL("ORDER BY ") + sql.SQL(", ").join(sql.Identifier(c) for c in group_cols)
        if group_cols
        else sql.SQL("")
    )
    params: dict[str, Any] = {"start": start, "end": end}
    clauses = []
    for name, value in filters.items(family.keys):
        clauses.append(sql.SQL(" AND {} = {}").format(sql.Identifier(name), sql.Placeholder(name)))
        params[name] = value
    query = sql.SQL(sql_text(read_file)).format(
        keys=keys,
        table=sql.Identifier(family.table(interval)),
        filters=sql.SQL("").join(clauses),
        group=group,
        order=order,
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        result = cursor.fetchall()
    out: list[tuple[datetime | None, dict[str, str], tuple[Any, ...]]] = []
    offset = len(group_cols)
    for row in result:
        bucket = row[0] if per_bucket else None
        dims = dict(zip(group_by, row[1 if per_bucket else 0 : offset], strict=True))
        values = row[offset:]
        if per_bucket or values[0] is not None:  # an empty whole-window aggregate has NULL sums
            out.append((bucket, dims, values))
    return out


def _dim(name: str, dims: dict[str, str], filters: Filters) -> str | None:
    return dims.get(name) or getattr(filters, name)


def _perf_point(
    bucket: datetime | None, dims: dict[str, str], v: tuple[Any, ...], filters: Filters
) -> PerfPoint:
    (
        samples,
        fps_sum,
        fps_sumsq,
        fps_min,
        fps_max,
        in_n,
        in_sum,
        jit_n,
        jit_sum,
        jit_hist,
        out_s,
        restarts,
    ) = v
    samples = int(samples or 0)
    output_fps = metrics.mean(fps_sum or 0.0, samples)
    jitter_p95 = metrics.percentile(jit_hist, 0.95)
    hours = float(out_s or 0.0) / 3600.0
    pipeline, gpu_type = _dim("pipeline", dims, filters), _dim("gpu_type", dims, filters)
    cue = metrics.cue_proxy(pipeline, gpu_type, output_fps) if pipeline and gpu_type else None
    return PerfPoint(
        bucket=bucket,
        keys=dims,
        samples=samples,
        output_fps=output_fps,
        output_fps_min=fps_min,
        output_fps_max=fps_max,
        output_fps_stddev=metrics.stddev_from_sums(fps_sum or 0.0, fps_sumsq or 0.0, samples),
        input_fps=metrics.mean(in_sum or 0.0, int(in_n or 0)),
        jitter_mean=metrics.mean(jit_sum or 0.0, int(jit_n or 0)),
        jitter_p95=None if jitter_p95 is None else jitter_p95 / metrics.JITTER_SCALE,
        jitter_samples=int(jit_n or 0),
        output_hours=hours,
        restarts=int(restarts or 0),
        restart_rate_per_hour=(int(restarts or 0) / hours) if hours > 0 else None,
        cue=cue,
    )


def _rel_point(bucket: datetime | None, dims: dict[str, str], v: tuple[Any, ...]) -> ReliabilityPoint:
    ints = [int(x or 0) for x in v[:19]]
    (
        segments,
        ended,
        started,
        effective_ok,
        clean,
        failed,
        f_orch,
        f_net,
        f_unknown,
        client,
        streams,
        swaps,
    ) = ints[:12]
    by_reason = dict(zip(SWAP_REASONS, ints[12:19], strict=True))
    p2ff_n, p2ff_sum, p2ff_hist, st_n, st_sum, st_hist, e2e_n, e2e_sum, e2e_hist = v[19:]
    return ReliabilityPoint(
        bucket=bucket,
        keys=dims,
        segments=segments,
        ended=ended,
        startup_success=metrics.ratio(started, ended),
        effective_success=metrics.ratio(effective_ok, started),
        failure_rate=metrics.ratio(failed, ended),
        failures_by_class={"orchestrator": f_orch, "network": f_net, "unknown": f_unknown},
        client_errors=client,
        streams=streams,
        swaps=swaps,
        swap_rate=swaps / streams if streams else None,
        swaps_by_reason=by_reason,
        p2ff_ms=_latency(p2ff_n, p2ff_sum, p2ff_hist),
        startup_ms=_latency(st_n, st_sum, st_hist),
        e2e_ms=_latency(e2e_n, e2e_sum, e2e_hist),
    )


def _net_point(bucket: datetime | None, dims: dict[str, str], v: tuple[Any, ...]) -> NetworkPoint:
    samples, up_b, up_s, down_b, down_s, v_rx, v_lost, a_rx, a_lost = v
    return NetworkPoint(
        bucket=bucket,
        keys=dims,
        samples=int(samples or 0),
        bandwidth_up_mbps=metrics.mbps(float(up_b or 0), float(up_s or 0.0)),
        bandwidth_down_mbps=metrics.mbps(float(down_b or 0), float(down_s or 0.0)),
        video_packet_loss_pct=metrics.loss_pct(int(v_lost or 0), int(v_rx or 0)),
        audio_packet_loss_pct=metrics.loss_pct(int(a_lost or 0), int(a_rx or 0)),
        video_packets=int(v_rx or 0) + int(v_lost or 0),
        audio_packets=int(a_rx or 0) + int(a_lost or 0),
    )


def _demand_point(bucket: datetime | None, dims: dict[str, str], v: tuple[Any, ...]) -> DemandPoint:
    streams, sessions, failed, missing, inf_s, cap_s, fees, orchestrators = v
    fees_wei = Decimal(fees or 0)
    inference = float(inf_s or 0.0) / 60.0
    capacity = float(cap_s or 0.0) / 60.0
    active = tuple(orchestrators or ())
    return DemandPoint(
        bucket=bucket,
        keys=dims,
        streams=int(streams or 0),
        sessions=int(sessions or 0),
        failed_sessions=int(failed or 0),
        missing_capacity=int(missing or 0),
        inference_minutes=inference,
        capacity_minutes=capacity,
        capacity_rate=inference / capacity if capacity > 0 else None,
        fees_wei=fees_wei,
        fees_eth=fees_wei / WEI_PER_ETH,
        active_orchestrators=len(active),
        orchestrators=active,
    )


def perf_series(
    filters: Filters, interval: str, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[PerfPoint]:
    rows = _rows(PERF, "read_perf.sql", interval, start, end, filters, group_by, per_bucket=True)
    return [_perf_point(b, d, v, filters) for b, d, v in rows]


def reliability_series(
    filters: Filters, interval: str, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[ReliabilityPoint]:
    rows = _rows(REL, "read_rel.sql", interval, start, end, filters, group_by, per_bucket=True)
    return [_rel_point(b, d, v) for b, d, v in rows]


def network_series(
    filters: Filters, interval: str, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[NetworkPoint]:
    rows = _rows(NET, "read_net.sql", interval, start, end, filters, group_by, per_bucket=True)
    return [_net_point(b, d, v) for b, d, v in rows]


def demand_series(
    filters: Filters, interval: str, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[DemandPoint]:
    rows = _rows(DEMAND, "read_demand.sql", interval, start, end, filters, group_by, per_bucket=True)
    return [_demand_point(b, d, v) for b, d, v in rows]


def window_level(start: datetime, end: datetime, levels: Sequence[str] = INTERVALS) -> str:
    """The coarsest level whose buckets tile [start, end) exactly."""
    from sla.refresh import floor_to

    best = levels[0]
    for level in levels:
        width = LEVELS[level]
        if floor_to(start, width) == start and floor_to(end, width) == end:
            best = level
    return best


def perf_window(
    filters: Filters, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[PerfPoint]:
    level = window_level(start, end)
    rows = _rows(PERF, "read_perf.sql", level, start, end, filters, group_by, per_bucket=False)
    return [_perf_point(b, d, v, filters) for b, d, v in rows]


def reliability_window(
    filters: Filters, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[ReliabilityPoint]:
    level = window_level(start, end)
    rows = _rows(REL, "read_rel.sql", level, start, end, filters, group_by, per_bucket=False)
    return [_rel_point(b, d, v) for b, d, v in rows]


def network_window(
    filters: Filters, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[NetworkPoint]:
    level = window_level(start, end)
    rows = _rows(NET, "read_net.sql", level, start, end, filters, group_by, per_bucket=False)
    return [_net_point(b, d, v) for b, d, v in rows]


def demand_window(
    filters: Filters, start: datetime, end: datetime, group_by: Sequence[str] = ()
) -> list[DemandPoint]:
    level = window_level(start, end, DEMAND.levels)
    if level not in DEMAND.levels:  # pragma: no cover - window_level picks from DEMAND.levels
        level = "1h"
    rows = _rows(DEMAND, "read_demand.sql", level, start, end, filters, group_by, per_bucket=False)
    return [_demand_point(b, d, v) for b, d, v in rows]


@dataclass(frozen=True)
class OrchestratorSummary:
    address: str
    start: datetime
    end: datetime
    performance: PerfPoint | None
    reliability: ReliabilityPoint | None
    network: NetworkPoint | None
    by_workflow: tuple[tuple[str, PerfPoint | None, ReliabilityPoint | None], ...]


def orchestrator_summary(address: str, window: timedelta, end: datetime) -> OrchestratorSummary:
    """One orchestrator over [end − window, end): totals and one line per workflow."""
    start = end - window
    f = Filters(orchestrator=address)
    perf = perf_window(f, start, end)
    rel = reliability_window(f, start, end)
    net = network_window(f, start, end)
    perf_by = {p.keys["pipeline"]: p for p in perf_window(f, start, end, ("pipeline",))}
    rel_by = {r.keys["pipeline"]: r for r in reliability_window(f, start, end, ("pipeline",))}
    workflows = sorted(set(perf_by) | set(rel_by))
    return OrchestratorSummary(
        address=address.lower(),
        start=start,
        end=end,
        performance=perf[0] if perf else None,
        reliability=rel[0] if rel else None,
        network=net[0] if net else None,
        by_workflow=tuple((w, perf_by.get(w), rel_by.get(w)) for w in workflows),
    )


__all__ = [
    "DEMAND_KEYS",
    "ORCH_KEYS",
    "DemandPoint",
    "Filters",
    "Latency",
    "NetworkPoint",
    "OrchestratorSummary",
    "PerfPoint",
    "ReliabilityPoint",
    "demand_series",
    "demand_window",
    "network_series",
    "network_window",
    "orchestrator_summary",
    "perf_series",
    "perf_window",
    "reliability_series",
    "reliability_window",
]
