"""Network demand (``/v1/sla/network/demand``): demand rows per bucket × workflow × region and their totals,
heatmap and GPU-type breakdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal

from sla.rollups import DemandPoint, Filters, demand_series


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
