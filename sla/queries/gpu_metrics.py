"""Per-GPU metric rows (``/v1/sla/gpu/metrics``): performance, reliability and network rollups merged per
bucket and key, paged by one indexed query over the row keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import connection
from psycopg import sql

from sla.rollup_defs import LEVELS, NET, ORCH_KEYS, PERF, REL, sql_text
from sla.rollups import (
    Filters,
    NetworkPoint,
    PerfPoint,
    ReliabilityPoint,
    network_series,
    perf_series,
    reliability_series,
)

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
