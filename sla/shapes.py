"""Rollup read results (frozen dataclasses of ``sla.rollups`` / ``sla.queries``) → API schemas. Pure mapping."""

from __future__ import annotations

from datetime import datetime, timedelta

from sla import metrics
from sla.params import time_window
from sla.queries import DemandRow, MetricRow, eth_text
from sla.rollup_defs import SWAP_REASONS
from sla.rollups import FAILURE_CLASSES, Latency
from sla.schemas import DemandRowOut, GpuMetrics, GpuMetricsRow, Ratio, SampleCounts
from sla.schemas import Latency as LatencyOut


def latency(value: Latency | None) -> LatencyOut:
    if value is None:
        return LatencyOut()
    return LatencyOut(p50=value.p50, p95=value.p95, p99=value.p99, mean=value.mean, count=value.count)


def ratio(value: metrics.Ratio | None) -> Ratio:
    if value is None:
        return Ratio()
    return Ratio(
        value=value.value,
        numerator=value.numerator,
        denominator=value.denominator,
        wilson_low=value.lower,
        wilson_high=value.upper,
    )


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def gpu_metrics(row: MetricRow) -> GpuMetrics:
    perf, rel, net = row.perf, row.rel, row.net
    cue = perf.cue if perf else None
    if perf is not None and cue is None and row.pipeline and row.gpu_type:
        cue = metrics.cue_proxy(row.pipeline, row.gpu_type, perf.output_fps)
    return GpuMetrics(
        output_fps=perf.output_fps if perf else None,
        input_fps=perf.input_fps if perf else None,
        prompt_to_first_frame_latency_ms=latency(rel.p2ff_ms if rel else None),
        jitter_coefficient=perf.jitter_mean if perf else None,
        jitter_coefficient_p95=perf.jitter_p95 if perf else None,
        startup_time_ms=latency(rel.startup_ms if rel else None),
        e2e_latency_ms=latency(rel.e2e_ms if rel else None),
        startup_success=ratio(rel.startup_success if rel else None),
        effective_success=ratio(rel.effective_success if rel else None),
        failure_rate_pct=_pct(rel.failure_rate.value) if rel else None,
        failures_by_class=dict(rel.failures_by_class) if rel else dict.fromkeys(FAILURE_CLASSES, 0),
        swap_rate_pct=_pct(rel.swap_rate) if rel else None,
        swaps_by_reason=dict(rel.swaps_by_reason) if rel else dict.fromkeys(SWAP_REASONS, 0),
        restart_rate_per_hour=perf.restart_rate_per_hour if perf else None,
        bandwidth_up_mbps=net.bandwidth_up_mbps if net else None,
        bandwidth_down_mbps=net.bandwidth_down_mbps if net else None,
        video_packet_loss_pct=net.video_packet_loss_pct if net else None,
        audio_packet_loss_pct=net.audio_packet_loss_pct if net else None,
        cuda_utilization_efficiency_pct=cue.value_pct if cue else None,
        cuda_utilization_efficiency_confidence="low" if cue else None,
    )


def sample_counts(row: MetricRow) -> SampleCounts:
    perf, rel, net = row.perf, row.rel, row.net
    return SampleCounts(
        fps_samples=perf.samples if perf else 0,
        jitter_samples=perf.jitter_samples if perf else 0,
        segments=rel.segments if rel else 0,
        segments_ended=rel.ended if rel else 0,
        streams=rel.streams if rel else 0,
        swaps=rel.swaps if rel else 0,
        network_samples=net.samples if net else 0,
        output_minutes=(perf.output_hours * 60.0) if perf else 0.0,
    )


def gpu_row(row: MetricRow, step: timedelta) -> GpuMetricsRow:
    bucket: datetime = row.bucket  # type: ignore[assignment]  # per-bucket rows always carry a bucket
    return GpuMetricsRow(
        o_wallet=row.orchestrator,
        gpu_id=row.gpu_id,
        gpu_type=row.gpu_type,
        region=row.region,
        workflow=row.pipeline,
        time_window=time_window(bucket, bucket + step),
        metrics=gpu_metrics(row),
        samples=sample_counts(row),
    )


def demand_row(row: DemandRow, step: timedelta, gateway: str | None) -> DemandRowOut:
    return DemandRowOut(
        workflow=row.pipeline,
        region=row.region,
        gateway=gateway,
        time_window=time_window(row.bucket, row.bucket + step),
        streams=row.streams,
        sessions=row.sessions,
        failed_sessions=row.failed_sessions,
        missing_capacity=row.missing_capacity,
        inference_minutes=row.inference_minutes,
        inference_minutes_by_gpu_type=row.inference_minutes_by_gpu_type,
        capacity_minutes=row.capacity_minutes,
        capacity_rate=row.capacity_rate,
        fees_wei=str(int(row.fees_wei)),
        fees_eth=eth_text(row.fees_wei),
        active_orchestrators=len(row.orchestrators),
    )
