"""Incremental derivation of sessions from facts, and the full rebuild (``manage.py sla_derive``).

A run reads which streams received facts since the cursor (plus streams whose silence deadline passed and
streams whose attribution may change because capability facts arrived), then re-assembles each touched
stream completely from all of its facts and replaces its rows. The run sees one snapshot: every read is
bounded by the newest ``received_at`` at its start. The silence clock is the newest event time seen, never
the wall clock, so a rebuild gives the same rows as any sequence of incremental runs over the same facts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from sla.models import DeriveCursor, DirtyRange
from sla.sessions import queries as store
from sla.sessions.assembly import MINUTE, SILENCE, assemble_stream, minute_of
from sla.sessions.identity import IdentityBook
from sla.sessions.rows import SessionRow
from telemetry import queries as facts
from telemetry.queries import SessionFact

CURSOR_NAME = "sessions"
DIRTY_KIND = "sessions"
DEFAULT_CHUNK = 500  # streams per transaction
# An ingest batch stamps received_at before its transaction commits. A run reads everything committed,
# but advances its cursor only to NAAP_SLA_DERIVE_SETTLE_S before the wall clock (which bounds reading and
# never enters a result), so facts received in that last stretch are read again by the next run: a batch
# that commits a little late is never skipped, and fresh facts are not delayed.

Progress = Callable[[int, int], None]


@dataclass
class DeriveStats:
    streams: int = 0
    sessions: int = 0
    segments: int = 0
    minutes: int = 0
    facts: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    position: datetime | None = None
    newest_event_at: datetime | None = None
    dirty_start: datetime | None = None
    dirty_end: datetime | None = None

    @property
    def facts_per_second(self) -> float:
        return self.facts / self.seconds if self.seconds > 0 else 0.0


class _Loader:
    """Identity and hardware change points, loaded once per key within one run."""

    def __init__(self, until: datetime) -> None:
        self.until = until
        self.book = IdentityBook()
        self._signing: set[str] = set()
        self._urls: set[str] = set()
        self._hardware: set[str] = set()

    def load_for(self, rows: Iterable[SessionFact]) -> None:
        signing = {r.orchestrator for r in rows if r.orchestrator} - self._signing
        urls = {r.url for r in rows if r.url} - self._urls
        self._signing |= signing
        self._urls |= urls
        self.book.add_signing(facts.signing_points(sorted(signing), self.until))
        self.book.add_urls(facts.url_points(sorted(urls), self.until))
        candidates = set(signing)
        for series in (*self.book.signing.values(), *self.book.urls.values()):
            candidates.update(series.values)
        wanted = candidates - self._hardware
        self._hardware |= wanted
        self.book.add_hardware(facts.hardware_points(sorted(wanted), self.until))


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _widen(
    bounds: tuple[datetime | None, datetime | None], start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    lo, hi = bounds
    if start is not None:
        lo = start if lo is None else min(lo, start)
    if end is not None:
        hi = end if hi is None else max(hi, end)
    return lo, hi


def _max(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def derive(
    now: datetime | None = None,
    *,
    rebuild: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> DeriveStats:
    """Bring sessions up to date with the facts; with ``rebuild`` clear them and derive everything."""
    started = time.perf_counter()
    now = now or datetime.now(tz=UTC)
    stats = DeriveStats()
    with connection.cursor() as cursor:
        cursor.execute(store.LOCK_SQL, [store.DERIVE_LOCK_KEY])
    try:
        _run(now, rebuild, chunk_size, progress, stats)
    finally:
        if not connection.needs_rollback:  # else the lock ends with the session; it is re-entrant
            with connection.cursor() as cursor:
                cursor.execute(store.UNLOCK_SQL, [store.DERIVE_LOCK_KEY])
    stats.seconds = time.perf_counter() - started
    return stats


def _run(
    now: datetime, rebuild: bool, chunk_size: int, progress: Progress | None, stats: DeriveStats
) -> None:
    cursor_row = DeriveCursor.objects.filter(name=CURSOR_NAME).first()
    bounds: tuple[datetime | None, datetime | None] = (None, None)
    if rebuild:
        bounds = store.time_range(None)
        with transaction.atomic():
            store.clear_all()
            DeriveCursor.objects.filter(name=CURSOR_NAME).delete()
        cursor_row = None
    latest = facts.latest_fact_received()
    position = cursor_row.position if cursor_row is not None else None
    if latest is None:
        _record_dirty(bounds, now, stats)
        return
    until = latest
    settled = min(latest, datetime.now(tz=UTC) - timedelta(seconds=settings.NAAP_SLA_DERIVE_SETTLE_S))
    next_position = settled if position is None else max(position, settled)
    if position is None:
        streams = facts.all_streams(until)
        newest = _max(*streams.values(), facts.newest_capability_event(until))
        touched = set(streams)
    else:
        since = position
        streams = facts.changed_streams(since, until)
        changes = facts.changed_capabilities(since, until)
        newest = _max(
            cursor_row.newest_event_at if cursor_row else None,
            *streams.values(),
            *(c.last_event_at for c in changes),
        )
        touched = set(streams) | store.streams_affected_by(changes)
        if newest is not None:
            touched |= store.silent_streams(newest - SILENCE)
    if newest is None:
        _record_dirty(bounds, now, stats)
        return
    ordered = sorted(touched)
    loader = _Loader(until)
    done = 0
    for chunk in _chunks(ordered, chunk_size):
        rows = facts.session_facts(chunk, until)
        stats.facts += len(rows)
        loader.load_for(rows)
        by_stream: dict[str, list[SessionFact]] = {}
        for row in rows:
            by_stream.setdefault(row.stream_id, []).append(row)
        sessions: list[SessionRow] = []
        for stream_id in sorted(by_stream):
            sessions.extend(assemble_stream(by_stream[stream_id], loader.book, newest))
        with transaction.atomic():
            bounds = _widen(bounds, *store.time_range(chunk))
            stats.rows_written += store.replace_streams(chunk, sessions, now)
        for s in sessions:
            bounds = _widen(bounds, s.first_event_at, s.last_event_at)
            stats.segments += len(s.segments)
            stats.minutes += sum(len(g.minutes) for g in s.segments)
        stats.sessions += len(sessions)
        done += len(chunk)
        if progress is not None:
            progress(done, len(ordered))
    stats.streams = len(ordered)
    stats.position = next_position
    stats.newest_event_at = newest
    with transaction.atomic():
        DeriveCursor.objects.update_or_create(
            name=CURSOR_NAME,
            defaults={"position": next_position, "newest_event_at": newest, "updated_at": now},
        )
        _record_dirty(bounds, now, stats)


def _record_dirty(bounds: tuple[datetime | None, datetime | None], now: datetime, stats: DeriveStats) -> None:
    """One DirtyRange per run: the minute buckets between the earliest and latest event it rewrote."""
    lo, hi = bounds
    if lo is None or hi is None:
        return
    stats.dirty_start, stats.dirty_end = minute_of(lo), minute_of(hi) + MINUTE
    DirtyRange.objects.create(kind=DIRTY_KIND, start=stats.dirty_start, end=stats.dirty_end, created_at=now)
