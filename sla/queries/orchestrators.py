"""Orchestrators: who is known, who served a region, every known address, and one orchestrator's profile
(``/v1/sla/orchestrators/{address}``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from psycopg import sql

from sla import metrics
from sla.models import Segment, Session
from sla.queries.gpu_metrics import MetricRow, _merge_points
from sla.queries.scores import StoredScore, latest_scores_of
from sla.rollup_defs import PERF, REL
from sla.rollups import (
    Filters,
    PerfPoint,
    ReliabilityPoint,
    network_series,
    network_window,
    perf_series,
    perf_window,
    reliability_series,
    reliability_window,
)
from sla.scoring_models import Score

# Both EXISTS use the rollups' primary key (orchestrator first).
ORCHESTRATOR_IN_ROLLUPS_SQL = """
SELECT EXISTS (SELECT 1 FROM {perf} WHERE orchestrator = %(address)s)
    OR EXISTS (SELECT 1 FROM {rel} WHERE orchestrator = %(address)s)
"""


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
