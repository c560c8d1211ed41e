"""Storage upkeep for the time tables: partitions ahead of time and retention (plain PostgreSQL path).

On TimescaleDB the same work is done by the extension's own jobs (chunk creation, compression and retention
policies added by the migrations); these functions then do nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from naap_site.timeseries import drop_partitions_before, ensure_partitions, storage_mode
from telemetry.tables import ALL_TABLES


@dataclass
class StorageReport:
    mode: str
    created_days: int = 0
    dropped: list[str] = field(default_factory=list)


def maintain_storage(now: datetime | None = None) -> StorageReport:
    moment = now or datetime.now(tz=UTC)
    mode = storage_mode()
    report = StorageReport(mode=mode)
    if mode == "timescale":
        return report
    ahead = [moment + timedelta(days=d) for d in range(settings.NAAP_PARTITION_DAYS_AHEAD + 1)]
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ALL_TABLES:
            ensure_partitions(cursor.cursor, table.name, ahead)
    report.created_days = len(ahead)
    retention_days = settings.NAAP_RAW_RETENTION_DAYS
    if retention_days > 0:
        cutoff = moment - timedelta(days=retention_days)
        for table in ALL_TABLES:
            report.dropped.extend(drop_partitions_before(table.name, cutoff))
    return report
