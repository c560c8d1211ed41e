"""GET /v1/sla/gpu/metrics through the real HTTP stack, over rollups refreshed from known segment rows."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from sla import metrics
from sla.refresh import refresh
from tests.conftest import ANCHOR
from tests.sla.rollup_factories import ORCH_A, ORCH_B, PIPE, SegSpec, ingest_sample, make_session, mark_dirty

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
ORCH_C = "0x" + "c" * 40
RTX = "NVIDIA GeForce RTX 4090"
WINDOW = "from=2026-01-09T14:00:00Z&to=2026-01-09T16:00:00Z&interval=1h"


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


@pytest.fixture
def network() -> None:
    """A/gpu-0 (eu): one clean session; A/gpu-1 fails (orchestrator error) and the stream is swapped to B/gpu-9
    (timeout); B/gpu-0 (us): one clean session an hour later."""
    make_session("s1", segments=(SegSpec(fps={0: [18, 20, 22], 1: [20, 20, 20, 20]}),))
    t = ANCHOR + timedelta(seconds=5)
    ingest_sample("s1", "r1", t, 0, 0)
    ingest_sample("s1", "r1", t + timedelta(seconds=10), 1_250_000, 2_500_000, video=(990, 10))
    make_session(
        "s2",
        "r2",
        request_at=ANCHOR + timedelta(minutes=10),
        segments=(
            SegSpec(
                gpu_id="gpu-1",
                swapped_away=True,
                swap_reason="timeout",
                ended_cleanly=False,
                error_class="orchestrator",
                fps={0: [10, 10, 10]},
                p2ff_ms=2000.0,
            ),
            SegSpec(orchestrator=ORCH_B, offset_s=30, gpu_id="gpu-9", fps={1: [25, 25, 25]}),
        ),
    )
    make_session(
        "s3",
        "r3",
        request_at=ANCHOR + timedelta(minutes=70),
        segments=(SegSpec(orchestrator=ORCH_B, region="us", fps={0: [30, 30, 30]}),),
    )
    mark_dirty(ANCHOR - HOUR, ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 4 * HOUR)


def get(query: str) -> Any:
    return Client().get(f"/v1/sla/gpu/metrics?{query}")


def keys(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(r["time_window"][:16], r["o_wallet"], r["gpu_id"], r["region"]) for r in body["data"]]


def test_rows_follow_the_seed_shape_with_hand_computed_values(network: None) -> None:
    response = get(f"o_wallet={ORCH_A}&gpu_id=gpu-0&{WINDOW}")
    assert response.status_code == 200
    [row] = response.json()["data"]
    assert row["o_wallet"] == ORCH_A and row["gpu_id"] == "gpu-0" and row["gpu_type"] == RTX
    assert (row["region"], row["workflow"]) == ("eu", PIPE)
    assert row["time_window"] == "2026-01-09T14:00:00Z/2026-01-09T15:00:00Z"
    m = row["metrics"]
    assert m["output_fps"] == pytest.approx(140 / 7)
    assert m["input_fps"] == pytest.approx(30.0)
    assert m["jitter_coefficient"] == pytest.approx(math.sqrt(8 / 3) / 20 / 2)  # minutes: σ/μ and 0
    assert m["jitter_coefficient_p95"] == pytest.approx(math.sqrt(8 / 3) / 20, rel=0.05)
    p2ff = m["prompt_to_first_frame_latency_ms"]
    assert p2ff["count"] == 1 and p2ff["mean"] == 900.0
    for q in ("p50", "p95", "p99"):
        assert p2ff[q] == pytest.approx(900.0, rel=0.05)
    assert m["startup_time_ms"]["mean"] == 300.0 and m["e2e_latency_ms"]["mean"] == 450.0
    low, high = metrics.wilson_interval(1, 1) or (None, None)
    assert m["startup_success"] == {
        "value": 1.0,
        "numerator": 1,
        "denominator": 1,
        "wilson_low": pytest.approx(low),
        "wilson_high": pytest.approx(high),
    }
    assert m["effective_success"]["value"] == 1.0
    assert m["failure_rate_pct"] == 0.0 and m["swap_rate_pct"] == 0.0
    assert m["bandwidth_up_mbps"] == pytest.approx(1.0)  # 1.25 MB · 8 / 10 s
    assert m["bandwidth_down_mbps"] == pytest.approx(2.0)
    assert m["video_packet_loss_pct"] == pytest.approx(1.0)  # 10 lost of 1,000
    assert m["restart_rate_per_hour"] == 0.0
    assert m["cuda_utilization_efficiency_pct"] == pytest.approx(100 * 20 * 6.5e12 / 165.2e12)
    assert m["cuda_utilization_efficiency_confidence"] == "low"
    assert row["samples"] == {
        "fps_samples": 7,
        "jitter_samples": 2,
        "segments": 1,
        "segments_ended": 1,
        "streams": 1,
        "swaps": 0,
        "network_samples": 1,  # one increment between the two counter readings
        "output_minutes": pytest.approx(70 / 60),  # 10 s of output per fps sample
    }


def test_a_swap_and_its_failure_are_charged_to_the_gpu_swapped_away_from(network: None) -> None:
    [row] = get(f"o_wallet={ORCH_A}&gpu_id=gpu-1&{WINDOW}").json()["data"]
    m = row["metrics"]
    assert m["swap_rate_pct"] == 100.0
    assert m["swaps_by_reason"]["timeout"] == 1
    assert sum(m["swaps_by_reason"].values()) == 1
    assert m["effective_success"]["numerator"] == 0 and m["effective_success"]["denominator"] == 1
    assert m["failure_rate_pct"] == 100.0
    assert m["failures_by_class"] == {"orchestrator": 1, "network": 0, "unknown": 0}
    [taker] = get(f"o_wallet={ORCH_B}&gpu_id=gpu-9&{WINDOW}").json()["data"]
    assert taker["metrics"]["swap_rate_pct"] == 0.0 and taker["metrics"]["failure_rate_pct"] == 0.0
    assert m["prompt_to_first_frame_latency_ms"]["p50"] == pytest.approx(2000.0, rel=0.05)
    assert m["bandwidth_up_mbps"] is None  # no ingest samples for this stream


def test_rows_are_ordered_by_bucket_then_wallet_and_gpu(network: None) -> None:
    body = get(WINDOW).json()
    assert keys(body) == [
        ("2026-01-09T14:00", ORCH_A, "gpu-0", "eu"),
        ("2026-01-09T14:00", ORCH_A, "gpu-1", "eu"),
        ("2026-01-09T14:00", ORCH_B, "gpu-9", "eu"),
        ("2026-01-09T15:00", ORCH_B, "gpu-0", "us"),
    ]
    assert body["page"] == {"limit": 100, "offset": 0, "total": 4, "next": None}
    assert body["interval"] == "1h"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"o_wallet={ORCH_B.upper().replace('0X', '0x')}", [ORCH_B, ORCH_B]),
        ("gpu_id=gpu-0", [ORCH_A, ORCH_B]),
        ("region=us", [ORCH_B]),
        (f"workflow={PIPE}", [ORCH_A, ORCH_A, ORCH_B, ORCH_B]),
        ("workflow=other-pipeline", []),
    ],
)
def test_filters_keep_only_matching_rows(network: None, query: str, expected: list[str]) -> None:
    body = get(f"{query}&{WINDOW}").json()
    assert [r["o_wallet"] for r in body["data"]] == expected


def test_a_five_minute_interval_splits_the_hour_into_buckets(network: None) -> None:
    body = get(f"o_wallet={ORCH_A}&from=2026-01-09T14:00:00Z&to=2026-01-09T14:30:00Z&interval=5m").json()
    assert [(r["time_window"][11:16], r["gpu_id"]) for r in body["data"]] == [
        ("14:00", "gpu-0"),
        ("14:10", "gpu-1"),
    ]
    assert body["data"][0]["time_window"].endswith("/2026-01-09T14:05:00Z")


def test_pages_follow_the_next_link_to_the_same_rows(network: None) -> None:
    whole = get(WINDOW).json()["data"]
    seen: list[dict[str, Any]] = []
    url: str | None = f"/v1/sla/gpu/metrics?{WINDOW}&limit=3"
    while url:
        body = Client().get(url).json()
        assert body["page"]["total"] == 4
        seen.extend(body["data"])
        url = body["page"]["next"]
    assert seen == whole
    assert get(f"{WINDOW}&limit=3&offset=3").json()["page"]["next"] is None


def test_a_known_wallet_with_an_empty_window_is_an_empty_list(network: None) -> None:
    response = get(f"o_wallet={ORCH_A}&from=2026-01-08T00:00:00Z&to=2026-01-08T02:00:00Z&interval=1h")
    assert response.status_code == 200
    assert response.json()["data"] == [] and response.json()["page"]["total"] == 0


def test_a_never_seen_wallet_is_404(network: None) -> None:
    response = get(f"o_wallet={ORCH_C}&{WINDOW}")
    assert response.status_code == 404
    assert ORCH_C in response.json()["detail"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("interval=2m", "interval"),
        ("o_wallet=0x1234", "o_wallet"),
        ("from=2026-01-09T14:00:00&interval=1h", "from"),
        ("from=2026-01-09T16:00:00Z&to=2026-01-09T14:00:00Z", "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-01-09T00:00:00Z&interval=1m", "from"),  # 11,520 buckets > cap
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("offset=-1", "offset"),
        ("to=yesterday", "to"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(query: str, param: str) -> None:
    response = get(query)
    assert response.status_code == 422
    assert response.json()["param"] == param
    assert response.json()["detail"].startswith(f"{param}: ")
