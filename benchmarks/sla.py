"""Issue 4 §5: the SLA numbers — API latency under load, freshness, rebuild speed.

python -m benchmarks sla     # prints the table and the line
                             # api_p95_ms=N freshness_p95_s=N rebuild_events_per_s=N
"""

from __future__ import annotations

from benchmarks import api, freshness, rebuild
from benchmarks.common import Report


def run(report: Report) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures.update(api.run(report))
    figures.update(freshness.run(report))
    figures.update(rebuild.run(report))
    return figures
