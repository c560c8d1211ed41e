"""Reads behind the public API and the pages: a thin layer over the rollup and score query functions,
plus the data-quality figures read from ``telemetry.queries``. Frozen dataclasses out, no HTTP here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any

from django.db import connection
from django.db.models import Max
from psycopg import sql

from sla import metrics
from sla.models import Segment, Session
from sla.rollup_defs import LEVELS, NET, ORCH_KEYS, PERF, REL, sql_text
from sla.rollups import (
    DemandPoint,
    Filters,
    NetworkPoint,
    PerfPoint,
    ReliabilityPoint,
    demand_series,
    network_series,
    network_window,
    perf_series,
    perf_window,
    reliability_series,
    reliability_window,
)
from sla.scoring_models import Score
from telemetry import queries as telemetry_queries
from telemetry.queries import QualityCount, QualityLag, QualitySkew

# --- rollup refresh (sla.refresh) ---
# One refresher at a time: a session-level advisory lock ("SLAR").
REFRESH_LOCK_KEY = 0x534C4152
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s)"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"
DIRTY_IDS_SQL = 'SELECT id, start, "end" FROM sla_dirty_range ORDER BY id'
DELETE_DIRTY_SQL = "DELETE FROM sla_dirty_range WHERE id = ANY(%s)"
INSERT_DIRTY_SQL = 'INSERT INTO sla_dirty_range (kind, start, "end", created_at) VALUES (%s, %s, %s, %s)'
STATE_SQL = "SELECT position FROM sla_refresh_state WHERE name = %s"
UPSERT_STATE_SQL = """
INSERT INTO sla_refresh_state (name, position, pending_start, pending_end, refreshed_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET position = COALESCE(EXCLUDED.position, sla_refresh_state.position),
  pending_start = EXCLUDED.pending_start, pending_end = EXCLUDED.pending_end,
  refreshed_at = COALESCE(EXCLUDED.refreshed_at, sla_refresh_state.refreshed_at)
"""
# The span of each session updated since the last refresh, in whole minutes (one row per distinct span).
SESSION_CHANGES_SQL = """
SELECT date_bin(INTERVAL '1 minute', LEAST(request_at, first_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       date_bin(INTERVAL '1 minute', GREATEST(request_at, last_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       max(updated_at)
FROM sla_session WHERE updated_at > %s GROUP BY 1, 2
"""
# True when every bucket from %s on is served by real-time aggregation (nothing materialized there yet).
CAGG_UNMATERIALIZED_SQL = """
SELECT %s >= COALESCE(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(c.mat_hypertable_id)),
                      '-infinity'::timestamptz)
FROM _timescaledb_catalog.continuous_agg c
WHERE c.user_view_schema = current_schema() AND c.user_view_name = %s
"""
REFRESH_CAGG_SQL = "CALL refresh_continuous_aggregate({name}, %s, %s)"
DELETE_BUCKETS_SQL = "DELETE FROM {name} WHERE bucket >= %s AND bucket < %s"
INSERT_ROLLUP_SQL = "INSERT INTO {name} ({columns}) {select}"


@dataclass(frozen=True)
class Quality:
    start: datetime
    end: datetime
    accepted: list[QualityCount]
    rejected: list[QualityCount]
    lag: list[QualityLag]
    skew: list[QualitySkew]

    @property
    def accepted_total(self) -> int:
        return sum(c.count for c in self.accepted)

    @property
    def rejected_total(self) -> int:
        return sum(c.count for c in self.rejected)


def quality(start: datetime, end: datetime) -> Quality:
    return Quality(
        start=start,
        end=end,
        accepted=telemetry_queries.quality_accepted(start, end),
        rejected=telemetry_queries.quality_rejected(start, end),
        lag=telemetry_queries.quality_lag(start, end),
        skew=telemetry_queries.quality_skew(start, end),
    )


@dataclass(frozen=True)
class StoredScore:
    orchestrator: str
    workflow: str
    period: str
    window_start: datetime
    window_end: datetime
    version: int
    score: float | None
    latency: float | None
    reliability: float | None
    performance: float | None
    sufficient: bool
    sessions: int
    inputs: dict[str, float | int | str | None]


def _stored(row: Score) -> StoredScore:
    return StoredScore(
        orchestrator=row.orchestrator,
        workflow=row.workflow,
        period=row.window,
        window_start=row.window_start,
        window_end=row.window_end,
        version=row.version,
        score=row.score,
        latency=row.latency,
        reliability=row.reliability,
        performance=row.performance,
        sufficient=row.sufficient,
        sessions=row.sessions,
        inputs=dict(row.inputs),
    )


_STORED_FIELDS = (
    "orchestrator",
    "workflow",
    "window",
    "window_start",
    "window_end",
    "version",
    "score",
    "latency",
    "reliability",
    "performance",
    "sufficient",
    "sessions",
    "inputs",
)


def _stored_values(values: tuple[Any, ...]) -> StoredScore:
    """A StoredScore from a ``values_list(*_STORED_FIELDS)`` row (same fields, same order)."""
    orch, workflow, period, start, end, version, score, latency, reliability, performance, ok, n, inputs = (
        values
    )
    return StoredScore(
        orchestrator=orch,
        workflow=workflow,
        period=period,
        window_start=start,
        window_end=end,
        version=version,
        score=score,
        latency=latency,
        reliability=reliability,
        performance=performance,
        sufficient=ok,
        sessions=n,
        inputs=dict(inputs),
    )


def latest_window_end(period: str, workflow: str | None = None) -> datetime | None:
    """End of the newest scored window of this length (optionally for one workflow)."""
    rows = Score.objects.filter(window=period)
    if workflow:
        rows = rows.filter(workflow=workflow)
    value: datetime | None = rows.aggregate(newest=Max("window_end"))["newest"]
    return value


def latest_scores_of(orchestrator: str, period: str, workflow: str | None = None) -> list[StoredScore]:
    """The newest stored score of each workflow for one orchestrator (newest scoring version)."""
    rows = Score.objects.filter(orchestrator=orchestrator, window=period)
    if workflow:
        rows = rows.filter(workflow=workflow)
    # DISTINCT ON (workflow): one row per workflow, the newest window and version.
    newest = rows.order_by("workflow", "-window_end", "-version").distinct("workflow")
    return [_stored(row) for row in newest]


def score_series(orchestrator: str, period: str, start: datetime, end: datetime) -> list[StoredScore]:
    rows = Score.objects.filter(
        orchestrator=orchestrator, window=period, window_end__gt=start, window_end__lte=end
    ).order_by("window_end", "workflow", "-version")
    seen: set[tuple[datetime, str]] = set()
    out: list[StoredScore] = []
    for row in rows:
        key = (row.window_end, row.workflow)
        if key not in seen:
            seen.add(key)
            out.append(_stored(row))
    return out


def ranked_scores(
    period: str,
    window_end: datetime,
    workflow: str | None,
    orchestrators: set[str] | None,
    *,
    sufficient: bool = True,
) -> list[StoredScore]:
    """Scores of one window (newest scoring version of each orchestrator × workflow).

    ``sufficient``: the ranked scores, best first (ties: more sessions, then address), from the sufficient
    rows only. Otherwise the unranked ones (too few sessions, or no score), most sessions first: a key whose
    newest version is sufficient is ranked and does not appear.
    """
    rows = Score.objects.filter(window=period, window_end=window_end)
    if sufficient:
        rows = rows.filter(sufficient=True, score__isnull=False)
    if workflow:
        rows = rows.filter(workflow=workflow)
    if orchestrators is not None:
        rows = rows.filter(orchestrator__in=sorted(orchestrators))
    newest_version: dict[tuple[str, str], StoredScore] = {}
    # Plain value tuples, not model instances: this runs for every leaderboard read that misses the cache.
    for values in rows.order_by("orchestrator", "workflow", "-version").values_list(*_STORED_FIELDS):
        key = (values[0], values[1])
        if key not in newest_version:
            newest_version[key] = _stored_values(values)
    if sufficient:
        return sorted(
            newest_version.values(),
            key=lambda s: (-(s.score or 0.0), -s.sessions, s.orchestrator, s.workflow),
        )
    unranked = [s for s in newest_version.values() if not s.sufficient or s.score is None]
    return sorted(unranked, key=lambda s: (-s.sessions, s.orchestrator, s.workflow))


def orchestrators_in_region(region: str, start: datetime, end: datetime) -> set[str]:
    """Orchestrators with a segment requested in [start, end) in this region."""
    rows = (
        Segment.objects.filter(region=region, request_at__gte=start, request_at__lt=end)
        .exclude(orchestrator="")
        .values_list("orchestrator", flat=True)
        .distinct()
    )
    return set(rows)


def orchestrator_known(address: str) -> bool:
    """Whether this orchestrator was ever seen: in segments, scores or the hourly rollups."""
    if (
        Score.objects.filter(orchestrator=address).exists()
        or Segment.objects.filter(orchestrator=address).exists()
    ):
        return True
    query = sql.SQL(ORCHESTRATOR_IN_ROLLUPS_SQL).format(
        perf=sql.Identifier(PERF.table("1h")), rel=sql.Identifier(REL.table("1h"))
    )
    with connection.cursor() as cursor:
        cursor.execute(query, {"address": address})
        row = cursor.fetchone()
    return bool(row and row[0])


# --- per-GPU metric rows (/v1/sla/gpu/metrics) ------------------------------------------------------------

# Both EXISTS use the rollups' primary key (orchestrator first).
ORCHESTRATOR_IN_ROLLUPS_SQL = """
SELECT EXISTS (SELECT 1 FROM {perf} WHERE orchestrator = %(address)s)
    OR EXISTS (SELECT 1 FROM {rel} WHERE orchestrator = %(address)s)
"""

GPU_ROW_KEYS_SQL = sql_text("read_gpu_row_keys.sql")  # one page of row keys and the total

RowKey = tuple[
    datetime | None, str, str, str, str, str
]  # bucket, orchestrator, pipeline, region, gpu_id, gpu_type


@dataclass(frozen=True)
class MetricRow:
    """Performance, reliability and network state of one key (and bucket, or whole window when None)."""

    bucket: datetime | None
    orchestrator: str
    pipeline: str
    region: str
    gpu_id: str
    gpu_type: str
    perf: PerfPoint | None
    rel: ReliabilityPoint | None
    net: NetworkPoint | None


@dataclass(frozen=True)
class MetricPage:
    total: int
    rows: list[MetricRow]


def _key_of(bucket: datetime | None, keys: dict[str, str], defaults: dict[str, str]) -> RowKey:
    def value(name: str) -> str:
        return keys.get(name, defaults.get(name, ""))

    return (
        bucket,
        value("orchestrator"),
        value("pipeline"),
        value("region"),
        value("gpu_id"),
        value("gpu_type"),
    )


def _merge_points(
    perf: Iterable[PerfPoint],
    rel: Iterable[ReliabilityPoint],
    net: Iterable[NetworkPoint],
    defaults: dict[str, str],
) -> dict[RowKey, MetricRow]:
    out: dict[RowKey, MetricRow] = {}

    def row(key: RowKey) -> MetricRow:
        found = out.get(key)
        if found is None:
            found = MetricRow(*key, perf=None, rel=None, net=None)
        return found

    for p in perf:
        key = _key_of(p.bucket, p.keys, defaults)
        out[key] = replace(row(key), perf=p)
    for r in rel:
        key = _key_of(r.bucket, r.keys, defaults)
        out[key] = replace(row(key), rel=r)
    for n in net:
        key = _key_of(n.bucket, n.keys, defaults)
        out[key] = replace(row(key), net=n)
    return out


def gpu_metric_page(
    filters: Filters, interval: str, start: datetime, end: datetime, limit: int, offset: int
) -> MetricPage:
    """One page of per-bucket × orchestrator × workflow × region × GPU rows, oldest bucket first.

    The page's keys come from one indexed query over the three rollups of ``interval``; the metrics are then
    read for the buckets that page spans only, so the cost follows the page size, not the window.
    """
    params: dict[str, Any] = {"start": start, "end": end, "limit": limit, "offset": offset}
    clauses = []
    for name, value in filters.items(ORCH_KEYS):
        clauses.append(sql.SQL(" AND {} = {}").format(sql.Identifier(name), sql.Placeholder(name)))
        params[name] = value
    query = sql.SQL(GPU_ROW_KEYS_SQL).format(
        perf=sql.Identifier(PERF.table(interval)),
        rel=sql.Identifier(REL.table(interval)),
        net=sql.Identifier(NET.table(interval)),
        filters=sql.SQL("").join(clauses),
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        fetched = cursor.fetchall()
    total = int(fetched[0][0]) if fetched else 0
    wanted: list[RowKey] = [(r[1], r[2], r[3], r[4], r[5], r[6]) for r in fetched if r[1] is not None]
    if not wanted:
        return MetricPage(total=total, rows=[])
    buckets = [k[0] for k in wanted if k[0] is not None]
    first, last = min(buckets), max(buckets) + LEVELS[interval]
    perf = perf_series(filters, interval, first, last, ORCH_KEYS)
    rel = reliability_series(filters, interval, first, last, ORCH_KEYS)
    net = network_series(filters, interval, first, last, ORCH_KEYS)
    merged = _merge_points(perf, rel, net, {})
    return MetricPage(total=total, rows=[merged[k] for k in wanted if k in merged])


# --- network demand (/v1/sla/network/demand) --------------------------------------------------------------


@dataclass(frozen=True)
class DemandRow:
    """Demand of one bucket × workflow × region, summed over gateways (or one gateway) and GPU types."""

    bucket: datetime
    pipeline: str
    region: str
    streams: int
    sessions: int
    failed_sessions: int
    missing_capacity: int
    inference_minutes: float
    inference_minutes_by_gpu_type: dict[str, float]
    capacity_minutes: float
    capacity_rate: float | None
    fees_wei: Decimal
    orchestrators: tuple[str, ...]


def capacity_rate(inference_minutes: float, capacity_minutes: float) -> float | None:
    """Inference minutes per advertised slot-minute; None when no capacity was advertised."""
    return inference_minutes / capacity_minutes if capacity_minutes > 0 else None


def _fold_demand(bucket: datetime, pipeline: str, region: str, points: Sequence[DemandPoint]) -> DemandRow:
    by_type: dict[str, float] = {}
    for p in points:
        if p.inference_minutes:
            gpu = p.keys.get("gpu_type", "")
            by_type[gpu] = by_type.get(gpu, 0.0) + p.inference_minutes
    inference = sum(p.inference_minutes for p in points)
    capacity = sum(p.capacity_minutes for p in points)
    return DemandRow(
        bucket=bucket,
        pipeline=pipeline,
        region=region,
        streams=sum(p.streams for p in points),
        sessions=sum(p.sessions for p in points),
        failed_sessions=sum(p.failed_sessions for p in points),
        missing_capacity=sum(p.missing_capacity for p in points),
        inference_minutes=inference,
        inference_minutes_by_gpu_type=dict(sorted(by_type.items())),
        capacity_minutes=capacity,
        capacity_rate=capacity_rate(inference, capacity),
        fees_wei=sum((p.fees_wei for p in points), Decimal(0)),
        orchestrators=tuple(sorted({o for p in points for o in p.orchestrators})),
    )


def demand_rows(filters: Filters, interval: str, start: datetime, end: datetime) -> list[DemandRow]:
    """Demand per bucket × workflow × region, oldest first; GPU types folded into a by-type breakdown.

    Capacity is advertised by orchestrators, not gateways, so it is only present when no gateway is chosen.
    """
    points = demand_series(filters, interval, start, end, ("pipeline", "region", "gpu_type"))
    groups: dict[tuple[datetime, str, str], list[DemandPoint]] = {}
    for p in points:
        assert p.bucket is not None  # per-bucket series
        groups.setdefault((p.bucket, p.keys["pipeline"], p.keys["region"]), []).append(p)
    return [_fold_demand(b, w, r, pts) for (b, w, r), pts in sorted(groups.items())]


# Wide enough that no wei amount (a numeric sum of uint256 values) is ever rounded when scaled.
_WIDE = Context(prec=100)


def eth_text(wei: Decimal) -> str:
    """Exact decimal ETH for an integral wei amount, without exponent or trailing zeros."""
    text = format(wei.scaleb(-18, _WIDE), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(frozen=True)
class DemandBucketTotals:
    """One bucket's demand summed over workflows, regions and GPU types."""

    bucket: datetime
    streams: int
    inference_minutes: float
    capacity_minutes: float
    capacity_rate: float | None
    missing_capacity: int
    fees_wei: int
    fees_eth: str  # exact decimal ETH of fees_wei
    active_orchestrators: int


@dataclass(frozen=True)
class DemandHeatmap:
    """Inference minutes per region (rows) × workflow (columns); None where no demand was recorded.

    Keys are as stored: "" is an unknown region or workflow."""

    regions: tuple[str, ...]
    workflows: tuple[str, ...]
    inference_minutes: tuple[tuple[float | None, ...], ...]


@dataclass(frozen=True)
class DemandTotals:
    buckets: tuple[DemandBucketTotals, ...]  # oldest first, only buckets with demand rows
    heatmap: DemandHeatmap
    gpu_minutes: tuple[tuple[str, float], ...]  # (GPU type, inference minutes), most minutes first
    streams: int
    inference_minutes: float
    missing_capacity: int
    fees_wei: int
    fees_eth: str
    active_orchestrators: int  # distinct over the whole span


def fold_demand_totals(rows: Sequence[DemandRow]) -> DemandTotals:
    """Sum demand rows (sorted by bucket, as :func:`demand_rows` returns them) per bucket and overall."""
    by_bucket: dict[datetime, list[DemandRow]] = {}
    cells: dict[tuple[str, str], float] = {}
    gpu: dict[str, float] = {}
    for r in rows:
        by_bucket.setdefault(r.bucket, []).append(r)
        cells[(r.region, r.pipeline)] = cells.get((r.region, r.pipeline), 0.0) + r.inference_minutes
        for gpu_type, minutes in r.inference_minutes_by_gpu_type.items():
            gpu[gpu_type] = gpu.get(gpu_type, 0.0) + minutes
    buckets: list[DemandBucketTotals] = []
    for bucket in sorted(by_bucket):
        group = by_bucket[bucket]
        inference = 0.0
        capacity = 0.0
        for r in group:  # in row order, so the float sums do not depend on how the caller groups
            inference += r.inference_minutes
            capacity += r.capacity_minutes
        fees = sum(int(r.fees_wei) for r in group)
        buckets.append(
            DemandBucketTotals(
                bucket=bucket,
                streams=sum(r.streams for r in group),
                inference_minutes=inference,
                capacity_minutes=capacity,
                capacity_rate=capacity_rate(inference, capacity),
                missing_capacity=sum(r.missing_capacity for r in group),
                fees_wei=fees,
                fees_eth=eth_text(Decimal(fees)),
                active_orchestrators=len({o for r in group for o in r.orchestrators}),
            )
        )
    regions = tuple(sorted({region for region, _ in cells}))
    workflows = tuple(sorted({workflow for _, workflow in cells}))
    fees_wei = sum(b.fees_wei for b in buckets)
    return DemandTotals(
        buckets=tuple(buckets),
        heatmap=DemandHeatmap(
            regions, workflows, tuple(tuple(cells.get((r, w)) for w in workflows) for r in regions)
        ),
        gpu_minutes=tuple(sorted(gpu.items(), key=lambda kv: -kv[1])),
        streams=sum(b.streams for b in buckets),
        inference_minutes=sum(b.inference_minutes for b in buckets),
        missing_capacity=sum(b.missing_capacity for b in buckets),
        fees_wei=fees_wei,
        fees_eth=eth_text(Decimal(fees_wei)),
        active_orchestrators=len({o for r in rows for o in r.orchestrators}),
    )


def demand_totals(filters: Filters, interval: str, start: datetime, end: datetime) -> DemandTotals:
    """Demand over [start, end) per bucket and in total, the region × workflow heatmap and GPU types."""
    return fold_demand_totals(demand_rows(filters, interval, start, end))


# --- one orchestrator (/v1/sla/orchestrators/{address}) ---------------------------------------------------


@dataclass(frozen=True)
class GpuServed:
    gpu_id: str
    gpu_type: str
    region: str
    workflows: tuple[str, ...]
    output_fps: float | None
    segments: int


@dataclass(frozen=True)
class OrchestratorProfile:
    address: str
    start: datetime
    end: datetime
    interval: str
    total: MetricRow
    by_workflow: list[MetricRow]
    gpus: list[GpuServed]
    series: list[MetricRow]
    latest_scores: list[StoredScore]


def _gpus(perf: Sequence[PerfPoint], rel: Sequence[ReliabilityPoint]) -> list[GpuServed]:
    merged = _merge_points(perf, rel, [], {})
    per_gpu: dict[tuple[str, str, str], list[MetricRow]] = {}
    for row in merged.values():
        per_gpu.setdefault((row.gpu_id, row.gpu_type, row.region), []).append(row)
    out = []
    for (gpu_id, gpu_type, region), rows in sorted(per_gpu.items()):
        samples = sum(r.perf.samples for r in rows if r.perf)
        fps_sum = sum((r.perf.output_fps or 0.0) * r.perf.samples for r in rows if r.perf)
        out.append(
            GpuServed(
                gpu_id=gpu_id,
                gpu_type=gpu_type,
                region=region,
                workflows=tuple(sorted({r.pipeline for r in rows})),
                output_fps=metrics.mean(fps_sum, samples),
                segments=sum(r.rel.segments for r in rows if r.rel),
            )
        )
    return out


def orchestrator_profile(
    address: str, window: timedelta, end: datetime, interval: str
) -> OrchestratorProfile:
    """Totals, per-workflow lines, GPUs served and a per-workflow series over [end − window, end)."""
    start = end - window
    f = Filters(orchestrator=address)
    defaults = {"orchestrator": address}
    total = _merge_points(
        perf_window(f, start, end), reliability_window(f, start, end), network_window(f, start, end), defaults
    )
    by = ("pipeline",)
    by_workflow = _merge_points(
        perf_window(f, start, end, by),
        reliability_window(f, start, end, by),
        network_window(f, start, end, by),
        defaults,
    )
    gpu_keys = ("pipeline", "region", "gpu_id", "gpu_type")
    gpus = _gpus(perf_window(f, start, end, gpu_keys), reliability_window(f, start, end, gpu_keys))
    series = _merge_points(
        perf_series(f, interval, start, end, by),
        reliability_series(f, interval, start, end, by),
        network_series(f, interval, start, end, by),
        defaults,
    )
    empty = MetricRow(None, address, "", "", "", "", None, None, None)
    scores = [s for period in ("1h", "24h") for s in latest_scores_of(address, period)]
    return OrchestratorProfile(
        address=address,
        start=start,
        end=end,
        interval=interval,
        total=next(iter(total.values()), empty),
        by_workflow=[by_workflow[k] for k in sorted(by_workflow, key=lambda k: k[2])],
        gpus=gpus,
        series=[series[k] for k in sorted(series, key=lambda k: (k[0] or start, k[2]))],
        latest_scores=scores,
    )


def known_orchestrators() -> list[str]:
    """Every orchestrator address (as stored) that appears in a derived session or segment."""
    seen: set[str] = set()
    for model in (Session, Segment):
        values = model.objects.exclude(orchestrator="").values_list("orchestrator", flat=True).distinct()
        seen.update(str(v) for v in values)
    return sorted(seen)
