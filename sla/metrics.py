"""Metric formulas of METRICS.md (definition version 1) as pure Python: no Django, no database.

Histograms are fixed log-spaced buckets shared with SQL (``sla_latency_bucket`` in migration 0002): bucket 0
holds values below 1 (ms), bucket ``i`` (1 ≤ i < HIST_BUCKETS − 1) holds ``[RATIO**(i−1), RATIO**i)`` and the
last bucket holds everything above. Percentiles report a bucket's geometric midpoint, so the relative error
is at most √RATIO − 1 ≈ 4.9 %. Histograms are int lists that merge by element-wise sum.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

DEFINITION_VERSION = 1
HIST_RATIO = 1.1
HIST_BUCKETS = 150
# Jitter ratios are stored in the same histogram layout after scaling by this factor (1 bucket unit = 1e-4).
JITTER_SCALE = 10_000.0
Z_95 = 1.959963984540054


def bucket_index(value: float) -> int:
    """Histogram bucket of a non-negative value (same formula as SQL ``sla_latency_bucket``)."""
    if value < 1.0:
        return 0
    return min(HIST_BUCKETS - 1, 1 + math.floor(math.log(value) / math.log(HIST_RATIO)))


def bucket_bounds(index: int) -> tuple[float, float]:
    """[lower, upper) edges of a bucket; the overflow bucket's upper edge is infinity."""
    if index == 0:
        return (0.0, 1.0)
    lower = HIST_RATIO ** (index - 1)
    upper = math.inf if index == HIST_BUCKETS - 1 else HIST_RATIO**index
    return (lower, upper)


def bucket_value(index: int) -> float:
    """The value reported for a bucket: geometric midpoint (0.5 for the bucket below 1, lower edge on overflow)."""
    lower, upper = bucket_bounds(index)
    if index == 0:
        return 0.5
    if math.isinf(upper):
        return lower
    return math.sqrt(lower * upper)


def histogram(values: Iterable[float]) -> list[int]:
    counts = [0] * HIST_BUCKETS
    for value in values:
        counts[bucket_index(value)] += 1
    return counts


def merge_histograms(histograms: Iterable[Sequence[int] | None]) -> list[int]:
    total = [0] * HIST_BUCKETS
    for hist in histograms:
        if hist is None:
            continue
        for i, count in enumerate(hist):
            total[i] += count
    return total


# The value reported for each bucket, computed once (percentiles are read for every row the API returns).
_BUCKET_VALUES: tuple[float, ...] = tuple(bucket_value(i) for i in range(HIST_BUCKETS))


def _value_of(index: int) -> float:
    return _BUCKET_VALUES[index] if index < HIST_BUCKETS else bucket_value(index)


def percentiles(hist: Sequence[int] | None, qs: Sequence[float]) -> tuple[float | None, ...]:
    """Nearest-rank percentiles for every ``q`` in ``qs`` (0 < q ≤ 1) from one cumulative pass.

    The running totals are built once; each quantile is then a binary search for the first bucket whose
    running total reaches its rank. All None when the histogram is absent or empty.
    """
    if hist is None:
        return (None,) * len(qs)
    running = list(accumulate(hist))
    n = running[-1] if running else 0
    if n <= 0:
        return (None,) * len(qs)
    last = len(running) - 1
    out: list[float | None] = []
    for q in qs:
        rank = max(1, math.ceil(q * n - 1e-9))
        out.append(_value_of(min(last, bisect_left(running, rank))))
    return tuple(out)


def percentile(hist: Sequence[int] | None, q: float) -> float | None:
    """Nearest-rank percentile (0 < q ≤ 1) read from a histogram; None when it is empty."""
    return percentiles(hist, (q,))[0]


def exact_percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile over raw values (what a histogram percentile approximates)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Ratio:
    """A published ratio: value with numerator, denominator and its 95 % Wilson interval."""

    numerator: int
    denominator: int
    value: float | None
    lower: float | None
    upper: float | None


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denom = 1 + z2 / n
    return (max(0.0, (centre - margin) / denom), min(1.0, (centre + margin) / denom))


