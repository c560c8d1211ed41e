"""GET /v1/sla/network/demand and /v1/sla/orchestrators/{address} through the real HTTP stack."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from sla.refresh import refresh
from sla.scoring_models import Score
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

pytestmark = pytest.mark.django_db
HOUR = timedelta(hours=1)
ORCH_C = "0x" + "c" * 40
RTX = "NVIDIA GeForce RTX 4090"
DAY = "from=2026-01-09T14:00:00Z&to=2026-01-09T16:00:00Z"


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


def refreshed() -> None:
    mark_dirty(ANCHOR - HOUR, ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 4 * HOUR)


@pytest.fixture
def demand() -> None:
    # Stream s1: two attempts (r1, r2) on A; s2 refused for lack of capacity; s3 on B fails and ends next hour.
    make_session("s1", segments=(SegSpec(fps={0: [20] * 3, 1: [20] * 3}, output_seconds={0: 30.0, 1: 60.0}),))
    make_session("s1", "r2", request_at=ANCHOR + timedelta(minutes=5), segments=(SegSpec(fps={5: [20] * 3}),))
    make_session(
        "s2", "r3", request_at=ANCHOR + timedelta(minutes=10), outcome="no_orchestrator", segments=()
    )
    make_session(
        "s3",
        "r4",
        request_at=ANCHOR + timedelta(minutes=50),
        duration_s=900,
        outcome="failed",
        segments=(SegSpec(orchestrator=ORCH_B, gpu_type="NVIDIA A100", started=False, ended_cleanly=False),),
    )
    payment(ANCHOR + timedelta(minutes=1), "r1", "2400000000000000")
    payment(ANCHOR + timedelta(minutes=6), "r2", "1")
    capability(ANCHOR, ORCH_A, 4)  # 4 slots for 5 minutes = 20 slot-minutes
    refreshed()


def demand_rows(query: str) -> list[dict[str, Any]]:
    response = Client().get(f"/v1/sla/network/demand?{query}")
    assert response.status_code == 200, response.content
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def test_demand_counts_streams_minutes_capacity_fees_and_orchestrators(demand: None) -> None:
    rows = demand_rows(DAY)
    assert [(r["time_window"][11:16], r["region"]) for r in rows] == [
        ("14:00", ""),
        ("14:00", "eu"),
        ("15:00", "eu"),
    ]
    refused, eu, later = rows
    assert (refused["sessions"], refused["streams"], refused["missing_capacity"]) == (1, 1, 1)
    assert eu["workflow"] == PIPE and eu["gateway"] is None
    assert (eu["streams"], eu["sessions"], eu["missing_capacity"]) == (2, 3, 0)  # r2 retries stream s1
    assert eu["inference_minutes"] == pytest.approx((30 + 60 + 30) / 60)
    assert eu["inference_minutes_by_gpu_type"] == {RTX: pytest.approx(2.0)}
    assert eu["capacity_minutes"] == pytest.approx(20.0)
    assert eu["capacity_rate"] == pytest.approx(2.0 / 20.0)
    assert eu["fees_wei"] == "2400000000000001"
    assert eu["fees_eth"] == "0.002400000000000001"  # exact: no float rounding
    assert eu["active_orchestrators"] == 1  # B produced no output
    assert (later["failed_sessions"], later["sessions"]) == (1, 0)  # counted once, in the hour it ended


def test_demand_filters_by_region_workflow_and_gateway(demand: None) -> None:
    assert [r["region"] for r in demand_rows(f"{DAY}&region=eu")] == ["eu", "eu"]
    assert demand_rows(f"{DAY}&workflow=other") == []
    [_, eu, _] = demand_rows(f"{DAY}&gateway=gw-1")
    assert eu["gateway"] == "gw-1" and eu["streams"] == 2
    assert eu["capacity_minutes"] == 0.0 and eu["capacity_rate"] is None  # capacity is not a gateway's
    assert demand_rows(f"{DAY}&gateway=gw-other") == []


def test_demand_by_day_merges_the_hours(demand: None) -> None:
    rows = demand_rows("from=2026-01-09T00:00:00Z&to=2026-01-10T00:00:00Z&interval=1d&region=eu")
    [day] = rows
    assert day["time_window"] == "2026-01-09T00:00:00Z/2026-01-10T00:00:00Z"
    assert (day["streams"], day["sessions"], day["failed_sessions"]) == (2, 3, 1)
    assert day["fees_eth"] == "0.002400000000000001"


def test_demand_pages(demand: None) -> None:
    body = Client().get(f"/v1/sla/network/demand?{DAY}&limit=2").json()
    assert len(body["data"]) == 2 and body["page"]["total"] == 3
    rest = Client().get(body["page"]["next"]).json()
    assert [r["time_window"][11:16] for r in rest["data"]] == ["15:00"] and rest["page"]["next"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [("interval=5m", "interval"), ("from=2026-01-09T14:00:00", "from"), ("limit=1000", "limit")],
)
def test_bad_demand_parameters_are_422_naming_the_parameter(query: str, param: str) -> None:
    response = Client().get(f"/v1/sla/network/demand?{query}")
    assert response.status_code == 422
    assert response.json()["param"] == param


# --- /v1/sla/orchestrators/{address} ----------------------------------------------------------------------


@pytest.fixture
def orchestrator() -> None:
    make_session("s1", segments=(SegSpec(fps={0: [20, 20, 20]}, p2ff_ms=1000.0),))
    make_session(
        "s2",
        "r2",
        request_at=ANCHOR + timedelta(minutes=3),
        pipeline="streamdiffusion",
        segments=(
            SegSpec(gpu_id="gpu-1", fps={0: [10, 10, 10]}, swapped_away=True, swap_reason="capacity"),
            SegSpec(orchestrator=ORCH_B, offset_s=20),
        ),
    )
    refreshed()
    Score.objects.create(
        orchestrator=ORCH_A,
        workflow=PIPE,
        window="1h",
        window_start=ANCHOR,
        window_end=ANCHOR + HOUR,
        version=1,
        score=81.5,
        latency=90.0,
        reliability=80.0,
        performance=70.0,
        sufficient=True,
        sessions=1,
        inputs={"sessions": 1},
        computed_at=ANCHOR + HOUR,
    )


def profile(path: str) -> Any:
    return Client().get(f"/v1/sla/orchestrators/{path}")


def test_the_orchestrator_summary_has_totals_workflows_gpus_and_scores(orchestrator: None) -> None:
    response = profile(f"{ORCH_A.upper().replace('0X', '0x')}?window=24h&to=2026-01-09T15:00:00Z")
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == ORCH_A
    assert (body["start"][:16], body["end"][:16]) == ("2026-01-08T15:00", "2026-01-09T15:00")
    assert body["metrics"]["output_fps"] == pytest.approx(15.0)  # 3 × 20 and 3 × 10
    assert body["samples"]["segments"] == 2 and body["samples"]["swaps"] == 1
    assert body["metrics"]["swaps_by_reason"]["capacity"] == 1
    assert [(w["workflow"], w["metrics"]["output_fps"]) for w in body["workflows"]] == [
        ("streamdiffusion", 10.0),
        (PIPE, 20.0),
    ]
    assert [(g["gpu_id"], g["workflows"], g["output_fps"], g["segments"]) for g in body["gpus"]] == [
        ("gpu-0", [PIPE], 20.0, 1),
        ("gpu-1", ["streamdiffusion"], 10.0, 1),
    ]
    [score] = body["latest_scores"]
    assert (score["period"], score["score"], score["workflow"]) == ("1h", 81.5, PIPE)
    assert body["interval"] == "1h"
    assert [(p["time_window"], p["workflow"]) for p in body["series"]] == [
        ("2026-01-09T14:00:00Z/2026-01-09T15:00:00Z", "streamdiffusion"),
        ("2026-01-09T14:00:00Z/2026-01-09T15:00:00Z", PIPE),
    ]
    assert body["series"][1]["metrics"]["prompt_to_first_frame_latency_ms"]["p50"] == pytest.approx(
        1000, rel=0.05
    )


def test_a_one_hour_window_has_a_minute_series(orchestrator: None) -> None:
    body = profile(f"{ORCH_A}?window=1h&to=2026-01-09T15:00:00Z").json()
    assert body["interval"] == "1m"
    assert [p["time_window"][11:16] for p in body["series"]] == ["14:00", "14:03"]


def test_a_window_without_data_of_a_known_orchestrator_is_empty_not_404(orchestrator: None) -> None:
    body = profile(f"{ORCH_A}?window=1h&to=2026-01-09T10:00:00Z").json()
    assert body["series"] == [] and body["workflows"] == [] and body["metrics"]["output_fps"] is None


def test_an_unknown_orchestrator_is_404(orchestrator: None) -> None:
    assert profile(ORCH_C).status_code == 404


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("0x1234", "address"),
        ("orch.eth", "address"),
        (f"{ORCH_A}?window=2d", "window"),
        (f"{ORCH_A}?to=x", "to"),
    ],
)
def test_bad_orchestrator_parameters_are_422_naming_the_parameter(path: str, param: str) -> None:
    response = profile(path)
    assert response.status_code == 422
    assert response.json()["param"] == param
