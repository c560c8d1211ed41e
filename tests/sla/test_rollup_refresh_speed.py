"""The refresh does little work for little change (issue 4 §5c), and the faster histogram merge adds the
same cells as the plain element-wise sum."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from sla.refresh import aligned, refresh
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import ingest_sample, make_session

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)
ZEROS = [0] * 150


def _hist(cells: dict[int, int]) -> list[int]:
    out = list(ZEROS)
    for index, count in cells.items():
        out[index] = count
    return out


def test_the_histogram_merge_adds_cell_by_cell_like_the_plain_sum() -> None:
    rows = [
        _hist({0: 1}),
        list(ZEROS),
        _hist({3: 2, 149: 7}),
        [i % 5 for i in range(150)],
        list(ZEROS),
        _hist({3: 1, 80: 4}),
    ]
    expected = [sum(column) for column in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sla_hist_merge(h) FROM (SELECT %s::integer[] AS h UNION ALL SELECT %s UNION ALL SELECT %s"
            " UNION ALL SELECT %s UNION ALL SELECT %s UNION ALL SELECT %s) t",
            rows,
        )
        assert cursor.fetchone()[0] == expected
        cursor.execute(
            "SELECT sla_hist_add(%s::integer[], NULL), sla_hist_add(NULL, %s::integer[])", [rows[2], rows[3]]
        )
        assert cursor.fetchone() == (rows[2], rows[3])
        cursor.execute(
            "SELECT sla_hist_add(NULL, NULL), sla_hist_add(%s::integer[], %s::integer[])", [rows[1], rows[0]]
        )
        assert cursor.fetchone() == (ZEROS, rows[0])
        cursor.execute("SELECT sla_hist_merge(h) FROM (SELECT NULL::integer[] AS h WHERE false) t")
        assert cursor.fetchone()[0] == ZEROS


def test_nearby_ranges_are_refreshed_as_one_and_distant_ones_apart() -> None:
    near = [
        (ANCHOR + timedelta(seconds=10), ANCHOR + timedelta(seconds=50)),
        (ANCHOR + 7 * MINUTE, ANCHOR + 8 * MINUTE),
    ]
    assert aligned(near, MINUTE, 10) == [(ANCHOR, ANCHOR + 8 * MINUTE)]
    assert aligned(near, MINUTE) == [(ANCHOR, ANCHOR + MINUTE), (ANCHOR + 7 * MINUTE, ANCHOR + 8 * MINUTE)]
    far = [(ANCHOR, ANCHOR + MINUTE), (ANCHOR + timedelta(hours=2), ANCHOR + timedelta(hours=2) + MINUTE)]
    assert aligned(far, MINUTE, 10) == far


def test_an_hours_late_fact_refreshes_its_own_minutes_not_the_hours_in_between() -> None:
    make_session("s1", request_at=ANCHOR, duration_s=60.0)
    make_session("s2", request_at=ANCHOR + timedelta(hours=3), duration_s=60.0)
    first = refresh(ANCHOR + timedelta(hours=4))
    assert first.ranges
    received = ANCHOR + timedelta(hours=5)
    late = ANCHOR + timedelta(seconds=20)
    current = ANCHOR + timedelta(hours=3, seconds=30)
    ingest_sample("s1", "r1", late, 1000, 2000, received_at=received)
    ingest_sample("s2", "r1", current, 1000, 2000, received_at=received)

    summary = refresh(received + MINUTE)

    assert summary.ranges == (
        (ANCHOR, ANCHOR + MINUTE),
        (ANCHOR + timedelta(hours=3), ANCHOR + timedelta(hours=3) + MINUTE),
    )
    counts = summary.buckets_refreshed
    assert counts["sla_perf_1m"] == 2  # not the 181 minutes between the two
    assert counts["sla_net_1m"] == 2 * 11  # each minute with the 5-minute counter margin on both sides
    assert counts["sla_perf_1h"] == 2
    assert refresh(received + 2 * MINUTE).ranges == summary.ranges  # re-read overlap of 30 s, same minutes
