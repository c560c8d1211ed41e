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
