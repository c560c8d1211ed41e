"""Scenario tests: each published metric read through sla.rollups, against hand-computed values."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from sla.refresh import refresh
from sla.rollups import (
    Filters,
    demand_series,
    network_series,
    orchestrator_summary,
    perf_series,
    reliability_series,
)
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import (
    ORCH_A,
    ORCH_B,
    PIPE,
    SegSpec,
    capability,
    ingest_sample,
    make_session,
    mark_dirty,
    payment,
)

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
A = Filters(orchestrator=ORCH_A)


def refreshed() -> None:
    mark_dirty(ANCHOR - HOUR, ANCHOR + 2 * HOUR)
    refresh(ANCHOR + 3 * HOUR)


def test_fps_jitter_and_restart_rate_of_one_orchestrator() -> None:
    # minute 0: 18, 20, 22 → jitter √(8/3)/20; minute 1: 20, 20, 20, 20 → jitter 0; minute 2: 2 samples → none
    make_session(
        "s1",
        segments=(
            SegSpec(
                fps={0: [18, 20, 22], 1: [20, 20, 20, 20], 2: [10, 30]},
                output_seconds={0: 60.0, 1: 60.0, 2: 60.0},
                restarts={2: 1},
            ),
        ),
    )
    refreshed()
    [p] = perf_series(A, "1h", ANCHOR, ANCHOR + HOUR)
    assert p.samples == 9
    assert p.output_fps == pytest.approx(180 / 9)
    assert p.input_fps == pytest.approx(30.0)
    assert p.jitter_samples == 2
    assert p.jitter_mean == pytest.approx(math.sqrt(8 / 3) / 20 / 2)
    assert p.jitter_p95 == pytest.approx(math.sqrt(8 / 3) / 20, rel=0.05)
    assert (p.output_fps_min, p.output_fps_max) == (10.0, 30.0)
    assert p.restart_rate_per_hour == pytest.approx(1 / (180 / 3600))
    assert p.cue is None  # not grouped by pipeline/GPU
    [g] = perf_series(A, "5m", ANCHOR, ANCHOR + HOUR, group_by=("pipeline", "gpu_type"))
    assert g.cue is not None and g.cue.confidence == "low"
    assert g.cue.value_pct == pytest.approx(100 * 20 * 6.5e12 / 165.2e12)


def test_latency_percentiles_mean_and_count() -> None:
    p2ffs = [float(v) for v in range(1000, 3000, 100)]  # 20 sessions: 1000 … 2900 ms
    for i, v in enumerate(p2ffs):
        make_session(f"s{i}", request_at=ANCHOR + timedelta(seconds=30 * i), segments=(SegSpec(p2ff_ms=v),))
    refreshed()
    [r] = reliability_series(A, "1h", ANCHOR, ANCHOR + HOUR)
    assert r.p2ff_ms.count == 20 and r.p2ff_ms.mean == pytest.approx(sum(p2ffs) / 20)
    for q, exact in ((0.5, 1900.0), (0.95, 2800.0), (0.99, 2900.0)):  # nearest rank
        got = {0.5: r.p2ff_ms.p50, 0.95: r.p2ff_ms.p95, 0.99: r.p2ff_ms.p99}[q]
        assert got is not None and abs(got - exact) / exact <= 0.05
    assert r.startup_ms.mean == pytest.approx(300.0) and r.e2e_ms.count == 20


def test_success_ratios_failures_and_swaps_with_their_counts() -> None:
    ok = SegSpec()
    make_session("a", segments=(ok,))
    make_session("b", segments=(ok,))
    make_session("c", segments=(SegSpec(ended_cleanly=False, error_class="orchestrator"),), outcome="failed")
    make_session(
        "d",
        segments=(SegSpec(started=False, ended_cleanly=False, error_class="network", p2ff_ms=None),),
        outcome="startup_failed",
    )
    make_session(
        "e", segments=(SegSpec(ended_cleanly=False, error_class="client"),)
    )  # user left: not a failure
    # stream f: A swapped away (model error), B served the rest: the swap is A's
    make_session(
        "f",
        segments=(
            SegSpec(swapped_away=True, swap_reason="model_error", ended_cleanly=False),
            SegSpec(orchestrator=ORCH_B, offset_s=30),
        ),
    )
    refreshed()
    [r] = reliability_series(A, "1h", ANCHOR, ANCHOR + HOUR)
    assert r.ended == 6
    assert (r.startup_success.numerator, r.startup_success.denominator) == (5, 6)
    # started: a, b, c, e, f → c had an orchestrator-side fatal error
    assert (r.effective_success.numerator, r.effective_success.denominator) == (4, 5)
    # failures: c (orchestrator), d (network), f (swapped away, unknown); e is the client's doing
    assert (r.failure_rate.numerator, r.failure_rate.denominator) == (3, 6)
    assert r.failures_by_class == {"orchestrator": 1, "network": 1, "unknown": 1}
    assert r.client_errors == 1
    lo, hi = r.startup_success.lower, r.startup_success.upper
    assert lo is not None and hi is not None and lo < 5 / 6 < hi
    assert (r.swaps, r.streams, r.swap_rate) == (1, 6, pytest.approx(1 / 6))
    assert r.swaps_by_reason["model_error"] == 1
    [rb] = reliability_series(Filters(orchestrator=ORCH_B), "1h", ANCHOR, ANCHOR + HOUR)
    assert (rb.swaps, rb.streams) == (0, 1)


def test_bandwidth_and_packet_loss_survive_a_counter_reset() -> None:
    make_session("s1")
    t = ANCHOR + timedelta(seconds=5)
    ingest_sample("s1", "r1", t, 0, 0, video=(0, 0), audio=(0, 0))
    ingest_sample(
        "s1", "r1", t + timedelta(seconds=10), 1_250_000, 2_500_000, video=(990, 10), audio=(500, 0)
    )
    ingest_sample("s1", "r1", t + timedelta(seconds=20), 100_000, 0, video=(5, 0), audio=(1, 0))  # reconnect
    ingest_sample(
        "s1", "r1", t + timedelta(seconds=30), 1_350_000, 2_500_000, video=(985, 20), audio=(401, 0)
    )
    refreshed()
    [n] = network_series(A, "1h", ANCHOR, ANCHOR + HOUR)
    # up: (1.25 MB + 1.25 MB)·8 / 20 s = 1 Mbps; down: (2.5 MB + 2.5 MB)·8 / 20 s = 2 Mbps (reset skipped)
    assert n.bandwidth_up_mbps == pytest.approx(1.0)
    assert n.bandwidth_down_mbps == pytest.approx(2.0)
    # video: lost 10 + 20 of 990 + 980 + 30 → 1.5 %
    assert n.video_packet_loss_pct == pytest.approx(100 * 30 / 2000)
    assert n.audio_packet_loss_pct == 0.0


def test_demand_counts_streams_minutes_capacity_fees_and_missing_capacity() -> None:
    make_session("s1", segments=(SegSpec(fps={0: [20] * 3, 1: [20] * 3}, output_seconds={0: 30.0, 1: 60.0}),))
    make_session("s1", "r2", request_at=ANCHOR + timedelta(minutes=5), segments=(SegSpec(fps={5: [20] * 3}),))
    make_session("s2", request_at=ANCHOR + timedelta(minutes=10), outcome="no_orchestrator", segments=())
    make_session(
        "s3",
        request_at=ANCHOR + timedelta(minutes=50),
        duration_s=900,
        outcome="failed",
        segments=(SegSpec(orchestrator=ORCH_B, started=False, ended_cleanly=False, p2ff_ms=None),),
    )
    payment(ANCHOR + timedelta(minutes=1), "r1", "2400000000000000")
    capability(ANCHOR, ORCH_A, 4)
    refreshed()
    [d] = demand_series(Filters(pipeline=PIPE), "1h", ANCHOR, ANCHOR + HOUR)
    assert (d.streams, d.sessions, d.missing_capacity) == (3, 4, 1)
    assert d.inference_minutes == pytest.approx((30 + 60 + 30) / 60)
    assert d.capacity_minutes == pytest.approx(4 * 5)
    assert d.fees_eth == Decimal("0.0024") and d.fees_wei == Decimal("2400000000000000")
    assert d.active_orchestrators == 1 and d.orchestrators == (ORCH_A,)
    [d2] = demand_series(Filters(pipeline=PIPE), "1h", ANCHOR + HOUR, ANCHOR + 2 * HOUR)
    assert d2.failed_sessions == 1 and d2.sessions == 0  # the failure counts once, where it ended
    [day] = demand_series(Filters(), "1d", ANCHOR.replace(hour=0), ANCHOR.replace(hour=0) + 24 * HOUR)
    assert (day.streams, day.failed_sessions) == (3, 1)


def test_orchestrator_summary_has_totals_and_one_line_per_workflow() -> None:
    make_session("s1", segments=(SegSpec(fps={0: [20, 20, 20]}),))
    make_session("s2", pipeline="streamdiffusion", segments=(SegSpec(fps={0: [10, 10, 10]}),))
    refreshed()
    summary = orchestrator_summary(ORCH_A.upper().replace("0X", "0x"), HOUR, ANCHOR + HOUR)
    assert summary.performance is not None and summary.performance.output_fps == pytest.approx(15.0)
    assert summary.reliability is not None and summary.reliability.ended == 2
    assert [w for w, _, _ in summary.by_workflow] == ["streamdiffusion", PIPE]


def test_sla_refresh_command_brings_rollups_and_scores_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    from sla.models import Score

    for i in range(5):
        make_session(
            f"s{i}", request_at=ANCHOR - timedelta(minutes=5 * i), segments=(SegSpec(fps={0: [20] * 3}),)
        )
    mark_dirty(ANCHOR - HOUR, ANCHOR + timedelta(minutes=1))
    call_command("sla_refresh")
    out = capsys.readouterr().out
    assert "sla_refresh:" in out and "sla_perf_1m" in out
    assert Score.objects.filter(orchestrator=ORCH_A, window="1h", window_end=ANCHOR + HOUR).exists()
