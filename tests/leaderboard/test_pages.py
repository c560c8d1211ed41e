"""Pages render stored scores server-side: values with units, ranks, sorting and filters in the URL."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client

from tests.conftest import ANCHOR
from tests.leaderboard.conftest import WORKFLOW, address

pytestmark = pytest.mark.django_db


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-address="(0x[0-9a-f]{40})"', html)


def test_leaderboard_ranks_orchestrators_by_score_with_their_numbers(client: Client, make_score) -> None:
    make_score(
        address(1), 71.5, fps=18.25, p2ff_p95_ms=2400.0, effective_ok=15, started=20, swaps=2, streams=10
    )
    make_score(address(2), 92.25, fps=24.0, sessions=30)
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert _rows(html) == [address(2), address(1)]
    first = html.split(f'data-address="{address(1)}"')[1].split("</tr>")[0]
    assert ">71.5<" in first
    assert ">18.2<" in first or ">18.3<" in first  # 18.25 rounds half-even or half-up: both are honest
    assert ">2,400<" in first and "ms" in first
    assert ">75.0<" in first  # effective success 15/20
    assert ">20.0<" in first  # swap rate 2/10
    # the 95% Wilson interval of 15/20 is 53.1%–88.8%
    assert ">53.1<" in first and ">88.8<" in first
    assert 'title="95% Wilson interval"' in first


def test_leaderboard_shows_short_addresses_and_links_to_orchestrator_pages(
    client: Client, make_score
) -> None:
    make_score(address(0xABC), 80.0)
    html = client.get("/").content.decode()
    assert f'href="/orchestrators/{address(0xABC)}"' in html
    assert "0x0000…0abc" in html


def test_leaderboard_sorts_by_a_column_chosen_in_the_url(client: Client, make_score) -> None:
    make_score(address(1), 90.0, fps=10.0)
    make_score(address(2), 80.0, fps=30.0)
    make_score(address(3), 70.0, fps=20.0)
    html = client.get("/?sort=fps&dir=desc").content.decode()
    assert _rows(html) == [address(2), address(3), address(1)]
    html = client.get("/?sort=fps&dir=asc").content.decode()
    assert _rows(html) == [address(1), address(3), address(2)]
    # the header links flip the direction of the current sort and keep the other choices
    assert 'href="?sort=fps&amp;dir=asc"' in client.get("/?sort=fps&dir=desc").content.decode()


def test_leaderboard_filters_by_workflow_and_window_from_the_query(client: Client, make_score) -> None:
    make_score(address(1), 90.0, workflow="comfyui")
    make_score(address(2), 80.0)
    make_score(address(3), 60.0, window="1h")
    assert _rows(client.get("/?workflow=comfyui").content.decode()) == [address(1)]
    assert _rows(client.get(f"/?workflow={WORKFLOW}").content.decode()) == [address(2)]
    assert _rows(client.get("/?window=1h").content.decode()) == [address(3)]
    html = client.get("/?workflow=comfyui").content.decode()
    assert '<option value="comfyui" selected>' in html


def test_leaderboard_uses_the_newest_scored_window(client: Client, make_score) -> None:
    make_score(address(1), 90.0, window_end=ANCHOR - timedelta(hours=1))
    make_score(address(2), 50.0, window_end=ANCHOR)
    assert _rows(client.get("/").content.decode()) == [address(2)]


def test_an_empty_leaderboard_says_so(client: Client) -> None:
    html = client.get("/").content.decode()
    assert "No orchestrator has data for this choice yet." in html


def test_orchestrator_page_embeds_its_series_for_the_charts(client: Client, make_score) -> None:
    a = address(7)
    for hours, value in ((3, 60.0), (2, 65.0), (1, 70.0), (0, 75.0)):
        make_score(a, value, window="1h", window_end=ANCHOR - timedelta(hours=hours), fps=20.0 + hours)
    response = client.get(f"/orchestrators/{a}")
    assert response.status_code == 200
    html = response.content.decode()
    figure = json.loads(
        re.search(r'<script id="fig-score" type="application/json">(.*?)</script>', html, re.S)[1]
    )
    assert figure["data"][0]["name"] == WORKFLOW
    assert figure["data"][0]["y"] == [60.0, 65.0, 70.0, 75.0]
    fps = json.loads(re.search(r'<script id="fig-fps" type="application/json">(.*?)</script>', html, re.S)[1])
    assert fps["data"][0]["y"] == [23.0, 22.0, 21.0, 20.0]
    assert '<script src="/static/vendor/plotly.min.js">' in html
    assert 'data-live-streams="orchestrator:' + a + '"' in html


def test_orchestrator_page_accepts_a_mixed_case_address_by_redirecting(client: Client, make_score) -> None:
    a = address(0xABCDEF)
    make_score(a, 70.0)
    response = client.get("/orchestrators/" + a.upper().replace("0X", "0x"))
    assert response.status_code == 302
    assert response["Location"] == f"/orchestrators/{a}"


def test_unknown_orchestrators_and_garbage_are_not_found(client: Client) -> None:
    assert client.get(f"/orchestrators/{address(99)}").status_code == 404
    assert client.get("/orchestrators/not-an-address").status_code == 404
    assert client.get("/orchestrators/nobody.eth").status_code == 404


def test_orchestrator_page_shows_insufficient_data_as_such(client: Client, make_score) -> None:
    a = address(5)
    make_score(a, None, sessions=2, sufficient=False)
    html = client.get(f"/orchestrators/{a}").content.decode()
    assert "insufficient data" in html


def test_network_page_counts_scored_orchestrators(client: Client, make_score) -> None:
    make_score(address(1), 90.0)
    make_score(address(2), 80.0, sessions=7)
    html = client.get("/network").content.decode()
    assert re.search(r'data-live="scored_orchestrators"[^>]*>2<', html)
    assert re.search(r'data-live="sessions"[^>]*>27<', html)


def test_quality_page_renders_its_tables_without_javascript(client: Client) -> None:
    html = client.get("/quality").content.decode()
    assert '<table class="data" id="rejected">' in html
    assert "Clock skew per publisher" in html


def test_methodology_renders_the_metric_definitions_document(client: Client, make_score, settings) -> None:
    from pathlib import Path

    make_score(address(1), 88.0, version=1)
    source = (Path(settings.BASE_DIR) / "docs" / "metrics.md").read_text()
    first_heading = next(line for line in source.splitlines() if line.startswith("# ")).lstrip("# ").strip()
    html = client.get("/methodology").content.decode()
    assert first_heading.split(" (")[0] in html
    in_force = html.split('<section id="scoring-in-force">')[1].split("</section>")[0]
    assert "scoring version <strong>" not in in_force
    assert "<strong>scoring version 1</strong> (newest 24h window ending" in in_force
    assert f"Example: {address(1)} on {WORKFLOW} scored 88.00" in in_force
    assert "Reproduce this score" in in_force


def test_methodology_says_so_when_no_score_has_been_computed(client: Client) -> None:
    html = client.get("/methodology").content.decode()
    in_force = html.split('<section id="scoring-in-force">')[1].split("</section>")[0]
    assert "No scores have been computed yet." in in_force
    assert "<strong>scoring version" not in in_force


# --- pages over real rollups (sessions → segments → rollups, then stored scores) ---------------------------

HOUR = timedelta(hours=1)
ORCH_A, ORCH_B = address(0xA), address(0xB)


def _figure(html: str, fig_id: str) -> dict:
    found = re.search(rf'<script id="{fig_id}" type="application/json">(.*?)</script>', html, re.S)
    assert found, fig_id
    return json.loads(found[1])


def _table(html: str, table_id: str) -> list[list[str]]:
    """The text of each body row's cells (tags stripped) of one table."""
    body = html.split(f'id="{table_id}"')[1].split("</table>")[0].split("<tbody>")[1]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows]
    return [[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in row] for row in cells]


