"""The pages in real headless Chromium: data, sorting, filters, live updates, charts and embeds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from leaderboard.tasks import broadcast_all
from tests.browser.conftest import SCREENSHOTS
from tests.conftest import ANCHOR
from tests.leaderboard.conftest import WORKFLOW, address

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def broadcast() -> int:
    """What the broadcast task does after a refresh; in a thread, as a worker would (Playwright's sync API
    keeps an event loop in the test thread, where async_to_sync may not run)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(broadcast_all).result(timeout=30)


def _addresses(page) -> list[str]:
    return page.eval_on_selector_all(
        "#leaderboard-table tbody tr[data-address]", "rs => rs.map(r => r.dataset.address)"
    )


def test_leaderboard_renders_sorts_and_filters(asgi_server, browser_page, make_score) -> None:
    page = browser_page
    make_score(address(1), 91.0, fps=12.0)
    make_score(address(2), 72.0, fps=28.0)
    make_score(address(3), 85.0, fps=20.0, workflow="comfyui")
    page.goto(asgi_server + "/")
    assert _addresses(page) == [address(1), address(3), address(2)]
    assert page.inner_text(f'tr[data-address="{address(1)}"] [data-live="score"]') == "91.0"

    page.click('th[data-col="fps"] a')  # client-side sort, highest first
    assert _addresses(page) == [address(2), address(3), address(1)]
    assert "sort=fps" in page.url
    page.click('th[data-col="fps"] a')
    assert _addresses(page) == [address(1), address(3), address(2)]
    page.screenshot(path=str(SCREENSHOTS / "leaderboard.png"), full_page=True)

    page.select_option('select[name="workflow"]', "comfyui")  # applies on change, kept in the URL
    page.wait_for_url("**workflow=comfyui**")
    assert _addresses(page) == [address(3)]

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(asgi_server + "/")
    assert page.is_visible("#leaderboard-table")
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-phone.png"), full_page=True)


def test_a_live_update_changes_the_leaderboard_without_reload(asgi_server, browser_page, make_score) -> None:
    page = browser_page
    score = make_score(address(1), 60.0)
    make_score(address(2), 80.0)
    page.goto(asgi_server + f"/?workflow={WORKFLOW}")
    page.wait_for_selector('#live-status[data-state="live"]')
    broadcast()  # first broadcast: establishes the snapshot
    page.wait_for_function("document.body.dataset.liveUpdates === '1'")
    page.evaluate("window.__marker = 'same page'")

    score.score = 97.5  # the next score run moves orchestrator 1 to the top
    score.save()
    assert broadcast() == 1
    page.wait_for_function(
        f"document.querySelector('tr[data-address=\"{address(1)}\"] [data-live=\"score\"]').textContent === '97.5'"
    )
    assert _addresses(page) == [address(1), address(2)]
    assert page.evaluate("window.__marker") == "same page"  # no reload happened
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-live.png"), full_page=True)


def test_orchestrator_page_draws_its_charts(asgi_server, browser_page, make_score) -> None:
    page = browser_page
    a = address(7)
    for hours in range(6):
        make_score(
            a, 60.0 + hours, window="1h", window_end=ANCHOR - timedelta(hours=5 - hours), fps=20.0 + hours
        )
    page.goto(asgi_server + f"/orchestrators/{a}")
    page.wait_for_selector('#fig-score-div[data-drawn="1"]')
    page.wait_for_selector('#fig-fps-div[data-drawn="1"]')
    assert page.locator("#fig-score-div .main-svg").count() > 0
    points = page.evaluate("document.getElementById('fig-score-div').data[0].y")
    assert points == [60.0, 61.0, 62.0, 63.0, 64.0, 65.0]
    page.screenshot(path=str(SCREENSHOTS / "orchestrator.png"), full_page=True)


def test_other_pages_render(asgi_server, browser_page, make_score) -> None:
    page = browser_page
    make_score(address(1), 90.0)
    for path, name in (("/network", "network"), ("/quality", "quality")):
        response = page.goto(asgi_server + path)
        assert response.status == 200
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_embed_renders_in_a_frame_of_another_origin_and_a_normal_page_refuses(
    asgi_server, browser_page, other_origin, make_score, settings
) -> None:
    page = browser_page
    make_score(address(1), 88.0)
    settings.NAAP_EMBED_FRAME_ANCESTORS = [other_origin.origin]
    url = other_origin(
        "/explorer.html",
        f"""<!doctype html><html><body><h1>Explorer</h1>
        <iframe id="embed" src="{asgi_server}/embed/leaderboard?theme=dark" width="800" height="400"></iframe>
        <iframe id="normal" src="{asgi_server}/" width="800" height="400"></iframe>
        </body></html>""",
    )
    page.goto(url)
    embed = page.frame_locator("#embed")
    embed.locator(f'tr[data-address="{address(1)}"]').wait_for()
    assert embed.locator('[data-live="score"]').first.inner_text() == "88.0"
    page.wait_for_timeout(500)
    normal = next(f for f in page.frames if f != page.main_frame and "/embed/" not in f.url)
    # a refused frame shows the browser's error page, never our document
    assert (
        normal.url.startswith("chrome-error://")
        or normal.evaluate("document.querySelector('#leaderboard-table')") is None
    )
    page.screenshot(path=str(SCREENSHOTS / "embed-in-explorer.png"), full_page=True)


