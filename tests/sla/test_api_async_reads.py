"""The public read middleware under ASGI (the production server): cache hits and 429s answered off the view thread."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from tests.sla.test_api_scores_and_quality import frozen_rate_clock  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
PATH = "/v1/sla/leaderboard?period=1h&workflow=streamdiffusion-sdxl"


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


def aget(path: str, **headers: str) -> Any:
    return async_to_sync(AsyncClient().get)(path, headers=headers)


def test_an_asgi_read_is_cached_and_the_second_one_is_a_hit_with_the_same_etag() -> None:
    first = aget(PATH)
    assert first.status_code == 200 and first["X-Cache"] == "miss"
    second = aget(PATH)
    assert second.status_code == 200 and second["X-Cache"] == "hit"
    assert second.content == first.content and second["ETag"] == first["ETag"]
    assert second["Access-Control-Allow-Origin"] == "*"
    assert int(second["X-RateLimit-Remaining"]) == int(first["X-RateLimit-Remaining"]) - 1
    assert aget(PATH, **{"If-None-Match": first["ETag"]}).status_code == 304


@pytest.mark.usefixtures("frozen_rate_clock")
def test_an_asgi_client_over_the_limit_gets_429_with_retry_after(settings: Any) -> None:
    settings.NAAP_API_RATE_LIMIT = 2
    settings.NAAP_API_RATE_WINDOW_S = 60
    assert [aget(PATH).status_code for _ in range(3)] == [200, 200, 429]
    refused = aget(PATH)
    assert refused.status_code == 429 and refused["Retry-After"] == "45"


def test_an_asgi_422_is_not_cached() -> None:
    bad = aget("/v1/sla/gpu/metrics?interval=7m")
    assert bad.status_code == 422 and bad["Cache-Control"] == "no-store"
    assert "X-Cache" not in bad
