"""Celery tasks of the ingest queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from telemetry.pipeline.ingest import Message, ingest_messages


@shared_task(
    name="telemetry.tasks.ingest_batch",
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
    return result.as_dict()


@shared_task(name="telemetry.tasks.maintain_storage")
def maintain_storage_task() -> dict[str, Any]:
    """Partitions ahead and retention (the beat schedule in ``naap_site/celery.py`` runs it hourly)."""
    from telemetry.storage import maintain_storage

    report = maintain_storage()
    return {"mode": report.mode, "created_days": report.created_days, "dropped": report.dropped}
