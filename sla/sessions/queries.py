"""Reads and writes of the session tables (``sla_session``, ``sla_segment``, ``sla_segment_minute``).

A stream's rows are always replaced as a whole: delete, then COPY the freshly assembled rows with ids
taken from the tables' sequences, so that one chunk costs a handful of statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from psycopg import sql

from sla.sessions.rows import MinuteRow, SegmentRow, SessionRow, column_names
from telemetry.queries import CapabilityChange

SESSION_COLUMNS = column_names(SessionRow)
SEGMENT_COLUMNS = column_names(SegmentRow)
MINUTE_COLUMNS = column_names(MinuteRow)

DERIVE_LOCK_KEY = 0x51A5E55  # pg advisory lock: one derivation at a time
LOCK_SQL = "SELECT pg_advisory_lock(%s)"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"

STREAM_RANGE_SQL = """
SELECT min(first_event_at), max(last_event_at) FROM sla_session WHERE stream_id = ANY(%(streams)s)
"""
ALL_RANGE_SQL = "SELECT min(first_event_at), max(last_event_at) FROM sla_session"

DELETE_MINUTES_SQL = """
DELETE FROM sla_segment_minute m USING sla_segment g, sla_session s
WHERE m.segment_id = g.id AND g.session_id = s.id AND s.stream_id = ANY(%(streams)s)
"""
DELETE_SEGMENTS_SQL = """
DELETE FROM sla_segment g USING sla_session s
WHERE g.session_id = s.id AND s.stream_id = ANY(%(streams)s)
"""
DELETE_SESSIONS_SQL = "DELETE FROM sla_session WHERE stream_id = ANY(%(streams)s)"
TRUNCATE_SQL = "TRUNCATE sla_segment_minute, sla_segment, sla_session"

NEXT_IDS_SQL = "SELECT nextval(pg_get_serial_sequence(%(table)s, 'id')) FROM generate_series(1, %(n)s)"

# Open sessions whose silence deadline has passed on the newest-event clock.
SILENT_STREAMS_SQL = """
SELECT DISTINCT stream_id FROM sla_session WHERE status = 'open' AND last_event_at <= %(deadline)s
"""

# Streams whose attribution or hardware may change because of capability rows that arrived: a segment
# naming one of the changed keys in a session whose last event is not before the change.
CAPABILITY_STREAMS_SQL = """
SELECT DISTINCT s.stream_id
FROM sla_segment g JOIN sla_session s ON s.id = g.session_id
WHERE s.last_event_at >= %(since)s
  AND (g.signing_address = ANY(%(signing)s) OR g.orchestrator = ANY(%(addresses)s)
       OR g.orchestrator_url = ANY(%(urls)s))
"""


def time_range(stream_ids: Sequence[str] | None) -> tuple[datetime | None, datetime | None]:
    """[first event, last event] over the stored sessions of the streams (all streams when None)."""
    with connection.cursor() as cursor:
        if stream_ids is None:
            cursor.execute(ALL_RANGE_SQL)
        else:
            cursor.execute(STREAM_RANGE_SQL, {"streams": list(stream_ids)})
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def clear_all() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred FK checks may be pending
        cursor.execute(TRUNCATE_SQL)


def silent_streams(deadline: datetime) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(SILENT_STREAMS_SQL, {"deadline": deadline})
        return {row[0] for row in cursor.fetchall()}


def streams_affected_by(changes: Sequence[CapabilityChange]) -> set[str]:
    if not changes:
        return set()
    params: dict[str, Any] = {
        "since": min(c.first_event_at for c in changes),
        "signing": sorted({c.local_address for c in changes if c.local_address}),
        "addresses": sorted({c.address for c in changes if c.address}),
        "urls": sorted({c.orchestrator_url for c in changes if c.orchestrator_url}),
    }
    with connection.cursor() as cursor:
        cursor.execute(CAPABILITY_STREAMS_SQL, params)
        return {row[0] for row in cursor.fetchall()}


def _next_ids(cursor: Any, table: str, n: int) -> list[int]:
    if n == 0:
        return []
    cursor.execute(NEXT_IDS_SQL, {"table": table, "n": n})
    return [row[0] for row in cursor.fetchall()]


def _copy(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def replace_streams(stream_ids: Sequence[str], sessions: Sequence[SessionRow], now: datetime) -> int:
    """Replace every stored row of the streams by ``sessions``; returns the number of rows written."""
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        params = {"streams": list(stream_ids)}
        cursor.execute(DELETE_MINUTES_SQL, params)
        cursor.execute(DELETE_SEGMENTS_SQL, params)
        cursor.execute(DELETE_SESSIONS_SQL, params)
        session_ids = _next_ids(cursor, "sla_session", len(sessions))
        segments = [(sid, g) for sid, s in zip(session_ids, sessions, strict=True) for g in s.segments]
        segment_ids = _next_ids(cursor, "sla_segment", len(segments))
        session_rows = [
            (sid, *(getattr(s, c) for c in SESSION_COLUMNS), now)
            for sid, s in zip(session_ids, sessions, strict=True)
        ]
        segment_rows = [
            (gid, sid, *(getattr(g, c) for c in SEGMENT_COLUMNS))
            for gid, (sid, g) in zip(segment_ids, segments, strict=True)
        ]
        minute_rows = [
            (gid, *(getattr(m, c) for c in MINUTE_COLUMNS))
            for gid, (_, g) in zip(segment_ids, segments, strict=True)
            for m in g.minutes
        ]
        _copy(cursor, "sla_session", ["id", *SESSION_COLUMNS, "updated_at"], session_rows)
        _copy(cursor, "sla_segment", ["id", "session_id", *SEGMENT_COLUMNS], segment_rows)
        _copy(cursor, "sla_segment_minute", ["segment_id", *MINUTE_COLUMNS], minute_rows)
    return len(session_rows) + len(segment_rows) + len(minute_rows)
