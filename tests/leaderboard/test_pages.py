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
    assert "scoring version 1" in html
    assert "Reproduce this score" in html
