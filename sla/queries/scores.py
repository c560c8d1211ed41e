"""Stored orchestrator scores: the newest window, one orchestrator's latest scores and series, and the
ranked (or unranked) scores of one window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max

from sla.scoring_models import Score


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
