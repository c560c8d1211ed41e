from __future__ import annotations

import math
import random

import pytest

from sla import metrics


def test_bucket_edges_grow_by_at_most_ten_percent() -> None:
    for i in range(1, metrics.HIST_BUCKETS - 1):
        lower, upper = metrics.bucket_bounds(i)
        assert upper / lower <= 1.1 + 1e-12
        assert metrics.bucket_index(lower * 1.0000001) == i


def test_histogram_percentiles_stay_within_five_percent_of_exact_values() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(7, 0.8) for _ in range(2000)]
    hist = metrics.histogram(values)
    for q in (0.5, 0.95, 0.99):
        exact = metrics.exact_percentile(values, q)
        approx = metrics.percentile(hist, q)
        assert exact is not None and approx is not None
        assert abs(approx - exact) / exact <= 0.05


def test_histograms_merge_by_element_wise_sum() -> None:
    a, b = [10.0, 200.0, 3000.0], [15.0, 250.0]
    assert metrics.merge_histograms([metrics.histogram(a), metrics.histogram(b), None]) == metrics.histogram(
        a + b
    )


def test_empty_histogram_has_no_percentile() -> None:
    assert metrics.percentile([0] * metrics.HIST_BUCKETS, 0.5) is None


def test_wilson_interval_of_eight_out_of_ten_matches_the_textbook_value() -> None:
    r = metrics.ratio(8, 10)
    assert r.value == 0.8
    assert r.lower == pytest.approx(0.4902, abs=1e-4)
    assert r.upper == pytest.approx(0.9433, abs=1e-4)


def test_a_ratio_without_a_denominator_has_no_value() -> None:
    assert metrics.ratio(0, 0) == metrics.Ratio(0, 0, None, None, None)


def test_jitter_is_population_sigma_over_mean_and_needs_three_samples() -> None:
    assert metrics.jitter([18.0, 20.0, 22.0]) == pytest.approx(math.sqrt(8 / 3) / 20)
    assert metrics.jitter([18.0, 22.0]) is None


def test_a_counter_that_goes_down_restarts_counting_from_its_new_value() -> None:
    # 0 → 1000 (10 s), reset to 100 (skipped), 100 → 600 (10 s)
    total, seconds = metrics.counter_deltas([(0, 0), (10, 1000), (20, 100), (30, 600)])
    assert (total, seconds) == (1500, 20.0)
    assert metrics.mbps(total, seconds) == pytest.approx(1500 * 8 / 20 / 1e6)


def test_packet_loss_is_lost_over_received_plus_lost() -> None:
    assert metrics.loss_pct(5, 95) == 5.0
    assert metrics.loss_pct(0, 0) is None


def test_cue_proxy_is_low_confidence_and_needs_both_lookups() -> None:
    cue = metrics.cue_proxy("streamdiffusion-sdxl", "NVIDIA GeForce RTX 4090", 20.0)
    assert cue is not None and cue.confidence == "low"
    assert cue.value_pct == pytest.approx(100 * 20 * 6.5e12 / 165.2e12)
    assert metrics.cue_proxy("unknown-pipeline", "NVIDIA GeForce RTX 4090", 20.0) is None
    assert metrics.cue_proxy("streamdiffusion-sdxl", "some gpu", 20.0) is None
