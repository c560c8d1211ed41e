"""Storage upkeep for the time tables: partitions ahead of time and retention.

On plain PostgreSQL this creates the coming days' partitions and drops whole days past retention. On
TimescaleDB the extension's own jobs do the work (chunks are created on insert, compression policies come
with the migrations); here only the retention policy is kept in step with ``NAAP_RAW_RETENTION_DAYS``
(added, changed, or removed when it is 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from naap_site.timeseries import (
    apply_retention_policy,
    drop_partitions_before,
    ensure_partitions,
    storage_mode,
)
from telemetry.tables import ALL_TABLES


@dataclass
class StorageReport:
    mode: str
    created_days: int = 0
    dropped: list[str] = field(default_factory=list)
    retention_policies: dict[str, str] = field(default_factory=dict)  # TimescaleDB: table -> what was done


def maintain_storage(now: datetime | None = None) -> StorageReport:
    moment = now or datetime.now(tz=UTC)
    mode = storage_mode()
    report = StorageReport(mode=mode)
    if mode == "timescale":
        with connection.cursor() as cursor:
            for table in ALL_TABLES:
                report.retention_policies[table.name] = apply_retention_policy(
                    cursor, table.name, settings.NAAP_RAW_RETENTION_DAYS
                )
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
