"""Every rollup level equals the same aggregation computed directly over the base rows (also after late data)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from sla import metrics
from sla.models import Segment, SegmentMinute
from sla.refresh import floor_to, refresh
from sla.rollup_defs import DEMAND, LEVELS, NET, PERF, REL, Family
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import (
    ORCH_A,
    ORCH_B,
    SegSpec,
    capability,
    ingest_sample,
    make_session,
    mark_dirty,
    payment,
)

pytestmark = pytest.mark.django_db
NEXT_DAY = ANCHOR.replace(hour=23, minute=58)  # data crossing midnight exercises the 1d level


def scenario() -> None:
    make_session("s1", segments=(SegSpec(fps={0: [20, 21, 19], 1: [18, 22, 20, 20]}, restarts={1: 1}),))
    make_session(
        "s2",
        request_at=ANCHOR + timedelta(minutes=3, seconds=20),
        segments=(
            SegSpec(
                orchestrator=ORCH_B,
                swapped_away=True,
                swap_reason="timeout",
                ended_cleanly=False,
                error_class="orchestrator",
                p2ff_ms=2500.0,
                fps={0: [5, 6, 7]},
            ),
            SegSpec(offset_s=40, p2ff_ms=1200.0, startup_ms=None, fps={1: [19, 20, 21]}),
        ),
    )
    make_session(
        "s2",
        "r2",
        request_at=ANCHOR + timedelta(minutes=9),
        closed=False,
        segments=(SegSpec(started=False, ended=False, ended_cleanly=False, p2ff_ms=None),),
    )
    make_session(
        "s3",
        request_at=ANCHOR + timedelta(minutes=61),
        outcome="failed",
        segments=(SegSpec(started=False, ended_cleanly=False, error_class="client", p2ff_ms=None),),
    )
    make_session("s4", request_at=NEXT_DAY, outcome="no_orchestrator", segments=())
    make_session(
        "s5",
        request_at=NEXT_DAY + timedelta(seconds=30),
        segments=(
            SegSpec(
                orchestrator=ORCH_B,
                region="us",
                gpu_id="g9",
                fps={0: [30, 30, 31], 1: [29]},
                output_seconds={0: 25.0, 1: 40.0},
            ),
        ),
    )
    for i, (up, down) in enumerate(
        [(0, 0), (5_000, 9_000), (12_000, 20_000), (1_000, 2_000), (4_000, 9_000)]
    ):
        ingest_sample(
            "s1",
            "r1",
            ANCHOR + timedelta(seconds=10 * i + 5),
            up,
            down,
            video=(100 * i, i),
            audio=(50 * i, 0),
        )
    payment(ANCHOR + timedelta(minutes=2), "r1", "2400000000000000")
    payment(NEXT_DAY + timedelta(minutes=1), "r1", "1000")
    capability(ANCHOR, ORCH_A, 2)
    capability(ANCHOR + timedelta(minutes=2), ORCH_A, 3)
    capability(ANCHOR + timedelta(minutes=58), ORCH_B, 1, region="us", gpu_id="g9")
    mark_dirty(ANCHOR, NEXT_DAY + timedelta(minutes=3))


def table(name: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {name}")
        cols = [c.name for c in cursor.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]
    family = name.split("_")[1]
    keys = {"perf": PERF, "rel": REL, "net": NET, "demand": DEMAND}[family].keys
    return {(r["bucket"], *(r[k] for k in keys)): r for r in rows}


def group(
    items: Iterable[tuple[datetime, tuple[str, ...], dict[str, Any]]],
    level: str,
    merge: dict[str, Callable[[Any, Any], Any]],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for when, keys, values in items:
        key = (floor_to(when, LEVELS[level]), *keys)
        if key not in out:
            out[key] = dict(values)
        else:
            for col, value in values.items():
                out[key][col] = merge.get(col, lambda a, b: a + b)(out[key][col], value)
    return out


def hist_add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def nullable(fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: b if a is None else a if b is None else fn(a, b)


MERGE: dict[str, Callable[[Any, Any], Any]] = {
    "fps_min": nullable(min),
    "fps_max": nullable(max),
    "jitter_hist": hist_add,
    "p2ff_hist": hist_add,
    "startup_hist": hist_add,
    "e2e_hist": hist_add,
    "orchestrators": lambda a, b: sorted(set(a) | set(b)),
}


def assert_same(
    expected: dict[tuple[Any, ...], dict[str, Any]], actual: dict[tuple[Any, ...], dict[str, Any]]
) -> None:
    assert set(expected) == set(actual)
    for key, values in expected.items():
        for col, value in values.items():
            got = actual[key][col]
            if isinstance(value, float):
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), (key, col)
            else:
                assert got == value, (key, col)


def perf_base() -> list[tuple[datetime, tuple[str, ...], dict[str, Any]]]:
    out = []
    for m in SegmentMinute.objects.exclude(orchestrator=""):
        out.append(
            (
                m.bucket,
                (m.orchestrator, m.pipeline, m.region, m.gpu_id, m.gpu_type),
                {
                    "samples": m.samples,
                    "fps_sum": m.fps_sum,
                    "fps_sumsq": m.fps_sumsq,
                    "fps_min": m.fps_min,
                    "fps_max": m.fps_max,
                    "in_fps_samples": m.in_fps_samples,
                    "in_fps_sum": m.in_fps_sum,
                    "jitter_n": int(m.jitter is not None),
                    "jitter_sum": m.jitter or 0.0,
                    "jitter_hist": metrics.histogram([m.jitter * 10000.0] if m.jitter is not None else []),
                    "output_seconds": m.output_seconds,
                    "restarts": m.restarts,
                    "segment_minutes": 1,
                },
            )
        )
    return out


def rel_base() -> list[tuple[datetime, tuple[str, ...], dict[str, Any]]]:
    out = []
    segments = list(Segment.objects.select_related("session").exclude(orchestrator=""))
    seen: set[tuple[str, str]] = set()
    for s in sorted(segments, key=lambda s: (s.request_at, s.session_id, s.ordinal)):
        first = (s.session.stream_id, s.orchestrator) not in seen
        seen.add((s.session.stream_id, s.orchestrator))
        failed = s.ended and s.error_class != "client" and not (s.started and s.ended_cleanly)
        swapped = s.ended and s.swapped_away
        values = {
            "segments": 1,
            "ended": int(s.ended),
            "started": int(s.ended and s.started),
            "effective_ok": int(s.ended and s.started and s.error_class != "orchestrator"),
            "clean": int(s.ended and not failed),
            "failed": int(failed),
            "failed_orchestrator": int(failed and s.error_class == "orchestrator"),
            "failed_network": int(failed and s.error_class == "network"),
            "failed_unknown": int(failed and s.error_class not in ("orchestrator", "network")),
            "client_errors": int(s.ended and s.error_class == "client"),
            "streams": int(s.ended and first),
            "swaps": int(swapped),
            "swap_timeout": int(swapped and s.swap_reason == "timeout"),
        }
        for name in ("p2ff", "startup", "e2e"):
            v = getattr(s, f"{name}_ms")
            values[f"{name}_n"] = int(v is not None)
            values[f"{name}_sum"] = v or 0.0
            values[f"{name}_hist"] = metrics.histogram([v] if v is not None else [])
        out.append(
            (
                s.request_at.replace(second=0, microsecond=0),
                (s.orchestrator, s.pipeline, s.region, s.gpu_id, s.gpu_type),
                values,
            )
        )
    return out


def net_base() -> list[tuple[datetime, tuple[str, ...], dict[str, Any]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT stream_id, request_id, event_time, bytes_received, bytes_sent, video_packets_received,"
            " video_packets_lost, audio_packets_received, audio_packets_lost FROM telemetry_fact_ingest"
            " ORDER BY stream_id, request_id, event_time"
        )
        rows = cursor.fetchall()
    out = []
    for prev, cur in zip(rows, rows[1:], strict=False):
        if prev[:2] != cur[:2]:
            continue
        seg = Segment.objects.get(session__stream_id=cur[0], session__request_id=cur[1], ordinal=0)
        dt = (cur[2] - prev[2]).total_seconds()
        up_ok, down_ok = cur[3] >= prev[3], cur[4] >= prev[4]
        v_ok = cur[5] >= prev[5] and cur[6] >= prev[6]
        a_ok = cur[7] >= prev[7] and cur[8] >= prev[8]
        out.append(
            (
                cur[2].replace(second=0, microsecond=0),
                (seg.orchestrator, seg.pipeline, seg.region, seg.gpu_id, seg.gpu_type),
                {
                    "samples": 1,
                    "up_bytes": cur[3] - prev[3] if up_ok else 0,
                    "up_seconds": dt if up_ok else 0.0,
                    "down_bytes": cur[4] - prev[4] if down_ok else 0,
                    "down_seconds": dt if down_ok else 0.0,
                    "video_received": cur[5] - prev[5] if v_ok else 0,
                    "video_lost": cur[6] - prev[6] if v_ok else 0,
                    "audio_received": cur[7] - prev[7] if a_ok else 0,
                    "audio_lost": cur[8] - prev[8] if a_ok else 0,
                },
            )
        )
    return out


@pytest.mark.parametrize(("family", "base"), [(PERF, perf_base), (REL, rel_base), (NET, net_base)])
def test_every_level_equals_the_direct_aggregation_over_base_rows(
    family: Family, base: Callable[[], Any]
) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    for level in family.levels:
        assert_same(group(base(), level, MERGE), table(family.table(level)))


@pytest.mark.parametrize(("family", "base"), [(PERF, perf_base), (REL, rel_base), (NET, net_base)])
def test_late_data_reopens_its_buckets_at_every_level(family: Family, base: Callable[[], Any]) -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    late = ANCHOR + timedelta(minutes=4, seconds=30)
    make_session("late", request_at=late, segments=(SegSpec(p2ff_ms=7000.0, fps={0: [10, 12, 14]}),))
    ingest_sample("late", "r1", late, 0, 0, received_at=ANCHOR + timedelta(hours=3))
    ingest_sample(
        "late", "r1", late + timedelta(seconds=10), 8000, 16000, received_at=ANCHOR + timedelta(hours=3)
    )
    mark_dirty(late.replace(second=0), late.replace(second=0) + timedelta(minutes=1))
    refresh(ANCHOR + timedelta(days=1, hours=3))
    for level in family.levels:
        assert_same(group(base(), level, MERGE), table(family.table(level)))


def demand_base() -> list[tuple[datetime, tuple[str, ...], dict[str, Any]]]:
    zero = {
        "streams": 0,
        "sessions": 0,
        "failed_sessions": 0,
        "missing_capacity": 0,
        "inference_seconds": 0.0,
        "capacity_seconds": 0.0,
        "fees_wei": Decimal(0),
        "orchestrators": [],
    }
    from sla.models import Session

    out = []
    first_of_stream: dict[str, int] = {}
    for x in Session.objects.order_by("request_at", "id"):
        first_of_stream.setdefault(x.stream_id, x.id)
    for x in Session.objects.all():
        last = x.segments.order_by("-ordinal").first()
        keys = (x.gateway, x.pipeline, x.region, last.gpu_type if last else "")
        missing = x.outcome == "no_orchestrator" or (
            x.status == "closed" and not x.orchestrator and not x.started
        )
        out.append(
            (
                x.request_at,
                keys,
                {
                    **zero,
                    "sessions": 1,
                    "streams": int(first_of_stream[x.stream_id] == x.id),
                    "missing_capacity": int(missing),
                },
            )
        )
        if x.outcome in ("failed", "startup_failed"):
            out.append((x.ended_at, keys, {**zero, "failed_sessions": 1}))
    for m in SegmentMinute.objects.all():
        out.append(
            (
                m.bucket,
                (m.gateway, m.pipeline, m.region, m.gpu_type),
                {
                    **zero,
                    "inference_seconds": m.output_seconds,
                    "orchestrators": [m.orchestrator] if m.output_seconds > 0 else [],
                },
            )
        )
    return out


def test_demand_levels_equal_the_direct_aggregation_with_fees_and_capacity() -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    expected = demand_base()
    gpu = "NVIDIA GeForce RTX 4090"
    zero = {
        "streams": 0,
        "sessions": 0,
        "failed_sessions": 0,
        "missing_capacity": 0,
        "inference_seconds": 0.0,
        "capacity_seconds": 0.0,
        "fees_wei": Decimal(0),
        "orchestrators": [],
    }
    # fees join the paying session; capacity: 2 slots for 120 s then 3 slots for 300 s; 1 slot for 120 + 180 s
    expected += [
        (
            ANCHOR,
            ("gw-1", "streamdiffusion-sdxl", "eu", gpu),
            {**zero, "fees_wei": Decimal("2400000000000000")},
        ),
        (NEXT_DAY, ("gw-1", "streamdiffusion-sdxl", "eu", gpu), {**zero, "fees_wei": Decimal("1000")}),
        (
            ANCHOR,
            ("", "streamdiffusion-sdxl", "eu", gpu),
            {**zero, "capacity_seconds": 2 * 120.0 + 3 * 300.0},
        ),
        (
            ANCHOR + timedelta(minutes=58),
            ("", "streamdiffusion-sdxl", "us", gpu),
            {**zero, "capacity_seconds": 120.0},
        ),
        (
            ANCHOR + timedelta(minutes=60),
            ("", "streamdiffusion-sdxl", "us", gpu),
            {**zero, "capacity_seconds": 180.0},
        ),
    ]
    for level in DEMAND.levels:
        assert_same(group(expected, level, MERGE), table(DEMAND.table(level)))


def test_refreshing_twice_changes_nothing() -> None:
    scenario()
    refresh(ANCHOR + timedelta(days=1))
    before = {name: table(name) for name in ("sla_perf_1d", "sla_rel_1h", "sla_net_5m", "sla_demand_1d")}
    mark_dirty(ANCHOR - timedelta(hours=1), NEXT_DAY + timedelta(hours=1))
    refresh(ANCHOR + timedelta(days=1, minutes=1))
    after = {name: table(name) for name in before}
    assert after == before


def test_the_bucket_origin_matches_utc_midnight() -> None:
    assert floor_to(datetime(2026, 1, 9, 23, 59, tzinfo=UTC), LEVELS["1d"]) == datetime(
        2026, 1, 9, tzinfo=UTC
    )
