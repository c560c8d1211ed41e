"""Celery tasks of the sla app: the beat schedule runs ``sla.tasks.refresh`` every few seconds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from django.db import transaction

from sla.refresh import RefreshSummary
from sla.refresh import refresh as refresh_rollups
from sla.scores import ScoreRunSummary, compute_scores, compute_scores_for_ranges
from sla.signals import refresh_completed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineSummary:
    derived: Any
    rollups: RefreshSummary
    scores: ScoreRunSummary

    def line(self) -> str:
        buckets = sum(self.rollups.buckets_refreshed.values())
        return (
            f"derive={self.derived!r} ranges={len(self.rollups.ranges)} buckets={buckets} "
            f"score_windows={self.scores.windows} scores={self.scores.scores} sufficient={self.scores.sufficient}"
        )


def derive_sessions() -> Any:
    """Run the sessions derivation when it is installed (``sla.sessions.derive.derive``)."""
    try:
        from sla.sessions import derive as derive_module
    except ImportError:
        return None
    return derive_module.derive()


def run_pipeline(now: datetime | None = None) -> PipelineSummary:
    """derive → refresh rollups over what changed → compute scores of the windows it touched."""
    stamp = now or datetime.now(UTC)
    derived = derive_sessions()
    rollups = refresh_rollups(stamp)
    if rollups.skipped or rollups.empty:
        scores = ScoreRunSummary(windows=0, scores=0, sufficient=0)
    else:
        scores = compute_scores_for_ranges(rollups.ranges, stamp)
    summary = PipelineSummary(derived=derived, rollups=rollups, scores=scores)
    if not (rollups.skipped or rollups.empty):
        changed = list(rollups.ranges)
        transaction.on_commit(
            lambda: refresh_completed.send(sender=PipelineSummary, ranges=changed, scores=scores.scores)
        )
    return summary


@shared_task(name="sla.tasks.refresh", ignore_result=True)
def refresh() -> str:
    summary = run_pipeline()
    log.info("sla refresh: %s", summary.line())
    return summary.line()


@shared_task(name="sla.tasks.compute_scores_task", ignore_result=True)
def compute_scores_task(window_ends: list[str]) -> int:
    ends = [datetime.fromisoformat(e) for e in window_ends]
    return compute_scores(ends).scores
