"""Time tables that are TimescaleDB hypertables where the extension exists and native range-partitioned
tables where it does not. One definition serves both; the chosen mode is recorded in ``naap_storage_mode``.

Migrations call :class:`CreateTimeTable`; the ingest path calls :func:`ensure_partitions` before writing
rows of a day it has not seen (a no-op on TimescaleDB, which creates chunks itself).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from psycopg import sql

PARTITION_DAYS = 1
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimeTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type incl. constraints)
    time_column: str
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    compress_segment_by: str | None = None
    compress_after: str = "7 days"

    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]


def timescale_available(cursor: Any) -> bool:
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if cursor.fetchone() is None:
        return False
    cursor.execute("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'")
    row = cursor.fetchone()
    return bool(row and "timescaledb" in row[0])


def storage_mode() -> str:
    """'timescale' or 'plain', as chosen by the first migration on this database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('naap_storage_mode')")
        if cursor.fetchone()[0] is None:
            return "plain"
        cursor.execute("SELECT mode FROM naap_storage_mode")
        row = cursor.fetchone()
        return row[0] if row else "plain"


def _choose_mode(cursor: Any) -> str:
    cursor.execute("CREATE TABLE IF NOT EXISTS naap_storage_mode (mode text NOT NULL)")
    cursor.execute("SELECT mode FROM naap_storage_mode")
    row = cursor.fetchone()
    if row:
        return str(row[0])
    mode = "timescale" if timescale_available(cursor) else "plain"
    if mode == "timescale":
        cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    cursor.execute("INSERT INTO naap_storage_mode (mode) VALUES (%s)", [mode])
    return mode


def create_statements(table: TimeTable, mode: str) -> list[sql.Composable]:
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in table.columns
    )
    pk = sql.SQL(", ").join(sql.Identifier(c) for c in table.primary_key)
    name = sql.Identifier(table.name)
    statements: list[sql.Composable] = []
    if mode == "timescale":
        statements.append(sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(name, cols, pk))
        statements.append(
            sql.SQL("SELECT create_hypertable({}, {}, chunk_time_interval => INTERVAL '1 day')").format(
                sql.Literal(table.name), sql.Literal(table.time_column)
            )
        )
        if table.compress_segment_by:
            statements.append(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {})"
                ).format(name, sql.Literal(table.compress_segment_by))
            )
            statements.append(
                sql.SQL("SELECT add_compression_policy({}, INTERVAL {})").format(
                    sql.Literal(table.name), sql.Literal(table.compress_after)
                )
            )
    else:
        statements.append(
            sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({})) PARTITION BY RANGE ({})").format(
                name, cols, pk, sql.Identifier(table.time_column)
            )
        )
    for index_cols in table.indexes:
        index_name = sql.Identifier(f"{table.name}_{'_'.join(index_cols)}_idx"[:63])
        statements.append(
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                index_name, name, sql.SQL(", ").join(sql.Identifier(c) for c in index_cols)
            )
        )
    return statements


class CreateTimeTable(Operation):
    reversible = True
    reduces_to_sql = False

    def __init__(self, table: TimeTable) -> None:
        self.table = table

    def state_forwards(self, app_label: str, state: Any) -> None:
        return None

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        with schema_editor.connection.cursor() as cursor:
            mode = _choose_mode(cursor)
            for statement in create_statements(self.table, mode):
                cursor.execute(statement)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(self.table.name)))

    def describe(self) -> str:
        return f"Create time table {self.table.name}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [self.table], {})


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def partition_name(table: str, day: datetime) -> str:
    return f"{table}_p{day:%Y%m%d}"


_known: set[tuple[str, str, str]] = set()
_known_lock = threading.Lock()


def ensure_partitions(cursor: Any, table: str, moments: Iterable[datetime]) -> None:
    """Create the daily partitions that rows at ``moments`` need (plain mode only; idempotent)."""
    days = {day_start(m) for m in moments}
    db = str(cursor.connection.info.dbname) if hasattr(cursor, "connection") else ""
    wanted = [d for d in days if (db, table, partition_name(table, d)) not in _known]
    if not wanted:
        return
    cursor.execute("SELECT to_regclass('naap_storage_mode')")
    if cursor.fetchone()[0] is not None:
        cursor.execute("SELECT mode FROM naap_storage_mode")
        row = cursor.fetchone()
        if row and row[0] == "timescale":
            with _known_lock:
                _known.update((db, table, partition_name(table, d)) for d in wanted)
            return
    for day in sorted(wanted):
        part = partition_name(table, day)
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [part])
        cursor.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(part),
                sql.Identifier(table),
                sql.Literal(day.isoformat()),
                sql.Literal((day + timedelta(days=PARTITION_DAYS)).isoformat()),
            )
        )
        with _known_lock:
            _known.add((db, table, part))


def forget_partitions() -> None:
    """Tests that drop and recreate databases call this so the cache does not lie."""
    with _known_lock:
        _known.clear()


def drop_partitions_before(table: str, cutoff: datetime) -> list[str]:
    """Retention on the plain path: drop whole daily partitions that end before ``cutoff``."""
    dropped: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
            [table],
        )
        for (relname,) in cursor.fetchall():
            stamp = relname.rsplit("_p", 1)[-1]
            try:
                day = datetime.strptime(stamp, "%Y%m%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            if day + timedelta(days=PARTITION_DAYS) <= cutoff:
                cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(relname)))
                dropped.append(relname)
    forget_partitions()
    return dropped
