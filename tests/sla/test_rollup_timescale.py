"""The TimescaleDB form of the rollups: hypertables and hierarchical continuous aggregates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from naap_site.timeseries import rollup_create_statements, storage_mode
from sla.refresh import refresh
from sla.rollup_defs import ROLLUPS
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import SegSpec, make_session, mark_dirty

pytestmark = pytest.mark.django_db


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
    assert "create_hypertable('sla_perf_1m'" in base


@pytest.mark.timescale
@pytest.mark.django_db(transaction=True)
def test_continuous_aggregates_match_the_plain_tables(clean_time_tables: None) -> None:
    if storage_mode() != "timescale":
        pytest.skip("timescaledb extension not available")
    make_session("s1", segments=(SegSpec(fps={0: [20, 21, 19]}),))
    mark_dirty(ANCHOR, ANCHOR + timedelta(minutes=2))
    refresh(ANCHOR + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("SELECT samples, fps_sum FROM sla_perf_1d")
        assert cursor.fetchall() == [(3, 60.0)]
