"""Quality figures (API). Read by ``sla.queries`` for ``GET /v1/sla/quality``. Windows are on
``received_at`` (our clock), so the figures describe what arrived in the window, whatever time the producers
stamped on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection


@dataclass(frozen=True)
class QualityCount:
    """Events counted per publisher and a second key (event type for accepted, reason for rejected)."""

    publisher: str
    key: str
    count: int


@dataclass(frozen=True)
class QualityLag:
    """Lateness ``received_at − event_time`` in seconds (negative values count as 0) for one publisher,
    or for every publisher together when ``publisher`` is None."""

    publisher: str | None
    events: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class QualitySkew:
    """Clock offset of one publisher: ``event_time − received_at`` in seconds. For a publisher that
    sends live events the median offset is its clock's lead over ours minus the delivery delay."""

    publisher: str
    events: int
    median_offset_s: float | None
    max_ahead_s: float | None
    events_ahead: int  # events stamped later than they arrived


QUALITY_ACCEPTED_SQL = """
SELECT publisher, event_type, count(*)
FROM telemetry_events_raw
WHERE received_at >= %(start)s AND received_at < %(end)s
GROUP BY publisher, event_type
ORDER BY publisher, event_type
"""

QUALITY_REJECTED_SQL = """
SELECT publisher, reason, count(*)
FROM telemetry_events_rejected
WHERE received_at >= %(start)s AND received_at < %(end)s
GROUP BY publisher, reason
ORDER BY publisher, reason
"""

QUALITY_LAG_SQL = """
WITH lag AS (
    SELECT publisher, greatest(0, extract(epoch FROM received_at - event_time))::float8 AS s
    FROM telemetry_events_raw
    WHERE received_at >= %(start)s AND received_at < %(end)s
)
SELECT publisher, grouping(publisher) = 1 AS overall, count(*),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s), max(s)
FROM lag
GROUP BY GROUPING SETS ((publisher), ())
ORDER BY overall DESC, publisher
"""

QUALITY_SKEW_SQL = """
WITH offs AS (
    SELECT publisher, extract(epoch FROM event_time - received_at)::float8 AS s
    FROM telemetry_events_raw
    WHERE received_at >= %(start)s AND received_at < %(end)s
)
SELECT publisher, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), max(s),
       count(*) FILTER (WHERE s > 0)
FROM offs
GROUP BY publisher
ORDER BY publisher
"""


def quality_accepted(start: datetime, end: datetime) -> list[QualityCount]:
    """Accepted (raw) events received in [start, end), per publisher and event type."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_ACCEPTED_SQL, {"start": start, "end": end})
        return [QualityCount(publisher=p, key=k, count=int(n)) for p, k, n in cursor.fetchall()]


def quality_rejected(start: datetime, end: datetime) -> list[QualityCount]:
    """Rejected events received in [start, end), per publisher and reason."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_REJECTED_SQL, {"start": start, "end": end})
        return [QualityCount(publisher=p, key=k, count=int(n)) for p, k, n in cursor.fetchall()]


def quality_lag(start: datetime, end: datetime) -> list[QualityLag]:
    """Lateness percentiles of events received in [start, end): overall first, then per publisher."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_LAG_SQL, {"start": start, "end": end})
        rows = cursor.fetchall()
    out: list[QualityLag] = []
    for publisher, overall, events, pcts, max_s in rows:
        p50, p95, p99 = pcts if pcts is not None else (None, None, None)
        out.append(
            QualityLag(
                publisher=None if overall else publisher,
                events=int(events),
                p50_s=p50,
                p95_s=p95,
                p99_s=p99,
                max_s=max_s,
            )
        )
    return out


def quality_skew(start: datetime, end: datetime) -> list[QualitySkew]:
    """Clock offset per publisher over events received in [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_SKEW_SQL, {"start": start, "end": end})
        return [
            QualitySkew(publisher=p, events=int(n), median_offset_s=med, max_ahead_s=mx, events_ahead=int(a))
            for p, n, med, mx, a in cursor.fetchall()
        ]
