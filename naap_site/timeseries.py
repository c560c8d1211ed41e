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
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.operations.base import Operation
from psycopg import sql
from psycopg.pq import TransactionStatus

PARTITION_DAYS = 1
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_S = 86400


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
        # Every time table is compressed once its chunks are older than ``compress_after``: segmented by
        # ``compress_segment_by`` where given (else none, explicitly), newest rows first within a segment.
        statements.append(
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {}, "
                "timescaledb.compress_orderby = {})"
            ).format(
                name,
                sql.Literal(table.compress_segment_by or ""),
                sql.Literal(f"{table.time_column} DESC"),
            )
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
    statements.extend(index_statements(table))
    return statements


def index_statements(table: TimeTable) -> list[sql.Composable]:
    """``CREATE INDEX IF NOT EXISTS`` for each of ``table.indexes`` (idempotent, so a migration can add new
    ones to existing databases; on TimescaleDB the hypertable's own ``<table>_<time column>_idx`` counts)."""
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"{table.name}_{'_'.join(index_cols)}_idx"[:63]),
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.Identifier(c) for c in index_cols),
        )
        for index_cols in table.indexes
    ]


class DatabaseOnlyOperation(Operation):
    """A migration operation that changes the database only: Django's model state is untouched."""

    reversible = True
    reduces_to_sql = False

    def state_forwards(self, app_label: str, state: Any) -> None:
        return None


class CreateTimeTableIndexes(DatabaseOnlyOperation):
    """Create the indexes of time tables that are missing (for indexes added to a definition later)."""

    def __init__(self, tables: tuple[TimeTable, ...]) -> None:
        self.tables = tables

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        with schema_editor.connection.cursor() as cursor:
            for table in self.tables:
                for statement in index_statements(table):
                    cursor.execute(statement)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        return None  # the indexes belong to the table definitions (fresh databases get them at creation)

    def describe(self) -> str:
        return "Create missing indexes of " + ", ".join(t.name for t in self.tables)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [self.tables], {})


