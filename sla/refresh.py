"""Incremental rollup refresh over the time ranges that changed.

Changed ranges come from three places: ``sla_dirty_range`` rows written by session derivation, sessions
updated since the last refresh, and fact rows (ingest counters, payments, capabilities) received since the
last refresh. Each rollup level is recomputed over exactly the buckets those ranges touch (delete+insert, or
a continuous-aggregate refresh on TimescaleDB), coarsest last. Consumed dirty rows and the new positions are
committed only after every level is done, so an interrupted refresh is simply redone: it is idempotent.

TimescaleDB materializes continuous aggregates only outside a transaction. Called inside one, the ranges of
continuous aggregates that are still served by real-time aggregation are queued again as dirty ranges of
kind ``cagg_deferred``, so that the next refresh outside a transaction materializes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from psycopg import sql

from naap_site.timeseries import is_continuous_aggregate, refresh_rollup, storage_mode
from sla.rollup_defs import FAMILIES, LEVELS, NET, ROLLUPS, Family

_LOCK_KEY = 0x534C4152  # "SLAR": one refresher at a time
_FACT_TABLES = ("telemetry_fact_ingest", "telemetry_fact_payment", "telemetry_fact_capability")
# Facts may commit slightly out of received_at order; re-reading a short overlap is harmless (idempotent).
_RECEIVED_OVERLAP = timedelta(seconds=30)
# A late counter sample changes the increment of the next one; a capability snapshot advertises up to 5 min.
_EXPAND = timedelta(minutes=5)
_MINUTE = timedelta(minutes=1)
# Ranges of one level at most this many buckets apart are refreshed by one statement (a few extra buckets
# cost less than another round of DELETE + INSERT over the base tables); coarse buckets are costly, so few.
_GAP_BUCKETS = {"1m": 10, "5m": 6, "1h": 1, "1d": 1}

DIRTY_IDS_SQL = 'SELECT id, start, "end" FROM sla_dirty_range ORDER BY id'
DELETE_DIRTY_SQL = "DELETE FROM sla_dirty_range WHERE id = ANY(%s)"
DEFERRED_KIND = "cagg_deferred"
INSERT_DIRTY_SQL = 'INSERT INTO sla_dirty_range (kind, start, "end", created_at) VALUES (%s, %s, %s, %s)'
STATE_SQL = "SELECT position FROM sla_refresh_state WHERE name = %s"
UPSERT_STATE_SQL = """
INSERT INTO sla_refresh_state (name, position, pending_start, pending_end, refreshed_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET position = COALESCE(EXCLUDED.position, sla_refresh_state.position),
  pending_start = EXCLUDED.pending_start, pending_end = EXCLUDED.pending_end,
  refreshed_at = COALESCE(EXCLUDED.refreshed_at, sla_refresh_state.refreshed_at)
"""
# The minutes that received fact rows (not the span between the earliest and latest: one hours-late row
# among current ones must not make every level recompute the hours in between).
FACT_CHANGES_SQL = """
SELECT date_bin(INTERVAL '1 minute', event_time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), max(received_at)
FROM {} WHERE received_at > %s GROUP BY 1
"""
# The span of each session updated since the last refresh, in whole minutes (one row per distinct span).
SESSION_CHANGES_SQL = """
SELECT date_bin(INTERVAL '1 minute', LEAST(request_at, first_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       date_bin(INTERVAL '1 minute', GREATEST(request_at, last_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       max(updated_at)
FROM sla_session WHERE updated_at > %s GROUP BY 1, 2
"""

Range = tuple[datetime, datetime]


@dataclass(frozen=True)
class RefreshSummary:
    ranges: tuple[Range, ...]
    buckets_refreshed: dict[str, int] = field(default_factory=dict)
    skipped: bool = False

    @property
    def empty(self) -> bool:
        return not self.ranges


def floor_to(moment: datetime, width: timedelta) -> datetime:
    """Align down on the bucket grid (origin 2000-01-01 UTC, same as the SQL bucket functions)."""
    origin = datetime(2000, 1, 1, tzinfo=UTC)
    steps = (moment - origin) // width
    return origin + steps * width


def ceil_to(moment: datetime, width: timedelta) -> datetime:
    floored = floor_to(moment, width)
    return floored if floored == moment else floored + width


def merge_ranges(ranges: Iterable[Range]) -> list[Range]:
    """Union of half-open ranges; touching ranges merge."""
    out: list[Range] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def aligned(ranges: Sequence[Range], width: timedelta, gap: int = 0) -> list[Range]:
    """Ranges widened to whole buckets; ranges at most ``gap`` buckets apart are joined into one."""
    slack = gap * width
    joined = merge_ranges((floor_to(s, width), ceil_to(e, width) + slack) for s, e in ranges)
    return [(s, e - slack) for s, e in joined]


def _position(cursor: Any, name: str) -> datetime:
    cursor.execute(STATE_SQL, [name])
    row = cursor.fetchone()
    if row is None or row[0] is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return row[0]


def _collect(cursor: Any) -> tuple[list[Range], list[int], dict[str, datetime]]:
    ranges: list[Range] = []
    cursor.execute(DIRTY_IDS_SQL)
    dirty_ids: list[int] = []
    for row_id, start, end in cursor.fetchall():
        dirty_ids.append(row_id)
        ranges.append((start, end))
    positions: dict[str, datetime] = {}
    for table in _FACT_TABLES:
        name = f"fact:{table}"
        since = _position(cursor, name) - _RECEIVED_OVERLAP
        cursor.execute(sql.SQL(FACT_CHANGES_SQL).format(sql.Identifier(table)), [since])
        rows = cursor.fetchall()
        if rows:
            ranges.extend((minute, minute + _MINUTE) for minute, _ in rows)
            positions[name] = max(newest for _, newest in rows)
    since = _position(cursor, "sessions")
    cursor.execute(SESSION_CHANGES_SQL, [since])
    rows = cursor.fetchall()
    if rows:
        ranges.extend((low, high + _MINUTE) for low, high, _ in rows if low is not None)
        positions["sessions"] = max(newest for _, _, newest in rows)
    return ranges, dirty_ids, positions


def _family_ranges(family: Family, ranges: Sequence[Range]) -> list[Range]:
    if family is NET or family.name == "demand":
        return merge_ranges((s - _EXPAND, e + _EXPAND) for s, e in ranges)
    return list(ranges)


def refresh_ranges(ranges: Sequence[Range], families: Sequence[Family] = FAMILIES) -> dict[str, int]:
    """Recompute every level of ``families`` over ``ranges``; returns buckets refreshed per table."""
    mode = storage_mode()
    done: dict[str, int] = {}
    deferred: list[Range] = []
    for family in families:
        wanted = _family_ranges(family, merge_ranges(ranges))
        for level in family.levels:
            rollup = ROLLUPS[family.table(level)]
            width = LEVELS[level]
            count = 0
            for start, end in aligned(wanted, width, _GAP_BUCKETS[level]):
                if is_continuous_aggregate(rollup, mode):
                    with connection.cursor() as cursor:
                        if not refresh_rollup(cursor, rollup, start, end, mode):
                            deferred.append((start, end))
                else:
                    with transaction.atomic(), connection.cursor() as cursor:
                        refresh_rollup(cursor, rollup, start, end, mode)
                count += int((end - start) / width)
            done[rollup.name] = count
    if deferred:
        stamp = datetime.now(UTC)
        with connection.cursor() as cursor:
            for start, end in merge_ranges(deferred):
                cursor.execute(INSERT_DIRTY_SQL, [DEFERRED_KIND, start, end, stamp])
    return done


def refresh(now: datetime | None = None) -> RefreshSummary:
    """Bring every rollup up to date with what changed since the last call."""
    stamp = now or datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if not cursor.fetchone()[0]:
            return RefreshSummary(ranges=(), skipped=True)
    try:
        with connection.cursor() as cursor:
            ranges, dirty_ids, positions = _collect(cursor)
        merged = merge_ranges(ranges)
        if merged:
            with connection.cursor() as cursor:
                cursor.execute(UPSERT_STATE_SQL, ["rollups", None, merged[0][0], merged[-1][1], None])
        counts = refresh_ranges(merged)
        with transaction.atomic(), connection.cursor() as cursor:
            if dirty_ids:
                cursor.execute(DELETE_DIRTY_SQL, [dirty_ids])
            for name, position in positions.items():
                cursor.execute(UPSERT_STATE_SQL, [name, position, None, None, stamp])
            cursor.execute(UPSERT_STATE_SQL, ["rollups", None, None, None, stamp])
        return RefreshSummary(ranges=tuple(merged), buckets_refreshed=counts)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def rebuild_all(start: datetime, end: datetime) -> dict[str, int]:
    """Recompute every rollup over [start, end) regardless of what changed (after a definition change)."""
    return refresh_ranges([(start, end)])
