"""Personal pages. Read by ``sla.personal`` for an orchestrator's own per-session trace timeline. The caller
bounds the time range to the part of the session that orchestrator served."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

SESSION_TIMELINE_SQL = """
SELECT event_time, 'trace' AS source, trace_type, orchestrator, detail, '' AS error_class
FROM telemetry_fact_trace
WHERE stream_id = %(stream)s AND request_id = %(request)s
  AND event_time >= %(start)s AND event_time <= %(end)s
UNION ALL
SELECT event_time, 'error', event_kind, '', message, error_class
FROM telemetry_fact_error
WHERE stream_id = %(stream)s AND request_id = %(request)s
  AND event_time >= %(start)s AND event_time <= %(end)s
ORDER BY 1, 2, 3
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class TimelineFact:
    """One trace or error fact of a stream request, in event time order."""

    event_time: datetime
    source: str  # trace | error
    kind: str  # trace type | error kind
    orchestrator: str  # signing address as sent on traces, "" on errors
    detail: str  # trace detail | error message
    error_class: str  # errors only


def session_timeline(
    stream_id: str, request_id: str, start: datetime, end: datetime, limit: int = 200
) -> list[TimelineFact]:
    """Traces and errors of one (stream, request) with start <= event_time <= end, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            SESSION_TIMELINE_SQL,
            {"stream": stream_id, "request": request_id, "start": start, "end": end, "limit": limit},
        )
        return [
            TimelineFact(t, str(src), str(kind), str(orch), str(detail), str(cls))
            for t, src, kind, orch, detail, cls in cursor.fetchall()
        ]