class CreateTimeTable(DatabaseOnlyOperation):
    def __init__(self, table: TimeTable) -> None:
        self.table = table

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
    # Whole UTC days since the Unix epoch: one float division per row (batches have thousands).
    days = {_UNIX_EPOCH + timedelta(days=n) for n in {int(m.timestamp() // _DAY_S) for m in moments}}
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
        # Remember it only once it is committed: a rolled-back batch takes its new partition with it.
        transaction.on_commit(partial(_remember, (db, table, part)))


def _remember(key: tuple[str, str, str]) -> None:
    with _known_lock:
        _known.add(key)


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


RETENTION_POLICY_SQL = """
SELECT job_id, (config->>'drop_after')::interval = make_interval(days => %s)
FROM timescaledb_information.jobs
WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() AND hypertable_name = %s
"""


def apply_retention_policy(cursor: Any, table: str, days: int) -> str:
    """Retention on TimescaleDB: a policy job drops chunks older than ``days`` (none when ``days`` is 0).

    Returns what was done: ``added``, ``replaced``, ``removed``, ``kept`` or ``none``.
    """
    cursor.execute(RETENTION_POLICY_SQL, [max(days, 0), table])
    row = cursor.fetchone()
    if days <= 0:
        if row is None:
            return "none"
        cursor.execute("SELECT remove_retention_policy(%s)", [table])
        return "removed"
    if row is not None and row[1]:
        return "kept"
    if row is not None:
        cursor.execute("SELECT remove_retention_policy(%s)", [table])
    cursor.execute("SELECT add_retention_policy(%s, drop_after => make_interval(days => %s))", [table, days])
    return "added" if row is None else "replaced"


# --- Rollups ----------------------------------------------------------------------------------------------
# One SELECT defines each rollup. A base rollup (no parent) is a table filled from derived rows by
# delete+insert over the buckets of a time range, in both modes (a hypertable on TimescaleDB). A derived
# rollup merges its parent: on TimescaleDB a hierarchical continuous aggregate with a refresh policy, on plain
# PostgreSQL a table refreshed the same delete+insert way. Templates use {bucket}, {source} and {where}.
#
# The continuous aggregates use real-time aggregation: buckets at or after the watermark (the end of what has
# been materialized) are computed from the finer level at query time, so they are current before any refresh.
# Buckets below the watermark are only corrected by a refresh, which TimescaleDB cannot run inside a
# transaction. Refreshing rollups (delete+insert, continuous-aggregate refresh) is sla's business:
# ``sla.refresh.refresh_rollup``; this module only defines and creates them.

_BUCKET_ORIGIN = "2000-01-01 00:00:00+00"


@dataclass(frozen=True)
class Rollup:
    name: str
    columns: tuple[tuple[str, str], ...]  # value columns (name, SQL type)
    keys: tuple[str, ...]  # dimension columns (text)
    width: str  # bucket width as an SQL interval, e.g. "5 minutes"
    select: str  # the defining SELECT
    parent: str | None = None
    policy_start: str = "3 days"  # TimescaleDB refresh window (late data within it is picked up)
    policy_schedule: str = "1 minute"
    # Named relations a base SELECT reads ({name} placeholders → table names, substituted as identifiers).
    relations: tuple[tuple[str, str], ...] = ()

    def column_names(self) -> list[str]:
        return ["bucket", *self.keys, *(n for n, _ in self.columns)]


def rollup_bucket(width: str, mode: str) -> sql.Composable:
    if mode == "timescale":
        return sql.SQL("time_bucket(INTERVAL {}, bucket)").format(sql.Literal(width))
    return sql.SQL("date_bin(INTERVAL {}, bucket, TIMESTAMPTZ {})").format(
        sql.Literal(width), sql.Literal(_BUCKET_ORIGIN)
    )


def rollup_select(rollup: Rollup, mode: str, *, ranged: bool) -> sql.Composable:
    """The defining SELECT; ``ranged`` adds the parameters %(start)s/%(end)s on the parent's buckets."""
    if rollup.parent is None:
        return sql.SQL(rollup.select).format(**{k: sql.Identifier(v) for k, v in rollup.relations})
    where = sql.SQL("WHERE bucket >= %(start)s AND bucket < %(end)s") if ranged else sql.SQL("")
    return sql.SQL(rollup.select).format(
        bucket=rollup_bucket(rollup.width, mode), source=sql.Identifier(rollup.parent), where=where
    )


def rollup_create_statements(rollup: Rollup, mode: str) -> list[sql.Composable]:
    name = sql.Identifier(rollup.name)
    keys = sql.SQL(", ").join(sql.Identifier(k) for k in rollup.keys)
    if mode == "timescale" and rollup.parent is not None:
        return [
            sql.SQL(
                "CREATE MATERIALIZED VIEW {} WITH (timescaledb.continuous, timescaledb.materialized_only = false)"
                " AS {} WITH NO DATA"
            ).format(name, rollup_select(rollup, mode, ranged=False)),
            sql.SQL(
                "SELECT add_continuous_aggregate_policy({}, start_offset => INTERVAL {}, "
                "end_offset => INTERVAL {}, schedule_interval => INTERVAL {})"
            ).format(
                sql.Literal(rollup.name),
                sql.Literal(rollup.policy_start),
                sql.Literal(rollup.width),
                sql.Literal(rollup.policy_schedule),
            ),
            sql.SQL("CREATE INDEX {} ON {} ({}, bucket)").format(
                sql.Identifier(f"{rollup.name}_keys_idx"), name, keys
            ),
        ]
    cols = sql.SQL(", ").join(
        [
            sql.SQL("bucket timestamptz NOT NULL"),
            *(sql.SQL("{} text NOT NULL").format(sql.Identifier(k)) for k in rollup.keys),
            *(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in rollup.columns),
        ]
    )
    statements: list[sql.Composable] = [
        sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}, bucket))").format(name, cols, keys),
        sql.SQL("CREATE INDEX {} ON {} (bucket)").format(sql.Identifier(f"{rollup.name}_bucket_idx"), name),
    ]
    if mode == "timescale":
        statements.append(
            sql.SQL(
                "SELECT create_hypertable({}, 'bucket', chunk_time_interval => INTERVAL '7 days')"
            ).format(sql.Literal(rollup.name))
        )
    return statements


def rollup_drop_statement(rollup: Rollup, mode: str) -> sql.Composable:
    kind = "MATERIALIZED VIEW" if mode == "timescale" and rollup.parent is not None else "TABLE"
    return sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(kind), sql.Identifier(rollup.name))


def is_continuous_aggregate(rollup: Rollup, mode: str) -> bool:
    return mode == "timescale" and rollup.parent is not None


def in_transaction(cursor: Any) -> bool:
    """Whether the cursor's connection is inside an open transaction block (e.g. Django's ``atomic``)."""
    return bool(cursor.connection.info.transaction_status != TransactionStatus.IDLE)


class CreateRollups(DatabaseOnlyOperation):
    """Create rollups in the form the database supports (see :func:`rollup_create_statements`)."""

    def __init__(self, rollups: tuple[Rollup, ...]) -> None:
        self.rollups = rollups

    def database_forwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        with schema_editor.connection.cursor() as cursor:
            mode = _choose_mode(cursor)
            for rollup in self.rollups:
                for statement in rollup_create_statements(rollup, mode):
                    cursor.execute(statement)

    def database_backwards(
        self, app_label: str, schema_editor: BaseDatabaseSchemaEditor, from_state: Any, to_state: Any
    ) -> None:
        with schema_editor.connection.cursor() as cursor:
            mode = _choose_mode(cursor)
            for rollup in reversed(self.rollups):
                cursor.execute(rollup_drop_statement(rollup, mode))

    def describe(self) -> str:
        return "Create rollups " + ", ".join(r.name for r in self.rollups)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__name__, [self.rollups], {})
