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

from naap_site.timeseries import Rollup, in_transaction, is_continuous_aggregate, rollup_select, storage_mode
from sla.queries import (
    CAGG_UNMATERIALIZED_SQL,
    DELETE_BUCKETS_SQL,
    DELETE_DIRTY_SQL,
    DIRTY_IDS_SQL,
    INSERT_DIRTY_SQL,
    INSERT_ROLLUP_SQL,
    REFRESH_CAGG_SQL,
    REFRESH_LOCK_KEY,
    SESSION_CHANGES_SQL,
    STATE_SQL,
    TRY_LOCK_SQL,
    UNLOCK_SQL,
    UPSERT_STATE_SQL,
)
from sla.rollup_defs import FAMILIES, LEVELS, NET, ROLLUPS, Family
from telemetry.queries import ROLLUP_FACT_TABLES, fact_minutes_received

# Facts may commit slightly out of received_at order; re-reading a short overlap is harmless (idempotent).
_RECEIVED_OVERLAP = timedelta(seconds=30)
# A late counter sample changes the increment of the next one; a capability snapshot advertises up to 5 min.
_EXPAND = timedelta(minutes=5)
_MINUTE = timedelta(minutes=1)
# Ranges of one level at most this many buckets apart are refreshed by one statement (a few extra buckets
# cost less than another round of DELETE + INSERT over the base tables); coarse buckets are costly, so few.
_GAP_BUCKETS = {"1m": 10, "5m": 6, "1h": 1, "1d": 1}
DEFERRED_KIND = "cagg_deferred"

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
    for table in ROLLUP_FACT_TABLES:
        name = f"fact:{table}"
        since = _position(cursor, name) - _RECEIVED_OVERLAP
        rows = fact_minutes_received(table, since)
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


class RefreshInTransactionError(RuntimeError):
    """A continuous aggregate has materialized buckets to correct, and the caller is inside a transaction."""


def refresh_rollup(cursor: Any, rollup: Rollup, start: datetime, end: datetime, mode: str) -> bool:
    """Recompute the buckets in [start, end) (aligned by the caller). Idempotent.

    Tables are recomputed by delete+insert inside the caller's transaction. Continuous aggregates are
    refreshed by TimescaleDB, which needs autocommit; inside a transaction nothing is materialized and this
    returns False when the buckets are served by real-time aggregation anyway (the caller must refresh the
    range again later), or raises :class:`RefreshInTransactionError` when materialized buckets would stay
    stale. Returns True when the buckets are up to date in storage.
    """
    if is_continuous_aggregate(rollup, mode):
        if in_transaction(cursor):
            cursor.execute(CAGG_UNMATERIALIZED_SQL, [start, rollup.name])
            row = cursor.fetchone()
            if row is not None and row[0]:
                return False
            raise RefreshInTransactionError(
                f"{rollup.name}: buckets from {start.isoformat()} are materialized and can only be "
                "refreshed outside a transaction"
            )
        cursor.execute(sql.SQL(REFRESH_CAGG_SQL).format(name=sql.Literal(rollup.name)), [start, end])
        return True
    name = sql.Identifier(rollup.name)
    cursor.execute(sql.SQL(DELETE_BUCKETS_SQL).format(name=name), [start, end])
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in rollup.column_names())
    select = rollup_select(rollup, mode, ranged=True)
    cursor.execute(
        sql.SQL(INSERT_ROLLUP_SQL).format(name=name, columns=columns, select=select),
        {"start": start, "end": end},
    )
    return True


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
        cursor.execute(TRY_LOCK_SQL, [REFRESH_LOCK_KEY])
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
            cursor.execute(UNLOCK_SQL, [REFRESH_LOCK_KEY])


def rebuild_all(start: datetime, end: datetime) -> dict[str, int]:
    """Recompute every rollup over [start, end) regardless of what changed (after a definition change)."""
    return refresh_ranges([(start, end)])
