"""The ingest pipeline: decode → validate → normalise → de-duplicate → write raw, facts, rejected.

One call is one transaction. Re-delivering any batch changes nothing: the raw log has a unique dedup key
and facts are written only for raw rows this call inserted.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from django.conf import settings
from django.db import connection, transaction
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.adapt import Dumper
from psycopg.pq import Format

from naap_site.timeseries import ensure_partitions
from telemetry.access.enforcement import PublisherGuard, publisher_guard
from telemetry.contracts import Event, Rejection, normalise
from telemetry.contracts import reasons as R
from telemetry.models import RejectedEvent
from telemetry.pipeline.decode import Piece, split_body, split_value
from telemetry.pipeline.facts import Row, extract_facts
from telemetry.tables import FACT_TABLES, RAW, TimeTable


@dataclass(slots=True)
class Message:
    """What a source adapter hands to the pipeline: one transport message."""

    body: str | bytes | None = None  # raw text: one event, a JSON array, or JSON lines
    value: Any = None  # or an already decoded JSON value (Streamr content)
    publisher: str = ""
    metadata: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body = self.body.decode("utf-8", "replace") if isinstance(self.body, bytes) else self.body
        return {"body": body, "value": self.value, "publisher": self.publisher, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(
            body=data.get("body"),
            value=data.get("value"),
            publisher=data.get("publisher", ""),
            metadata=data.get("metadata"),
        )


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    unknown_types: int = 0

    def add(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.rejected_by_reason.update(other.rejected_by_reason)
        self.unknown_types += other.unknown_types

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }


@dataclass(slots=True)
class _Refused:
    raw: bytes
    publisher: str
    rejection: Rejection
    event_type: str = ""


def _publisher_of(message: Message) -> str:
    if message.publisher:
        return message.publisher
    meta = message.metadata or {}
    publisher_id = meta.get("publisherId")
    return str(publisher_id).lower() if publisher_id else ""


def _pieces(message: Message, max_bytes: int) -> list[Piece]:
    if message.value is not None:
        return split_value(message.value, max_bytes)
    body = message.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    return split_body(body, max_bytes)


def prepare(
    messages: Sequence[Message], now: datetime, guard: PublisherGuard | None = None
) -> tuple[list[Event], list[_Refused], int]:
    """Pure part of the pipeline: returns unique events, refusals and the in-batch duplicate count.

    With a ``guard`` (publisher enforcement on), each event is checked against the authorised set."""
    max_bytes = settings.NAAP_MAX_EVENT_BYTES
    max_future = timedelta(seconds=settings.NAAP_MAX_FUTURE_SKEW_S)
    events: dict[bytes, Event] = {}
    refused: list[_Refused] = []
    duplicates = 0
    for message in messages:
        publisher = _publisher_of(message)
        identity = guard.allowed.identity(publisher) if guard is not None and publisher else ""
        for piece in _pieces(message, max_bytes):
            if piece.error is not None:
                refused.append(_Refused(piece.raw, publisher, piece.error, _type_of(piece.value)))
                continue
            try:
                event = normalise(piece.value, publisher=publisher, now=now, max_future=max_future)
            except Rejection as rejection:
                refused.append(_Refused(piece.raw, publisher, rejection, _type_of(piece.value)))
                continue
            if guard is not None and publisher:
                unauthorised = guard.check(publisher, identity, event)
                if unauthorised is not None:
                    refused.append(_Refused(piece.raw, publisher, unauthorised, event.event_type))
                    continue
            if message.metadata:
                event.original = {**event.original, "_streamr": message.metadata}
            else:
                event.raw = piece.raw  # the raw log stores this text as is: no re-encoding
            if event.dedup_key in events:
                duplicates += 1
            else:
                events[event.dedup_key] = event
    return list(events.values()), refused, duplicates


def _type_of(value: object) -> str:
    if isinstance(value, dict):
        kind = value.get("type", value.get("event_type", ""))
        return kind[:80] if isinstance(kind, str) else ""
    return ""


def ingest_messages(
    messages: Sequence[Message], *, source: str, received_at: datetime | None = None
) -> IngestResult:
    received = received_at or datetime.now(tz=UTC)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a batch allocates many short-lived objects and no cycles
    try:
        guard = publisher_guard(received)
        events, refused, duplicates = prepare(messages, received, guard)
        result = IngestResult(duplicates=duplicates)
        with transaction.atomic():
            inserted = write_raw(events, source, received) if events else []
            if inserted:
                write_facts(inserted, received)
            if refused:
                write_rejected(refused, source, received)
            if guard is not None:
                guard.record_reports(inserted, source)
        result.accepted = len(inserted)
        result.duplicates += len(events) - len(inserted)
        result.rejected = len(refused)
        result.rejected_by_reason.update(r.rejection.reason for r in refused)
        result.unknown_types = sum(1 for e in inserted if not e.known_type)
        return result
    finally:
        if gc_was_enabled:
            gc.enable()


# ---- writing ---------------------------------------------------------------------------------------
#
# Rows go to PostgreSQL with binary COPY: psycopg's C formatter packs each value straight into the wire
# format (no text escaping here; no parsing of times, keys or numbers on the server), with the column types
# fixed once per COPY.

_json = msgspec.json.Encoder()


class _JsonbBytesDumper(Dumper):
    """Binary ``jsonb`` from JSON text already encoded as UTF-8 bytes (format version 1 + the text)."""

    format = Format.BINARY
    oid = psycopg.adapters.types["jsonb"].oid

    def dump(self, obj: Any) -> Buffer:
        return b"\x01" + obj


def _copy_type(declaration: str) -> str:
    """The type name of a column declaration: ``"text NOT NULL DEFAULT ''"`` → ``"text"``."""
    for marker in (" NOT NULL", " DEFAULT", " NULL"):
        declaration = declaration.split(marker, 1)[0]
    return declaration.strip()


def _copy_types(table: TimeTable) -> list[str]:
    return [_copy_type(declaration) for _, declaration in table.columns]


_COPY_SQL = "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
# Which of a batch's (dedup key, event time) pairs the raw log already holds. The keys go as a binary
# bytea[] (%b): thousands of keys are packed in about a millisecond, twenty times faster than as text.
_STORED_KEYS_SQL = (
    "SELECT dedup_key, event_time FROM telemetry_events_raw "
    "WHERE dedup_key = ANY(%b) AND event_time >= %s AND event_time <= %s"
)
_STAGING_CREATE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS naap_raw_staging "
    "(LIKE telemetry_events_raw INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_STAGING_INSERT_SQL = (
    "INSERT INTO telemetry_events_raw ({columns}) SELECT {columns} FROM naap_raw_staging "
    "ON CONFLICT DO NOTHING RETURNING dedup_key"
)
_STAGING_TRUNCATE_SQL = "TRUNCATE naap_raw_staging"


def _copy_rows(
    cursor: psycopg.Cursor[Any], table: str, columns: list[str], types: list[str], rows: Iterable[Row]
) -> None:
    statement = sql.SQL(_COPY_SQL).format(
        table=sql.Identifier(table), columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


_RAW_COLUMNS = RAW.column_names()
_RAW_TYPES = _copy_types(RAW)


def _raw_rows(events: list[Event], source: str, received: datetime) -> Iterator[Row]:
    encode = _json.encode
    for e in events:
        yield (
            e.event_time,
            e.dedup_key,
            received,
            source,
            e.publisher,
            e.event_type,
            e.known_type,
            e.event_id,
            e.gateway,
            e.orchestrator,
            e.stream_id,
            e.request_id,
            e.pipeline,
            e.raw if e.raw is not None else encode(e.original),
        )


def write_raw(events: list[Event], source: str, received: datetime) -> list[Event]:
    """Write the events the raw log does not hold yet; returns them (the events that were new).

    The batch's keys are looked up first and only new events are COPYed, straight into the raw table.
    Should a concurrent delivery of the same events commit between the look-up and the COPY, the unique
    key refuses the COPY; its savepoint is rolled back and the batch goes through a staging table with
    ``INSERT … ON CONFLICT DO NOTHING`` instead.
    """
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        cursor.adapters.register_dumper(None, _JsonbBytesDumper)  # only COPY's set_types() looks it up
        ensure_partitions(cursor, RAW.name, (e.event_time for e in events))
        fresh = _not_stored(cursor, events)
        if not fresh:
            return []
        try:
            with transaction.atomic():
                _copy_rows(cursor, RAW.name, _RAW_COLUMNS, _RAW_TYPES, _raw_rows(fresh, source, received))
        except psycopg.errors.UniqueViolation:
            return _insert_new(cursor, fresh, source, received)
        return fresh


def _not_stored(cursor: psycopg.Cursor[Any], events: list[Event]) -> list[Event]:
    times = [e.event_time for e in events]
    cursor.execute(_STORED_KEYS_SQL, ([e.dedup_key for e in events], min(times), max(times)))
    stored = {(bytes(key), when) for key, when in cursor.fetchall()}
    if not stored:
        return events
    return [e for e in events if (e.dedup_key, e.event_time) not in stored]


def _insert_new(
    cursor: psycopg.Cursor[Any], events: list[Event], source: str, received: datetime
) -> list[Event]:
    cursor.execute(_STAGING_CREATE_SQL)
    _copy_rows(cursor, "naap_raw_staging", _RAW_COLUMNS, _RAW_TYPES, _raw_rows(events, source, received))
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _RAW_COLUMNS)
    cursor.execute(sql.SQL(_STAGING_INSERT_SQL).format(columns=columns))
    new_keys = {bytes(row[0]) for row in cursor.fetchall()}
    cursor.execute(_STAGING_TRUNCATE_SQL)
    return [e for e in events if e.dedup_key in new_keys]


_FACT_COPY = {table: (table.column_names(), _copy_types(table)) for table in FACT_TABLES}


def write_facts(events: list[Event], received: datetime) -> dict[str, int]:
    """COPY the facts of ``events`` into the fact tables; returns the rows written per table name."""
    rows: dict[TimeTable, list[Row]] = {}
    for event in events:
        for table, row in extract_facts(event, received):
            rows.setdefault(table, []).append(row)
    if not rows:
        return {}
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        for table, table_rows in rows.items():
            ensure_partitions(cursor, table.name, (r[0] for r in table_rows))
            columns, types = _FACT_COPY[table]
            _copy_rows(cursor, table.name, columns, types, table_rows)
    return {table.name: len(table_rows) for table, table_rows in rows.items()}


def write_rejected(refused: list[_Refused], source: str, received: datetime) -> None:
    keep = settings.NAAP_REJECTED_KEEP_BYTES
    RejectedEvent.objects.bulk_create(
        [
            RejectedEvent(
                received_at=received,
                source=source,
                publisher=r.publisher[:100],
                reason=r.rejection.reason,
                detail=r.rejection.detail[:500],
                event_type=r.event_type,
                raw=r.raw[:keep],
                raw_size=len(r.raw),
            )
            for r in refused
        ]
    )


__all__ = ["IngestResult", "Message", "R", "ingest_messages", "prepare"]
