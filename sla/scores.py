"""Compute and store scores per orchestrator × workflow × window from the hourly rollups."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from sla.refresh import Range, ceil_to, floor_to
from sla.rollups import Filters, perf_window, reliability_window
from sla.scoring import ScoreInputs, score
from sla.scoring_models import Score, ScoringConfig
from sla.scoring_seed import VERSION_1

WINDOWS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class ScoreRunSummary:
    windows: int
    scores: int
    sufficient: int


def active_config() -> ScoringConfig:
    """The newest active config; version 1 is re-created from its seed when no config exists at all."""
    config = ScoringConfig.objects.filter(active=True).order_by("-version").first()
    if config is None and not ScoringConfig.objects.exists():
        config, _ = ScoringConfig.objects.get_or_create(version=1, defaults=dict(VERSION_1))
    if config is None:
        raise ScoringConfig.DoesNotExist("no active scoring config")
    return config


def window_ends_for(ranges: Iterable[Range], now: datetime) -> list[datetime]:
    """Hour boundaries E whose 1 h or 24 h window [E − length, E) overlaps a changed range, up to now."""
    limit = ceil_to(now, HOUR)
    ends: set[datetime] = set()
    longest = max(WINDOWS.values())
    for start, end in ranges:
        e = floor_to(start, HOUR) + HOUR
        last = min(ceil_to(end, HOUR) + longest - HOUR, limit)
        while e <= last:
            ends.add(e)
            e += HOUR
    return sorted(ends)


def compute_window(
    config: ScoringConfig, window: str, window_end: datetime, computed_at: datetime
) -> list[Score]:
    """Replace the stored scores of one window with freshly computed ones."""
    params = config.params()
    start = window_end - WINDOWS[window]
    group = ("orchestrator", "pipeline")
    rel = {
        (r.keys["orchestrator"], r.keys["pipeline"]): r
        for r in reliability_window(Filters(), start, window_end, group)
    }
    perf = {
        (p.keys["orchestrator"], p.keys["pipeline"]): p
        for p in perf_window(Filters(), start, window_end, group)
    }
    rows: list[Score] = []
    for orchestrator, workflow in sorted(set(rel) | set(perf)):
        r = rel.get((orchestrator, workflow))
        p = perf.get((orchestrator, workflow))
        inputs = ScoreInputs(
            sessions=r.ended if r else 0,
            started=r.effective_success.denominator if r else 0,
            effective_ok=r.effective_success.numerator if r else 0,
            swaps=r.swaps if r else 0,
            streams=r.streams if r else 0,
            p2ff_p95_ms=r.p2ff_ms.p95 if r else None,
            output_fps_mean=p.output_fps if p else None,
            jitter_mean=p.jitter_mean if p else None,
        )
        result = score(inputs, workflow, params)
        targets = params.targets_for(workflow)
        rows.append(
            Score(
                orchestrator=orchestrator,
                workflow=workflow,
                window=window,
                window_start=start,
                window_end=window_end,
                version=result.version,
                score=result.score,
                latency=result.latency,
                reliability=result.reliability,
                performance=result.performance,
                sufficient=result.sufficient,
                sessions=inputs.sessions,
                inputs={**inputs.as_dict(), "target_fps": targets.fps, "target_p2ff_ms": targets.p2ff_ms},
                computed_at=computed_at,
            )
        )
    with transaction.atomic():
        Score.objects.filter(window=window, window_end=window_end, version=config.version).delete()
        Score.objects.bulk_create(rows)
    return rows


def compute_scores(
    window_ends: Sequence[datetime], windows: Sequence[str] = tuple(WINDOWS), now: datetime | None = None
) -> ScoreRunSummary:
    config = active_config()
    stamp = now or datetime.now(UTC)
    total = sufficient = 0
    for window_end in window_ends:
        for window in windows:
            rows = compute_window(config, window, window_end, stamp)
            total += len(rows)
            sufficient += sum(1 for r in rows if r.sufficient)
    return ScoreRunSummary(windows=len(window_ends) * len(windows), scores=total, sufficient=sufficient)


def compute_scores_for_ranges(ranges: Iterable[Range], now: datetime | None = None) -> ScoreRunSummary:
    stamp = now or datetime.now(UTC)
    return compute_scores(window_ends_for(ranges, stamp), now=stamp)
