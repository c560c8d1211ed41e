"""Data-quality figures for ``GET /v1/sla/quality``, read from ``telemetry.queries``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from telemetry import queries as telemetry_queries
from telemetry.queries import QualityCount, QualityLag, QualitySkew


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