@pytest.fixture
def served() -> None:
    """Orchestrator A serves three sessions (a clean one, one swapped away for capacity on another workflow,
    region and GPU, one failed by an orchestrator error); B takes over the swapped one."""
    from sla.refresh import refresh
    from tests.sla.rollup_factories import SegSpec, make_session, mark_dirty

    a100 = "NVIDIA A100"
    make_session(
        "s1",
        segments=(SegSpec(orchestrator=ORCH_A, fps={0: [20, 20, 20]}, p2ff_ms=1000.0, e2e_ms=400.0),),
    )
    make_session(
        "s2",
        "r2",
        request_at=ANCHOR + timedelta(minutes=3),
        pipeline="streamdiffusion",
        segments=(
            SegSpec(
                orchestrator=ORCH_A,
                gpu_id="gpu-1",
                gpu_type=a100,
                region="us-east",
                fps={0: [10, 10, 10]},
                swapped_away=True,
                swap_reason="capacity",
            ),
            SegSpec(orchestrator=ORCH_B, offset_s=20),
        ),
    )
    make_session(
        "s3",
        "r3",
        request_at=ANCHOR + timedelta(minutes=10),
        outcome="failed",
        segments=(
            SegSpec(
                orchestrator=ORCH_A,
                ended_cleanly=False,
                error_class="orchestrator",
                p2ff_ms=3000.0,
                e2e_ms=800.0,
            ),
        ),
    )
    mark_dirty(ANCHOR - HOUR, ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 4 * HOUR)


