"""The TimescaleDB form of the rollups: base hypertables and hierarchical continuous aggregates.

Run against a PostgreSQL server whose shared_preload_libraries has timescaledb, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5433/naap pytest -m timescale``; elsewhere (as in CI) the tests
that need the extension skip. Expected values are aggregated in Python from the base rows, exactly as the plain-path
equivalence tests do, so both paths are held to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from naap_site.timeseries import (
    is_continuous_aggregate,
    rollup_create_statements,
    storage_mode,
)
from sla.refresh import DEFERRED_KIND, RefreshInTransactionError, refresh, refresh_ranges
from sla.rollup_defs import DEMAND, FAMILIES, NET, PERF, REL, ROLLUPS, Family
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import SegSpec, ingest_sample, make_session, mark_dirty
from tests.sla.test_rollup_equivalence import (
    MERGE,
    NEXT_DAY,
    assert_same,
    group,
    net_base,
    perf_base,
    rel_base,
    scenario,
    table,
)
from tests.timescale_support import SKIP_REASON, needs_timescale

pytestmark = pytest.mark.django_db
BASES: list[tuple[Family, Callable[[], Any]]] = [(PERF, perf_base), (REL, rel_base), (NET, net_base)]


def require_timescale() -> None:
    if storage_mode() != "timescale":
        pytest.skip(SKIP_REASON)


@pytest.fixture
def timescale_rollups(clean_time_tables: None) -> Iterator[None]:
    """Transactional: rollups really materialize. Empties every rollup before and after."""
    require_timescale()
    _empty_rollups()
    yield
    _empty_rollups()


def _empty_rollups() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join([*ROLLUPS, "sla_refresh_state", "sla_dirty_range"]))


def materialized(name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rows TimescaleDB stored for a continuous aggregate (its materialization hypertable only)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_name = %s",
            [name],
        )
        (relation,) = cursor.fetchone()
        cursor.execute(f"SELECT * FROM {relation}")
        cols = [c.name for c in cursor.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]
    keys = next(f for f in FAMILIES if name.startswith(f"sla_{f.name}_")).keys
    return {(r["bucket"], *(r[k] for k in keys)): r for r in rows}


def stored(name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return materialized(name) if is_continuous_aggregate(ROLLUPS[name], "timescale") else table(name)


def test_timescale_statements_build_continuous_aggregates_on_the_finer_level() -> None:
    with connection.cursor() as cursor:
        text = " ".join(
            s.as_string(cursor.connection)
            for s in rollup_create_statements(ROLLUPS["sla_perf_1h"], "timescale")
        )
        base = " ".join(
            s.as_string(cursor.connection)
            for s in rollup_create_statements(ROLLUPS["sla_perf_1m"], "timescale")
        )
    assert "timescaledb.continuous" in text and "time_bucket(INTERVAL '1 hour', bucket)" in text
    assert '"sla_perf_5m"' in text and "add_continuous_aggregate_policy" in text
    assert "create_hypertable('sla_perf_1m'" in base and "continuous" not in base


@needs_timescale
def test_base_levels_are_hypertables_and_coarser_levels_continuous_aggregates_with_policies() -> None:
    require_timescale()
    with connection.cursor() as cursor:
        cursor.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        hypertables = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT view_name, materialized_only, split_part(view_definition, 'FROM', 2)"
            " FROM timescaledb_information.continuous_aggregates"
        )
        caggs = {name: (only, source) for name, only, source in cursor.fetchall()}
        cursor.execute(
            "SELECT hypertable_name, schedule_interval FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        )
        policies = cursor.fetchall()
    for family in FAMILIES:
        base, *coarser = family.levels
        assert family.table(base) in hypertables
        assert family.table(base) not in caggs
        finer = family.table(base)
        for level in coarser:
            only, source = caggs[family.table(level)]
            assert only is False  # real-time aggregation above the watermark
            assert finer in source  # hierarchical: built on the next finer level
            finer = family.table(level)
    assert len(caggs) == sum(len(f.levels) - 1 for f in FAMILIES) == 10
    assert {p[0] for p in policies} == set(caggs) and len(policies) == len(caggs)
    assert {p[1] for p in policies} == {timedelta(minutes=1), timedelta(minutes=5), timedelta(hours=1)}


@needs_timescale
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("family", "base"), BASES, ids=["perf", "rel", "net"])
def test_materialized_levels_equal_the_direct_aggregation_over_base_rows(
    timescale_rollups: None, family: Family, base: Callable[[], Any]
) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    expected_rows = base()
    for level in family.levels:
        assert_same(group(expected_rows, level, MERGE), stored(family.table(level)))
        assert_same(group(expected_rows, level, MERGE), table(family.table(level)))


@needs_timescale
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_materialized_demand_day_equals_the_sum_of_its_hours(timescale_rollups: None) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    hours = table(DEMAND.table("1h"))
    assert {key[0].date() for key in hours} == {ANCHOR.date()}
    day = materialized(DEMAND.table("1d"))
    dims = ("bucket", *DEMAND.keys)
    expected = group(
        ((k[0], k[1:], {c: v for c, v in row.items() if c not in dims}) for k, row in hours.items()),
        "1d",
        MERGE,
    )
    assert_same(expected, day)
    assert sum(v["sessions"] for v in day.values()) == 6


@needs_timescale
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_late_data_below_the_watermark_is_materialized_by_the_explicit_refresh(
    timescale_rollups: None,
) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    before = materialized(PERF.table("1d"))
    late = ANCHOR + timedelta(minutes=4, seconds=30)
    make_session("late", request_at=late, segments=(SegSpec(p2ff_ms=7000.0, fps={0: [10, 12, 14]}),))
    ingest_sample("late", "r1", late, 0, 0, received_at=ANCHOR + timedelta(hours=3))
    ingest_sample(
        "late", "r1", late + timedelta(seconds=10), 8000, 16000, received_at=ANCHOR + timedelta(hours=3)
    )
    mark_dirty(late.replace(second=0), late.replace(second=0) + timedelta(minutes=1))
    refresh(ANCHOR + timedelta(days=1, hours=3))
    for family, base in BASES:
        expected_rows = base()
        for level in family.levels:
            assert_same(group(expected_rows, level, MERGE), stored(family.table(level)))
    after = materialized(PERF.table("1d"))
    day_key = next(k for k in after if k[0] == ANCHOR.replace(hour=0))
    assert after[day_key]["samples"] == before[day_key]["samples"] + 3
    assert after[day_key]["fps_sum"] == pytest.approx(before[day_key]["fps_sum"] + 36.0)


@needs_timescale
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_refresh_inside_a_transaction_refuses_to_leave_materialized_buckets_stale(
    timescale_rollups: None,
) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    with pytest.raises(RefreshInTransactionError, match="sla_perf_5m"), transaction.atomic():
        refresh_ranges([(ANCHOR, ANCHOR + timedelta(minutes=1))], families=(PERF,))


@needs_timescale
def test_a_refresh_inside_a_transaction_leaves_new_buckets_to_real_time_aggregation() -> None:
    require_timescale()
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    for family, base in BASES:
        expected_rows = base()
        for level in family.levels:
            assert_same(group(expected_rows, level, MERGE), table(family.table(level)))
    assert materialized(PERF.table("5m")) == {}
    with connection.cursor() as cursor:
        cursor.execute('SELECT min(start), max("end") FROM sla_dirty_range WHERE kind = %s', [DEFERRED_KIND])
        low, high = cursor.fetchone()
    assert low <= ANCHOR and high >= NEXT_DAY + timedelta(minutes=3)  # queued for the next refresh