def in_worker(fn, *args):
    """Run fn in another thread, as a Celery worker would (the test thread holds Playwright's event loop)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result(timeout=120)


def ingest_and_run_pipeline(events: list[dict]) -> None:
    """The real path: raw ingest → facts → sessions → rollups → scores → refresh_completed → broadcast."""
    import json

    from django.db import connection

    from sla.tasks import run_pipeline
    from telemetry.pipeline.ingest import Message, ingest_messages

    try:
        result = ingest_messages([Message(body=json.dumps(events))], source="test")
        assert result.accepted > 0, result
        run_pipeline(ANCHOR + timedelta(hours=1))
    finally:
        connection.close()


def _shown(page) -> dict[str, str]:
    return dict(
        page.eval_on_selector_all(
            "#leaderboard-table tbody tr[data-row]",
            "rs => rs.map(r => [r.dataset.row, r.querySelector('[data-live=\"sessions\"]').textContent])",
        )
    )


def _stored() -> dict[str, str]:
    """Sessions per row of the newest 24 h window, as the sla queries report them."""
    from sla import page_queries
    from sla import queries as sla

    end = sla.latest_window_end("24h")
    scores = sla.ranked_scores("24h", end, None, None) + page_queries.unranked_scores("24h", end, None, None)
    return {f"{s.orchestrator}|{s.workflow}": f"{s.sessions:,}" for s in scores}


def test_a_live_update_arrives_after_a_real_ingest(
    asgi_server, browser_page, eager_celery, scoring_v1
) -> None:
    from telemetry.simulator import SimConfig, Simulation

    page = browser_page
    config = SimConfig(
        seed=11,
        start=ANCHOR,
        duration_s=16 * 60,
        orchestrators=3,
        gateways=1,
        p_duplicate=0.0,
        p_late=0.0,
        hours_late_sessions=0,
    )
    delivered = list(Simulation(config).run())
    cut = config.start_ms + 8 * 60_000
    first = [d.event for d in delivered if d.at_ms < cut]
    second = [d.event for d in delivered if d.at_ms >= cut]

    in_worker(ingest_and_run_pipeline, first)
    page.goto(asgi_server + "/")
    page.wait_for_selector('#live-status[data-state="live"]')
    before = _shown(page)
    assert before and before == in_worker(_stored)
    page.evaluate("window.__marker = 'same page'")

    in_worker(ingest_and_run_pipeline, second)  # the pipeline's signal triggers the broadcast
    page.wait_for_function("Number(document.body.dataset.liveUpdates || 0) >= 1", timeout=30_000)
    after = in_worker(_stored)
    for _ in range(100):  # the delta is applied by the page's script: poll what the page shows
        if _shown(page) == after:
            break
        page.wait_for_timeout(100)
    assert _shown(page) == after
    assert after != before  # the second half of the traffic changed the numbers
    assert page.evaluate("window.__marker") == "same page"  # no reload happened
    # ranked rows are in the order a fresh load shows, unranked ones after them, labelled as such
    fresh = page.context.new_page()
    fresh.goto(asgi_server + "/")
    ranked_js = (
        "rs => rs.filter(r => !r.classList.contains('insufficient')).map(r => "
        "[r.dataset.row, r.querySelector('[data-live=\"rank\"]').textContent, "
        'r.querySelector(\'td[data-field="score"] > [data-live="score"]\').textContent])'
    )
    rows = "#leaderboard-table tbody tr[data-row]"
    live_ranked = page.eval_on_selector_all(rows, ranked_js)
    assert live_ranked and live_ranked == fresh.eval_on_selector_all(rows, ranked_js)
    assert all(int(after[key]) >= 5 for key, _, _ in live_ranked)  # scoring v1 ranks from 5 sessions
    unranked = page.eval_on_selector_all(
        rows + ".insufficient", "rs => rs.map(r => r.querySelector('.insufficient-label').hidden)"
    )
    assert unranked and not any(unranked)
    order = page.eval_on_selector_all(rows, "rs => rs.map(r => r.classList.contains('insufficient'))")
    assert order == sorted(order)  # every unranked row after every ranked one

    # the best orchestrator's page draws latency percentiles from the rollups and lists its sessions
    best = live_ranked[0][0].split("|")[0]
    fresh.goto(asgi_server + f"/orchestrators/{best}")
    fresh.wait_for_selector('#fig-p2ff-div[data-drawn="1"]')
    p50 = fresh.evaluate("document.getElementById('fig-p2ff-div').data[0].y")
    assert any(v is not None and v > 0 for v in p50)
    assert fresh.locator("#recent-sessions tbody tr").count() >= 5
    fresh.screenshot(path=str(SCREENSHOTS / "orchestrator-after-ingest.png"), full_page=True)
    fresh.close()
    page.screenshot(path=str(SCREENSHOTS / "leaderboard-after-ingest.png"), full_page=True)
