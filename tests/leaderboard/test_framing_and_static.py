"""Only embeds may be framed (by the configured origins); Plotly is served from the installed package."""

from __future__ import annotations

from pathlib import Path

import plotly
import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.leaderboard.conftest import address

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/network", "/quality", "/methodology", "/healthz"])
def test_normal_pages_refuse_to_be_framed(client: Client, path: str) -> None:
    response = client.get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/embed/leaderboard", "/embed/network"])
def test_embeds_may_be_framed_by_the_explorer_by_default(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert response["Content-Security-Policy"] == "frame-ancestors https://explorer.livepeer.org"


def test_embed_frame_ancestors_follow_the_setting(client: Client, settings) -> None:
    settings.NAAP_EMBED_FRAME_ANCESTORS = ["https://a.example", "http://127.0.0.1:9999"]
    response = client.get("/embed/leaderboard")
    assert response["Content-Security-Policy"] == "frame-ancestors https://a.example http://127.0.0.1:9999"


def test_embeds_have_no_site_chrome_and_honour_theme_and_columns(client: Client, make_score) -> None:
    make_score(address(1), 90.0)
    html = client.get("/embed/leaderboard?theme=dark&columns=score,fps").content.decode()
    assert 'data-theme="dark"' in html
    assert "site-header" not in html
    assert 'data-col="score"' in html and 'data-col="fps"' in html and 'data-col="name"' in html
    assert 'data-col="p2ff_p95_ms"' not in html
    assert 'target="_blank"' in html  # links open the full site, not inside the frame


def test_orchestrator_embed_renders_its_summary(client: Client, make_score) -> None:
    make_score(address(3), 77.0)
    response = client.get(f"/embed/orchestrators/{address(3)}")
    assert response.status_code == 200
    assert ">77.0<" in response.content.decode()


def test_plotly_bundle_is_found_in_the_installed_plotly_package() -> None:
    found = finders.find("vendor/plotly.min.js")
    expected = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert Path(found) == expected
    assert not (Path(__file__).parents[2] / "static" / "vendor").exists()  # never a vendored copy


def test_collectstatic_lists_the_plotly_bundle() -> None:
    from leaderboard.staticfinders import PlotlyFinder

    listed = [(path, storage.prefix) for path, storage in PlotlyFinder().list(None)]
    assert listed == [("plotly.min.js", "vendor")]


def _asgi_get(path: str) -> dict:
    """One GET through the production ASGI application (no test-only static handler in front of it)."""
    import asyncio

    from asgiref.testing import ApplicationCommunicator

    from naap_site.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def get() -> dict:
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await app.receive_output(timeout=30)
        body = b""
        while True:
            chunk = await app.receive_output(timeout=30)
            body += chunk.get("body", b"")
            if not chunk.get("more_body", False):
                break
        await app.wait(timeout=5)
        return {"status": start["status"], "headers": start["headers"], "body": body}

    return asyncio.run(get())


@pytest.mark.django_db(transaction=True)
def test_the_asgi_application_serves_the_plotly_bundle_and_site_files_itself() -> None:
    response = _asgi_get("/static/vendor/plotly.min.js")
    assert response["status"] == 200
    expected = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()
    assert response["body"] == expected
    headers = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    assert headers["content-type"].startswith("text/javascript") or "javascript" in headers["content-type"]
    site_js = _asgi_get("/static/leaderboard/site.js")
    assert site_js["status"] == 200 and b"connectLive" in site_js["body"]
    assert _asgi_get("/static/vendor/nothing.js")["status"] == 404
