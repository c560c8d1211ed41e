from __future__ import annotations

import pytest

from sla.metrics import wilson_interval
from sla.scoring import (
    ScoreInputs,
    ScoringParams,
    Targets,
    latency_subscore,
    performance_subscore,
    reliability_subscore,
    score,
)

PARAMS = ScoringParams(
    version=1,
    weight_latency=0.3,
    weight_reliability=0.4,
    weight_performance=0.3,
    latency_zero_multiple=3.0,
    jitter_free=0.1,
    jitter_span=0.4,
    min_sessions=5,
    default_targets=Targets(fps=20.0, p2ff_ms=3000.0),
    workflow_targets={"sdxl": Targets(fps=15.0, p2ff_ms=4000.0)},
)


def test_latency_is_full_at_target_and_zero_at_three_times_target() -> None:
    assert latency_subscore(2500, 3000, 3) == 100.0
    assert latency_subscore(6000, 3000, 3) == pytest.approx(50.0)
    assert latency_subscore(9000, 3000, 3) == 0.0
    assert latency_subscore(None, 3000, 3) is None


def test_reliability_is_the_lower_wilson_bound_times_one_minus_swap_rate() -> None:
    lower = wilson_interval(9, 10)
    assert lower is not None
    assert reliability_subscore(9, 10, 1, 4) == pytest.approx(100 * lower[0] * 0.75)


def test_performance_caps_fps_and_charges_jitter_above_a_tenth() -> None:
    assert performance_subscore(25.0, 0.05, 20.0, 0.1, 0.4) == 100.0
    assert performance_subscore(10.0, 0.3, 20.0, 0.1, 0.4) == pytest.approx(100 * 0.5 * 0.5)
    assert performance_subscore(20.0, 0.6, 20.0, 0.1, 0.4) == 0.0


def test_score_weights_subscores_with_the_workflow_targets() -> None:
    inputs = ScoreInputs(
        sessions=10,
        started=10,
        effective_ok=10,
        swaps=0,
        streams=10,
        p2ff_p95_ms=4000.0,
        output_fps_mean=15.0,
        jitter_mean=0.1,
    )
    result = score(inputs, "sdxl", PARAMS)
    rel = 100 * wilson_interval(10, 10)[0]  # type: ignore[index]
    assert result.latency == 100.0 and result.performance == 100.0
    assert result.score == pytest.approx(0.3 * 100 + 0.4 * rel + 0.3 * 100, abs=1e-5)
    assert result.sufficient and result.version == 1


def test_fewer_than_five_sessions_is_insufficient_and_unscored() -> None:
    inputs = ScoreInputs(4, 4, 4, 0, 4, 1000.0, 20.0, 0.0)
    result = score(inputs, "other", PARAMS)
    assert not result.sufficient and result.score is None
    assert result.latency == 100.0
