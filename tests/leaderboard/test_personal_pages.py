"""/me: why my score is what it is, my failed and swapped sessions with timelines, network percentiles,
per-GPU lines; signed-in orchestrators (or their delegates) only."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from sla import personal
from sla.metrics import wilson_interval
from telemetry.access_models import Delegation
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    ADDR_STRANGER,
    KEY_A,
    KEY_STRANGER,
    NOW,
    build_network,
    clock,  # noqa: F401  (fixture)
    sign_in,
)
from tests.sla.rollup_factories import PIPE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def test_an_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/me")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/me"


def test_a_signed_in_address_that_is_no_orchestrator_is_refused_with_an_explanation():
    browser = sign_in(KEY_STRANGER)
    response = browser.get("/me")
    assert response.status_code == 403
    assert "not a known orchestrator" in response.content.decode()
    assert browser.get("/me/export/sessions.csv").status_code == 403


def test_the_page_explains_each_subscore_with_the_inputs_that_made_it():
    build_network()
    page = sign_in(KEY_A).get("/me", {"window": "1h"})
    assert page.status_code == 200
    (explanation,) = page.context["explanations"]
    stored = explanation.stored
    assert (stored.orchestrator, stored.workflow, stored.period, stored.window_end) == (
        ADDR_A,
        PIPE,
        "1h",
        NOW,
    )
    # 7 ended segments, 6 started (one never started), all 6 effective, 1 swap over 7 streams.
    assert stored.inputs["sessions"] == 7
    assert (stored.inputs["started"], stored.inputs["effective_ok"]) == (6, 6)
    reliability = {s.name: s for s in explanation.subscores}["reliability"]
    lower = wilson_interval(6, 6)[0]
    assert reliability.inputs["wilson_lower"] == pytest.approx(lower)
    assert reliability.inputs["swap_rate"] == pytest.approx(1 / 7)
    assert reliability.value == pytest.approx(100 * lower * (1 - 1 / 7), abs=1e-5)
    performance = {s.name: s for s in explanation.subscores}["performance"]
    assert performance.inputs["output_fps_mean"] == pytest.approx((30 * 20 + 3 * 10) / 33)
    # The stored score is reproduced exactly from the inputs shown.
    assert explanation.recomputed == pytest.approx(stored.score)
    html = page.content.decode()
    assert 'data-subscore="latency"' in html and "Wilson 95 % lower bound" in html


def test_failed_and_swapped_sessions_show_their_reasons_and_my_part_of_the_timeline():
    build_network()
    page = sign_in(KEY_A).get("/me", {"window": "1h"})
    problems = {row.stream_id: (row, events) for row, events in page.context["problems"]}
    assert set(problems) == {"a-only-failed", "shared-swap"}
    failed, _ = problems["a-only-failed"]
    assert (failed.outcome, failed.reason) == ("failed", "orchestrator")
    swapped, events = problems["shared-swap"]
    assert (swapped.outcome, swapped.reason) == ("swapped", "swapped away: timeout; unclean end")
    assert [e.kind for e in events] == [
        "gateway_receive_stream_request",
        "orchestrator_session_start",
        "orchestrator_swap",
    ]
    assert events[2].detail == "timeout"
    html = page.content.decode()
    assert "swapped away: timeout" in html and "orchestrator_swap" in html
    assert page.context["problem_total"] == 2 and page.context["session_total"] == 7


def test_my_values_are_placed_among_the_network_percentiles_of_the_same_workflow_and_region():
    build_network()
    page = sign_in(KEY_A).get("/me", {"window": "1h"})
    (comparison,) = page.context["comparisons"]
    assert (comparison.pipeline, comparison.region) == (PIPE, "eu")
    by_metric = {m.metric: m for m in comparison.metrics}
    fps = by_metric["output_fps"]
    mine = (30 * 20 + 3 * 10) / 33
    assert fps.mine == pytest.approx(mine)
    assert fps.orchestrators == 2
    # Nearest-rank percentiles over the two orchestrators' means [19.09, 30.0].
    assert fps.percentiles["p50"] == pytest.approx(mine)
    assert fps.percentiles["p90"] == pytest.approx(30.0)
    assert fps.rank_pct == pytest.approx(50.0)
    p2ff = by_metric["p2ff_p95_ms"]
    assert p2ff.mine is not None and p2ff.percentiles["p90"] > p2ff.mine  # B is slower
    assert p2ff.rank_pct == pytest.approx(100.0)


def test_the_gpu_breakdown_and_the_charts_cover_only_my_gpus():
    build_network()
    page = sign_in(KEY_A).get("/me", {"window": "1h"})
    gpus = {g.gpu_id: g for g in page.context["gpus"]}
    assert set(gpus) == {"gpu-a0", "gpu-a1"}
    assert gpus["gpu-a0"].rel.segments == 6 and gpus["gpu-a0"].rel.swaps == 1
    assert gpus["gpu-a1"].rel.segments == 1
    html = page.content.decode()
    figure = json.loads(
        re.search(r'<script id="fig-me-fps" type="application/json">(.*?)</script>', html).group(1)
    )
    (line,) = figure["data"]
    assert line["name"] == PIPE
    assert sum(1 for y in line["y"] if y is not None) >= 1
    assert 'data-live-streams="orchestrator:' in html


@pytest.mark.parametrize("window", ["1h", "24h", "7d"])
def test_every_window_choice_renders(window):
    build_network()
    page = sign_in(KEY_A).get("/me", {"window": window})
    assert page.status_code == 200
    assert page.context["window"].end - page.context["window"].start == personal.WINDOWS[window]
    assert page.context["session_total"] == 7


def test_a_delegate_sees_the_page_of_the_orchestrator_it_speaks_for():
    build_network()
    Delegation.objects.create(
        delegate=ADDR_STRANGER,
        orchestrator=ADDR_A,
        valid_until=NOW + timedelta(days=1),
        nonce="1",
        chain_id=42161,
        signature="0x00",
        created_at=NOW - timedelta(hours=2),
    )
    page = sign_in(KEY_STRANGER).get("/me", {"window": "1h"})
    assert page.status_code == 200
    assert page.context["op"].orchestrator == ADDR_A and page.context["op"].via_delegation
    assert "a delegate of this orchestrator" in page.content.decode()