def test_unranked_orchestrators_are_listed_after_the_ranked_ones_as_insufficient_data(
    client: Client, make_score
) -> None:
    make_score(address(1), 90.0, fps=10.0)
    make_score(address(2), None, sessions=2, started=2, effective_ok=2, sufficient=False, fps=50.0)
    make_score(address(3), 70.0, fps=30.0)
    html = client.get("/").content.decode()
    assert _rows(html) == [address(1), address(3), address(2)]
    unranked = html.split(f'data-address="{address(2)}"')[1].split("</tr>")[0]
    assert unranked.split(">")[0].endswith('class="insufficient"')
    assert "insufficient data" in unranked
    assert '<span data-live="rank">–</span>' in unranked
    assert ">2<" in unranked  # its sample size is shown
    # whatever the sort, unranked rows stay after the ranked ones
    assert _rows(client.get("/?sort=fps&dir=desc").content.decode()) == [address(3), address(1), address(2)]


def test_a_newer_version_that_is_insufficient_hides_the_older_sufficient_score(
    client: Client, make_score
) -> None:
    make_score(address(1), 80.0, version=1)
    make_score(address(1), None, version=2, sessions=3, sufficient=False)
    html = client.get("/").content.decode()
    assert _rows(html) == [address(1)]
    assert "insufficient data" in html.split(f'data-address="{address(1)}"')[1].split("</tr>")[0]


def test_dropdowns_list_every_region_and_workflow_seen_and_the_region_filter_applies(
    client: Client, make_score, served: None
) -> None:
    make_score(ORCH_A, 80.0, window_end=ANCHOR + HOUR)
    make_score(ORCH_B, None, sessions=1, sufficient=False, window_end=ANCHOR + HOUR)
    html = client.get("/").content.decode()
    region_select = html.split('name="region"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]+)"', region_select) == ["all", "eu", "us-east"]
    workflow_select = html.split('name="workflow"')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]+)"', workflow_select) == ["all", "streamdiffusion", WORKFLOW]
    assert _rows(html) == [ORCH_A, ORCH_B]
    assert _rows(client.get("/?region=us-east").content.decode()) == [ORCH_A]
    assert _rows(client.get("/?region=eu").content.decode()) == [ORCH_A, ORCH_B]
    assert '<option value="us-east" selected>' in client.get("/?region=us-east").content.decode()


def test_orchestrator_page_shows_reasons_gpus_workflows_and_recent_sessions(
    client: Client, make_score, served: None
) -> None:
    make_score(ORCH_A, 80.0, window_end=ANCHOR + HOUR)
    html = client.get(f"/orchestrators/{ORCH_A}").content.decode()
    failures = dict(_table(html, "failure-reasons"))
    assert failures == {"orchestrator": "1", "network": "0", "unknown": "0", "client errors": "0"}
    assert _table(html, "swap-reasons") == [["capacity", "1"]]
    served_workflows = _table(html, "workflows-served")
    assert [(r[0], r[1], r[2]) for r in served_workflows] == [
        ("streamdiffusion", "1", "10.0 fps"),
        (WORKFLOW, "2", "20.0 fps"),
    ]
    assert (
        served_workflows[1][3] == "50.0 %"
    )  # effective success: 1 of 2 started without an orchestrator error
    assert _table(html, "gpus-served") == [
        ["gpu-0", "NVIDIA GeForce RTX 4090", "eu", WORKFLOW, "20.0 fps", "2"],
        ["gpu-1", "NVIDIA A100", "us-east", "streamdiffusion", "10.0 fps", "1"],
    ]
    recent = _table(html, "recent-sessions")
    assert [(r[0][11:16], r[1], r[4], r[5], r[7]) for r in recent] == [
        ("14:10", "s3", "failed · orchestrator error", "3,000 ms", "0"),
        ("14:03", "s2", "ok · swapped away (capacity)", "900 ms", "1"),
        ("14:00", "s1", "ok", "1,000 ms", "0"),
    ]