def ratio(numerator: int, denominator: int) -> Ratio:
    interval = wilson_interval(numerator, denominator)
    if interval is None:
        return Ratio(numerator, denominator, None, None, None)
    return Ratio(numerator, denominator, numerator / denominator, interval[0], interval[1])


def jitter(samples: Sequence[float]) -> float | None:
    """Population σ/μ of one session-minute's output-fps samples; None below 3 samples or when μ = 0."""
    if len(samples) < 3:
        return None
    mean = sum(samples) / len(samples)
    if mean <= 0:
        return None
    variance = sum((s - mean) ** 2 for s in samples) / len(samples)
    return math.sqrt(variance) / mean


def mean(total: float, count: int) -> float | None:
    return total / count if count else None


def stddev_from_sums(total: float, total_sq: float, count: int) -> float | None:
    if count == 0:
        return None
    mu = total / count
    return math.sqrt(max(0.0, total_sq / count - mu * mu))


def mbps(bytes_total: float, seconds: float) -> float | None:
    """Δbytes·8/Δt in megabits per second; None without elapsed time."""
    if seconds <= 0:
        return None
    return bytes_total * 8 / seconds / 1_000_000


def counter_deltas(samples: Sequence[tuple[float, int]]) -> tuple[int, float]:
    """Sum of increments and elapsed seconds of a cumulative counter sampled at (time_s, value).

    A value lower than the previous one is a reset: that interval is skipped and counting starts again
    from the new value.
    """
    total = 0
    seconds = 0.0
    for (t0, v0), (t1, v1) in zip(samples, samples[1:], strict=False):
        if v1 < v0 or t1 <= t0:
            continue
        total += v1 - v0
        seconds += t1 - t0
    return total, seconds


def loss_pct(lost: int, received: int) -> float | None:
    total = lost + received
    return 100.0 * lost / total if total > 0 else None


# --- CUE proxy lookups (confidence = low) --------------------------------------------------------------
# Estimated FLOPs per output frame of each workflow: UNet/VAE forward passes at the workflow's default
# resolution and step count (rough estimates from model sizes; they are why the proxy is "low confidence").
FLOPS_PER_FRAME: dict[str, float] = {
    "streamdiffusion": 1.6e12,  # SD-turbo 512², 1 step + TAESD
    "streamdiffusion-sd15": 1.6e12,
    "streamdiffusion-sdxl": 6.5e12,  # SDXL-turbo 1024², 1 step
    "streamdiffusion-sdxl-faceid": 7.2e12,
    "comfyui": 3.0e12,
    "noop": 0.0,
}
# Peak dense FP16 tensor FLOP/s from vendor datasheets.
GPU_PEAK_FLOPS: dict[str, float] = {
    "nvidia geforce rtx 4090": 165.2e12,
    "nvidia geforce rtx 4080": 97.5e12,
    "nvidia geforce rtx 3090": 71.0e12,
    "nvidia rtx a6000": 154.8e12,
    "nvidia l4": 121.0e12,
    "nvidia l40s": 362.0e12,
    "nvidia a100-sxm4-80gb": 312.0e12,
    "nvidia a100 80gb pcie": 312.0e12,
    "nvidia h100 80gb hbm3": 989.4e12,
}


@dataclass(frozen=True)
class Cue:
    value_pct: float
    confidence: str
    flops_per_frame: float
    peak_flops: float


def cue_proxy(pipeline: str, gpu_type: str, output_fps: float | None) -> Cue | None:
    """CUE proxy in percent, only when both lookups exist and fps is known."""
    if output_fps is None:
        return None
    per_frame = FLOPS_PER_FRAME.get(pipeline.strip().lower())
    peak = GPU_PEAK_FLOPS.get(gpu_type.strip().lower())
    if per_frame is None or not peak:
        return None
    return Cue(100.0 * output_fps * per_frame / peak, "low", per_frame, peak)
