"""Network demand totals per hour and over a span: exact fees, capacity rate of sums, region × workflow."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from sla.queries import (
    DemandBucketTotals,
    DemandHeatmap,
    DemandRow,
    Filters,
    demand_totals,
    fold_demand_totals,
)
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import (
    ORCH_A,
    ORCH_B,
    PIPE,
    SegSpec,
    capability,
    make_session,
    mark_dirty,
    payment,
)

HOUR = timedelta(hours=1)
OTHER = "other-wf"
A100 = "NVIDIA A100"
RTX = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def demand() -> None:
    """Hour 0: stream s1 on A in eu (30 s + 60 s of output), s2 refused for lack of capacity, A advertising
    4 slots for 5 minutes (20 slot-minutes), 0.0024 ETH paid on r1. Hour 1: stream s3 on B in us-east on
    another workflow and an A100 (30 s of output), 1 ETH + 1 wei paid on r3."""
    from sla.refresh import refresh

    make_session(
        "s1",
        segments=(
            SegSpec(orchestrator=ORCH_A, fps={0: [20] * 3, 1: [20] * 3}, output_seconds={0: 30.0, 1: 60.0}),
        ),
    )
    make_session(
        "s2", "r2", request_at=ANCHOR + timedelta(minutes=10), outcome="no_orchestrator", segments=()
    )
    make_session(
        "s3",
        "r3",
        request_at=ANCHOR + timedelta(minutes=70),
        pipeline=OTHER,
        segments=(SegSpec(orchestrator=ORCH_B, region="us-east", gpu_type=A100, fps={0: [20] * 3}),),
    )
    payment(ANCHOR + timedelta(minutes=1), "r1", "2400000000000000")
    payment(ANCHOR + timedelta(minutes=71), "r3", "1000000000000000001")
    capability(ANCHOR, ORCH_A, 4)
    mark_dirty(ANCHOR - HOUR, ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 4 * HOUR)


@pytest.mark.django_db
def test_demand_totals_sum_each_hour_and_the_span_with_exact_fees(demand: None) -> None:
    t = demand_totals(Filters(), "1h", ANCHOR, ANCHOR + 2 * HOUR)
    assert t.buckets == (
        DemandBucketTotals(
            bucket=ANCHOR,
            streams=2,
            inference_minutes=pytest.approx(1.5),
            capacity_minutes=pytest.approx(20.0),
            capacity_rate=pytest.approx(1.5 / 20.0),
            missing_capacity=1,
            fees_wei=2_400_000_000_000_000,
            fees_eth="0.0024",
            active_orchestrators=1,
        ),
        DemandBucketTotals(
            bucket=ANCHOR + HOUR,
            streams=1,
            inference_minutes=pytest.approx(0.5),
            capacity_minutes=0.0,
            capacity_rate=None,  # nothing advertised in this hour
            missing_capacity=0,
            fees_wei=1_000_000_000_000_000_001,
            fees_eth="1.000000000000000001",
            active_orchestrators=1,
        ),
    )
    assert (t.streams, t.missing_capacity, t.active_orchestrators) == (3, 1, 2)
    assert t.inference_minutes == pytest.approx(2.0)
    # exact to the wei (float(wei) / 1e18 would have shown 1.0024)
    assert (t.fees_wei, t.fees_eth) == (1_002_400_000_000_000_001, "1.002400000000000001")


@pytest.mark.django_db
def test_demand_totals_lay_inference_minutes_out_by_region_and_workflow(demand: None) -> None:
    t = demand_totals(Filters(), "1h", ANCHOR, ANCHOR + 2 * HOUR)
    assert t.heatmap == DemandHeatmap(
        regions=("", "eu", "us-east"),  # "" is s2's unknown region: it never reached an orchestrator
        workflows=(OTHER, PIPE),
        inference_minutes=((None, 0.0), (None, pytest.approx(1.5)), (pytest.approx(0.5), None)),
    )
    assert t.gpu_minutes == ((RTX, pytest.approx(1.5)), (A100, pytest.approx(0.5)))


@pytest.mark.django_db
def test_demand_totals_of_a_span_without_demand_are_zero() -> None:
    t = demand_totals(Filters(), "1h", ANCHOR, ANCHOR + HOUR)
    assert (t.buckets, t.heatmap, t.gpu_minutes) == ((), DemandHeatmap((), (), ()), ())
    assert (t.streams, t.inference_minutes, t.fees_wei, t.fees_eth, t.active_orchestrators) == (
        0,
        0,
        0,
        "0",
        0,
    )


def _row(region: str, minutes: float, capacity: float, orchestrators: tuple[str, ...]) -> DemandRow:
    return DemandRow(
        bucket=ANCHOR,
        pipeline=PIPE,
        region=region,
        streams=1,
        sessions=1,
        failed_sessions=0,
        missing_capacity=0,
        inference_minutes=minutes,
        inference_minutes_by_gpu_type={RTX: minutes} if minutes else {},
        capacity_minutes=capacity,
        capacity_rate=minutes / capacity,
        fees_wei=Decimal(10**30 + 1),
        orchestrators=orchestrators,
    )


def test_an_hours_capacity_rate_is_the_ratio_of_its_sums_not_a_mean_of_ratios() -> None:
    # eu: 1 of 2 slot-minutes used (0.5); us: 9 of 30 (0.3); the hour: 10 of 32, not (0.5 + 0.3) / 2.
    t = fold_demand_totals([_row("eu", 1.0, 2.0, (ORCH_A,)), _row("us", 9.0, 30.0, (ORCH_A, ORCH_B))])
    [hour] = t.buckets
    assert hour.capacity_rate == pytest.approx(10.0 / 32.0)
    assert hour.active_orchestrators == 2
    # Two fees of 10^12 ETH + 1 wei each, kept to the wei.
    assert (hour.fees_wei, hour.fees_eth) == (2 * 10**30 + 2, "2000000000000.000000000000000002")
    assert t.gpu_minutes == ((RTX, 10.0),)