def test_orchestrator_charts_show_latency_percentiles_success_and_swap_rate_per_hour(
    client: Client, make_score, served: None
) -> None:
    make_score(ORCH_A, 80.0, window_end=ANCHOR + HOUR)
    html = client.get(f"/orchestrators/{ORCH_A}").content.decode()
    p2ff = _figure(html, "fig-p2ff")
    assert [t["name"] for t in p2ff["data"]] == ["p50", "p95", "p99"]
    assert p2ff["data"][0]["x"] == [ANCHOR.isoformat()]
    # P2FF of A's segments: 1000, 900, 3000 ms; the histogram keeps each within 5 %
    assert p2ff["data"][0]["y"][0] == pytest.approx(1000, rel=0.05)
    assert p2ff["data"][2]["y"][0] == pytest.approx(3000, rel=0.05)
    e2e = _figure(html, "fig-e2e")
    assert e2e["data"][2]["y"][0] == pytest.approx(800, rel=0.05)
    success = _figure(html, "fig-success")
    assert success["data"][0]["name"] == "effective success"
    assert success["data"][0]["y"] == [pytest.approx(2 / 3)]
    swap = _figure(html, "fig-swap")
    assert swap["data"][0]["y"] == [pytest.approx(1 / 3)]  # one swap over three streams


@pytest.fixture
def demand() -> None:
    """Two attempts of stream s1 on A (2 inference minutes), s2 refused for lack of capacity, s3 on B failing
    without output; fees on r1 and r2; A advertises 4 slots for 5 minutes (20 slot-minutes)."""
    from sla.refresh import refresh
    from tests.sla.rollup_factories import SegSpec, capability, make_session, mark_dirty, payment

    make_session(
        "s1",
        segments=(
            SegSpec(orchestrator=ORCH_A, fps={0: [20] * 3, 1: [20] * 3}, output_seconds={0: 30.0, 1: 60.0}),
        ),
    )
    make_session(
        "s1",
        "r2",
        request_at=ANCHOR + timedelta(minutes=5),
        segments=(SegSpec(orchestrator=ORCH_A, fps={5: [20] * 3}),),
    )
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
    capability(ANCHOR, ORCH_A, 4)
    mark_dirty(ANCHOR - HOUR, ANCHOR + 3 * HOUR)
    refresh(ANCHOR + 4 * HOUR)


def test_network_page_charts_real_demand(client: Client, demand: None) -> None:
    html = client.get("/network").content.decode()
    hours = [ANCHOR.isoformat(), (ANCHOR + HOUR).isoformat()]
    streams = _figure(html, "fig-streams")["data"][0]
    assert (streams["x"], streams["y"]) == (
        hours,
        [3, 0],
    )  # s1 (twice requested), s2 and s3 in the first hour
    minutes = _figure(html, "fig-minutes")["data"][0]
    assert minutes["y"] == [pytest.approx((30 + 60 + 30) / 60), 0.0]
    capacity = _figure(html, "fig-capacity")["data"][0]
    assert capacity["y"] == [pytest.approx(2.0 / 20.0), None]
    assert _figure(html, "fig-missing")["data"][0]["y"] == [1, 0]
    assert _figure(html, "fig-fees")["data"][0]["y"] == [pytest.approx(0.002400000000000001), 0.0]
    heat = _figure(html, "fig-heatmap")["data"][0]
    assert (heat["x"], heat["y"]) == ([WORKFLOW], ["(unknown)", "eu"])
    assert heat["z"] == [[0.0], [pytest.approx(2.0)]]
    assert _table(html, "gpu-types") == [["NVIDIA GeForce RTX 4090", "2.0 min"]]
    assert re.search(r'data-live="active_orchestrators"[^>]*>1<', html)  # B produced no output
    assert re.search(r'data-live="missing_capacity"[^>]*>1<', html)
