"""Celery tasks of the ingest queue."""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from telemetry.pipeline.ingest import Message, ingest_messages


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    return trim if callable(trim) else None


_MALLOC_TRIM = _malloc_trim()


# A batch is megabytes of JSON text. As a msgpack string it is copied, not escaped and parsed, by the
# producer, by the worker's main process (which decodes every message it hands out) and by the child;
# compressed (about 9×, ~1 ms per MB each way with zstd) it is small in Redis and on the wire.
INGEST_SERIALIZER = "msgpack"
INGEST_COMPRESSION = "zstd"


@shared_task(
    name="telemetry.tasks.ingest_batch",
    serializer=INGEST_SERIALIZER,
    compression=INGEST_COMPRESSION,
    # a broken connection (database restart) or a socket error: retry; the batch is idempotent
    autoretry_for=(OSError, OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=8,
)
def ingest_batch(
    source: str, messages: list[dict[str, Any]], received_ms: int | None = None
) -> dict[str, Any]:
    received = datetime.fromtimestamp(received_ms / 1000, tz=UTC) if received_ms else None
    result = ingest_messages([Message.from_json(m) for m in messages], source=source, received_at=received)
    if _MALLOC_TRIM is not None:
        # The batch's buffers are free now; without this, glibc keeps the heap pages and a worker process
        # stays at the size of its largest batch (measured: ~20 MB per process on 5,000-event batches).
        _MALLOC_TRIM(0)
    return result.as_dict()


@shared_task(name="telemetry.tasks.maintain_storage")
def maintain_storage_task() -> dict[str, Any]:
    """Partitions ahead and retention (the beat schedule in ``naap_site/celery.py`` runs it hourly)."""
    from telemetry.storage import maintain_storage

    report = maintain_storage()
    return {"mode": report.mode, "created_days": report.created_days, "dropped": report.dropped}
