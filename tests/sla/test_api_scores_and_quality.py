"""The public /v1/sla API through the real HTTP stack: scores, leaderboard, quality, and its HTTP rules."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from sla import http
from sla.models import Segment, Session
from sla.scoring_models import Score
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR, ANCHOR_MS

pytestmark = pytest.mark.django_db

ORCH_A = "0x" + "a" * 40
ORCH_B = "0x" + "b" * 40
ORCH_C = "0x" + "c" * 40
WORKFLOW = "streamdiffusion-sdxl"


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings) -> None:
    """Rate-limit counters and cached responses of one test never leak into another."""
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


class FrozenWallClock:
    """Stands in for the ``time`` module inside ``sla.http``, whose fixed rate windows are cut from it."""

    def __init__(self, moment: float) -> None:
        self.moment = moment

    def time(self) -> float:
        return self.moment


@pytest.fixture
def frozen_rate_clock(monkeypatch) -> FrozenWallClock:
    """Rate windows cannot roll over mid-test: the clock stands 15 s into a window (60-s windows → 45 s left)."""
    clock = FrozenWallClock(ANCHOR.timestamp() + 15)
    monkeypatch.setattr(http, "time", clock)
    return clock


def make_score(
    orchestrator: str,
    score: float | None,
    *,
    window_end=ANCHOR,
    window: str = "24h",
    workflow: str = WORKFLOW,
    sessions: int = 10,
    sufficient: bool = True,
    version: int = 1,
) -> Score:
    length = timedelta(hours=24 if window == "24h" else 1)
    return Score.objects.create(
        orchestrator=orchestrator,
        workflow=workflow,
        window=window,
        window_start=window_end - length,
        window_end=window_end,
        version=version,
        score=score,
        latency=90.0,
        reliability=80.0,
        performance=70.0,
        sufficient=sufficient,
        sessions=sessions,
        inputs={
            "sessions": sessions,
            "started": 8,
            "effective_ok": 6,
            "swaps": 1,
            "streams": 4,
            "p2ff_p95_ms": 1800.0,
            "output_fps_mean": 19.5,
            "jitter_mean": 0.05,
        },
        computed_at=window_end,
    )


def get(client: Client, path: str, **headers: str):
    return client.get(path, headers=headers)


# --- compliance ---------------------------------------------------------------------------------------


def test_compliance_returns_the_newest_stored_score_with_subscores_inputs_and_version() -> None:
    make_score(ORCH_A, 50.0, window_end=ANCHOR - timedelta(hours=1))
    make_score(ORCH_A, 77.5, window_end=ANCHOR)
    response = get(Client(), f"/v1/sla/compliance?orchestrator_id={ORCH_A.upper().replace('0X', '0x')}")
    assert response.status_code == 200
    body = response.json()
    assert body["orchestrator_id"] == ORCH_A
    [row] = body["data"]
    assert row["score"] == 77.5
    assert row["subscores"] == {"latency": 90.0, "reliability": 80.0, "performance": 70.0}
    assert row["inputs"]["p2ff_p95_ms"] == 1800.0
    assert row["scoring_version"] == 1
    assert row["sufficient"] is True
    assert row["window_end"].startswith("2026-01-09T14:00:00")


def test_compliance_marks_a_too_small_sample_as_insufficient() -> None:
    make_score(ORCH_A, None, window="1h", sessions=2, sufficient=False)
    body = get(Client(), f"/v1/sla/compliance?orchestrator_id={ORCH_A}&period=1h").json()
    assert body["data"][0]["sufficient"] is False
    assert body["data"][0]["score"] is None


def test_compliance_of_an_unknown_orchestrator_is_404() -> None:
    response = get(Client(), f"/v1/sla/compliance?orchestrator_id={ORCH_C}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("orchestrator_id=0x1234", "orchestrator_id"),
        (f"orchestrator_id={ORCH_A}&period=7d", "period"),
        ("", "orchestrator_id"),
    ],
)
def test_bad_compliance_parameters_are_422_naming_the_parameter(query: str, param: str) -> None:
    response = get(Client(), f"/v1/sla/compliance?{query}")
    assert response.status_code == 422
    body = response.json()
    assert body["param"] == param
    assert body["detail"].startswith(f"{param}: ")


# --- leaderboard --------------------------------------------------------------------------------------


def test_leaderboard_ranks_sufficient_scores_of_the_newest_window_best_first() -> None:
    make_score(ORCH_A, 60.0)
    make_score(ORCH_B, 90.0)
    make_score(ORCH_C, 99.0, sufficient=False)
    make_score(ORCH_C, 10.0, window_end=ANCHOR - timedelta(hours=1))  # older window: not shown
    body = get(Client(), "/v1/sla/leaderboard").json()
    assert [(r["rank"], r["address"], r["score"]) for r in body["data"]] == [
        (1, ORCH_B, 90.0),
        (2, ORCH_A, 60.0),
    ]
    first = body["data"][0]
    assert first["ens_name"] is None
    assert first["headline"] == {
        "output_fps": 19.5,
        "prompt_to_first_frame_p95_ms": 1800.0,
        "effective_success_ratio": 0.75,
        "swap_rate_pct": 25.0,
        "sessions": 10,
    }
    assert body["window_end"].startswith("2026-01-09T14:00:00")
    assert body["page"] == {"limit": 100, "offset": 0, "total": 2, "next": None}


def test_leaderboard_pages_follow_the_next_link_until_the_end() -> None:
    addresses = [f"0x{i:040x}" for i in range(1, 6)]
    for i, address in enumerate(addresses):
        make_score(address, 50.0 + i)
    client = Client()
    seen: list[str] = []
    url: str | None = f"/v1/sla/leaderboard?workflow={WORKFLOW}&limit=2"
    while url:
        body = get(client, url).json()
        seen += [r["address"] for r in body["data"]]
        assert body["page"]["total"] == 5
        url = body["page"]["next"]
    assert seen == list(reversed(addresses))


def test_leaderboard_filters_by_region_through_the_segments_served_there() -> None:
    make_score(ORCH_A, 60.0)
    make_score(ORCH_B, 90.0)
    session = Session.objects.create(stream_id="s1", request_id="r1", updated_at=ANCHOR)
    Segment.objects.create(
        session=session,
        ordinal=0,
        orchestrator=ORCH_A,
        region="eu-west",
        request_at=ANCHOR - timedelta(hours=3),
    )
    body = get(Client(), "/v1/sla/leaderboard?region=eu-west").json()
    assert [r["address"] for r in body["data"]] == [ORCH_A]


def test_leaderboard_limit_above_the_cap_is_422() -> None:
    response = get(Client(), "/v1/sla/leaderboard?limit=5000")
    assert response.status_code == 422
    assert response.json()["param"] == "limit"


# --- quality ------------------------------------------------------------------------------------------


def status_event(event_id: str, ts_ms: int) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "ai_stream_status",
        "timestamp": str(ts_ms),
        "gateway": "gw-1",
        "data": {"stream_id": "s", "request_id": "r", "pipeline": WORKFLOW, "inference_status": {"fps": 20}},
    }


def test_quality_counts_accepted_and_rejected_events_and_measures_lag_and_skew() -> None:
    # Publisher "late": events 10 s, 20 s and 30 s old on arrival. Publisher "fast": a clock 4 s ahead.
    late = [status_event(f"l{i}", ANCHOR_MS - s * 1000) for i, s in enumerate((10, 20, 30))]
    ingest_messages([Message(body=json.dumps(late), publisher="late")], source="test", received_at=ANCHOR)
    ahead = [status_event(f"f{i}", ANCHOR_MS + 4000) for i in range(2)]
    ingest_messages([Message(body=json.dumps(ahead), publisher="fast")], source="test", received_at=ANCHOR)
    ingest_messages([Message(body="{not json", publisher="late")], source="test", received_at=ANCHOR)

    start = (ANCHOR - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    end = (ANCHOR + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    response = get(Client(), f"/v1/sla/quality?from={start}&to={end}")
    assert response.status_code == 200
    body = response.json()
    assert body["accepted_total"] == 5
    assert body["rejected_total"] == 1
    assert {(c["publisher"], c["key"], c["count"]) for c in body["accepted"]} == {
        ("fast", "ai_stream_status", 2),
        ("late", "ai_stream_status", 3),
    }
    assert [(c["publisher"], c["key"], c["count"]) for c in body["rejected"]] == [
        ("late", "malformed_json", 1)
    ]
    lag = {row["publisher"]: row for row in body["lag"]}
    assert lag["late"]["events"] == 3
    assert lag["late"]["p50_s"] == pytest.approx(20.0)
    assert lag["late"]["max_s"] == pytest.approx(30.0)
    assert lag["fast"]["max_s"] == pytest.approx(0.0)  # early events are not late
    assert lag[None]["events"] == 5
    skew = {row["publisher"]: row for row in body["clock_skew"]}
    assert skew["fast"]["median_offset_s"] == pytest.approx(4.0)
    assert skew["fast"]["events_ahead"] == 2
    assert skew["late"]["median_offset_s"] == pytest.approx(-20.0)
    assert skew["late"]["events_ahead"] == 0


def test_quality_outside_the_window_is_empty_and_a_naive_time_is_422() -> None:
    ingest_messages(
        [Message(body=json.dumps(status_event("x", ANCHOR_MS)), publisher="p")],
        source="test",
        received_at=ANCHOR,
    )
    body = get(Client(), "/v1/sla/quality?from=2026-01-08T00:00:00Z&to=2026-01-08T01:00:00Z").json()
    assert body["accepted_total"] == 0
    response = get(Client(), "/v1/sla/quality?from=2026-01-08T00:00:00&to=2026-01-08T01:00:00Z")
    assert response.status_code == 422
    assert response.json()["param"] == "from"
    too_long = get(Client(), "/v1/sla/quality?from=2025-12-01T00:00:00Z&to=2026-01-08T01:00:00Z")
    assert too_long.status_code == 422


# --- HTTP rules: CORS, cache headers, ETag/304, rate limit ---------------------------------------------


def test_public_reads_send_cors_and_cache_headers_and_an_etag() -> None:
    make_score(ORCH_A, 60.0)
    response = get(Client(), "/v1/sla/leaderboard", Origin="https://example.org")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "public, max-age=60"
    assert response["ETag"].startswith('"') and len(response["ETag"]) == 34


def test_a_matching_if_none_match_gets_304_without_a_body() -> None:
    make_score(ORCH_A, 60.0)
    client = Client()
    first = get(client, "/v1/sla/leaderboard")
    again = get(client, "/v1/sla/leaderboard", If_None_Match=first["ETag"])
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == first["ETag"]
    assert again["Access-Control-Allow-Origin"] == "*"
    other = get(client, "/v1/sla/leaderboard", If_None_Match='"something-else"')
    assert other.status_code == 200
    assert other.content == first.content


def test_the_shared_cache_serves_the_same_body_until_it_expires(settings) -> None:
    make_score(ORCH_A, 60.0)
    client = Client()
    first = get(client, "/v1/sla/leaderboard")
    make_score(ORCH_B, 90.0)
    second = get(client, "/v1/sla/leaderboard")
    assert (first["X-Cache"], second["X-Cache"]) == ("miss", "hit")
    assert second.content == first.content
    settings.NAAP_API_RESPONSE_CACHE_S = 0  # no shared cache: the new score shows at once
    third = get(client, "/v1/sla/leaderboard")
    assert [r["address"] for r in third.json()["data"]] == [ORCH_B, ORCH_A]


def test_a_preflight_is_answered_with_cors_headers() -> None:
    response = Client().options("/v1/sla/leaderboard", headers={"Origin": "https://example.org"})
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response["Access-Control-Allow-Methods"]


def test_errors_are_not_cacheable() -> None:
    response = get(Client(), "/v1/sla/leaderboard?limit=0")
    assert response.status_code == 422
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_too_many_requests_from_one_ip_get_429_with_retry_after(settings, frozen_rate_clock) -> None:
    settings.NAAP_API_RATE_LIMIT = 3
    settings.NAAP_API_RATE_WINDOW_S = 60
    client = Client(REMOTE_ADDR="10.0.0.7")
    statuses = [client.get("/v1/sla/leaderboard").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/v1/sla/leaderboard")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    assert refused["X-RateLimit-Remaining"] == "0"
    # Another client has its own budget.
    assert Client(REMOTE_ADDR="10.0.0.8").get("/v1/sla/leaderboard").status_code == 200
    # When the window ends, the budget is whole again.
    frozen_rate_clock.moment += 45
    assert client.get("/v1/sla/leaderboard").status_code == 200
