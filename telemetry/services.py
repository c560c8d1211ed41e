"""Writes of the telemetry app that are not the hot ingest path: publishers, refused bodies, rebuilds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache as memoise
from pathlib import Path
from typing import Any

import msgspec
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from naap_site.timeseries import day_start
from telemetry.contracts import Event, Rejection, normalise
from telemetry.contracts.values import normalise_address
from telemetry.models import Publisher, RejectedEvent, hash_api_key
from telemetry.pipeline.ingest import write_facts
from telemetry.tables import FACT_TABLES

_json_decoder = msgspec.json.Decoder()
_SQL_DIR = Path(__file__).resolve().parent / "sql"


@memoise
def _sql_text(name: str) -> str:
    return (_SQL_DIR / f"{name}.sql").read_text()


# ---- publishers ---------------------------------------------------------------------------------------


def authenticate_publisher(api_key: str) -> str | None:
    """The publisher name for an API key, or None. Cached briefly; revocation takes effect within 30 s."""
    if not api_key:
        return None
    digest = hash_api_key(api_key)
    cache_key = f"publisher:{digest}"
    name = cache.get(cache_key)
    if name is None:
        publisher = Publisher.objects.filter(api_key_hash=digest, active=True).only("name").first()
        name = publisher.name if publisher else ""
        cache.set(cache_key, name, 30)
    return name or None


def create_publisher(name: str, kind: str = "gateway", eth_address: str = "") -> tuple[Publisher, str]:
    """A new publisher and its API key. Only the key's hash is stored: the caller shows the key once.

    Raises ValueError for an empty or taken name, an unknown kind or a malformed address.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("the name must be 1 to 100 characters")
    kinds = {choice for choice, _ in Publisher.KIND_CHOICES}
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(sorted(kinds))}")
    try:
        address = normalise_address(eth_address, "eth address")
    except Rejection as exc:
        raise ValueError(exc.detail) from None
    if Publisher.objects.filter(name=name).exists():
        raise ValueError(f"a publisher named {name!r} exists already")
    return Publisher.create_with_key(name, kind=kind, eth_address=address)


def record_refused_body(
    source: str, publisher: str, reason: str, detail: str, head: bytes, size: int
) -> None:
    """Store a refused request body (at most NAAP_REJECTED_KEEP_BYTES of it) with why."""
    RejectedEvent.objects.create(
        received_at=timezone.now(),
        source=source,
        publisher=publisher[:100],
        reason=reason,
        detail=detail[:500],
        event_type="",
        raw=bytes(head[: settings.NAAP_REJECTED_KEEP_BYTES]),
        raw_size=size,
    )


# ---- rebuild ------------------------------------------------------------------------------------------


@dataclass
class _ChunkCounts:
    raw_events: int = 0
    invalid_now: int = 0
    facts_deleted: int = 0
    facts_written: int = 0


def _chunks(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights."""
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor < end:
        boundary = min(day_start(cursor) + timedelta(days=1), end)
        out.append((cursor, boundary))
        cursor = boundary
    return out


def _rebuild_chunk(start: datetime, end: datetime, written: Counter[str]) -> _ChunkCounts:
    counts = _ChunkCounts()
    max_future = timedelta(seconds=settings.NAAP_MAX_FUTURE_SKEW_S)
    params = {"start": start, "end": end}
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        if outermost:
            # One snapshot for the delete and the read: rows that ingest commits meanwhile are neither
            # deleted nor re-derived here (they keep the facts ingest wrote for them).
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for table in FACT_TABLES:
            cursor.execute(
                sql.SQL(_sql_text("rebuild_delete_facts")).format(table=sql.Identifier(table.name)), params
            )
            counts.facts_deleted += max(cursor.rowcount, 0)
        # A server-side cursor: a day of raw rows is read and re-derived 2,000 rows at a time.
        with connection.connection.cursor(name="naap_rebuild_raw") as raw_cursor:
            raw_cursor.execute(_sql_text("rebuild_raw"), params)
            while batch := raw_cursor.fetchmany(2000):
                by_received: dict[datetime, list[Event]] = {}
                for dedup_key, received_at, publisher, payload in batch:
                    counts.raw_events += 1
                    if isinstance(payload, str | bytes):  # Django's psycopg setup leaves jsonb as text
                        payload = _json_decoder.decode(payload)
                    try:
                        event = normalise(
                            payload, publisher=publisher, now=received_at, max_future=max_future
                        )
                    except Rejection:
                        counts.invalid_now += 1
                        continue
                    event.dedup_key = bytes(dedup_key)  # as stored: the key may hash transport metadata
                    by_received.setdefault(received_at, []).append(event)
                for received_at, events in by_received.items():
                    for table_name, n in write_facts(events, received_at).items():
                        written[table_name] += n
                        counts.facts_written += n
    return counts


def rebuild_facts(
    start: datetime, end: datetime, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Re-derive every fact table from the raw log for raw rows with ``start <= event_time < end``.

    Facts of those rows are deleted and extracted again from the stored payloads through the same
    ``normalise`` + ``extract_facts`` code that ingest runs. Work goes in UTC-day chunks, each one
    transaction: an interrupted rebuild leaves every chunk either old or new, and running it again (or
    from the last reported ``done_until``) finishes the job. ``progress`` is called after each chunk.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = _ChunkCounts()
    written: Counter[str] = Counter()
    chunks = _chunks(start, end)
    for index, (chunk_start, chunk_end) in enumerate(chunks, 1):
        counts = _rebuild_chunk(chunk_start, chunk_end, written)
        total.raw_events += counts.raw_events
        total.invalid_now += counts.invalid_now
        total.facts_deleted += counts.facts_deleted
        total.facts_written += counts.facts_written
        if progress is not None:
            progress(
                {
                    "chunk": index,
                    "chunks": len(chunks),
                    "done_until": chunk_end.isoformat(),
                    "raw_events": counts.raw_events,
                    "facts_written": counts.facts_written,
                }
            )
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "chunks": len(chunks),
        "raw_events": total.raw_events,
        "invalid_now": total.invalid_now,
        "facts_deleted": total.facts_deleted,
        "facts_written": total.facts_written,
        "facts_by_table": dict(sorted(written.items())),
    }
