"""The public API serves concurrent reads concurrently under ASGI, and names come through sla.names."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.core import signals
from django.db import close_old_connections, connection
from django.test import AsyncClient, Client
from django.utils.module_loading import import_string

from sla import http, names, queries
from tests.sla.test_api_scores_and_quality import (
    ORCH_A,
    ORCH_B,
    WORKFLOW,
    frozen_rate_clock,  # noqa: F401  (fixture)
    make_score,
)

MEET_TIMEOUT_S = 10.0
PARALLEL = 4


@pytest.fixture(autouse=True)
def _own_cache_namespace(settings: Any) -> None:
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the production path (database work on worker threads) although tests run without the pool."""
    monkeypatch.setattr(http, "_pool_size", lambda: PARALLEL)


def test_every_middleware_in_the_chain_is_async_capable() -> None:
    sync_only = [
        path
        for path in django_settings.MIDDLEWARE
        if not getattr(import_string(path), "async_capable", False)
    ]
    assert sync_only == []


@pytest.mark.django_db
def test_slow_reads_from_several_asgi_clients_overlap_instead_of_queueing(
    settings: Any, monkeypatch: pytest.MonkeyPatch, pooled: None
) -> None:
    settings.NAAP_API_RESPONSE_CACHE_S = 0
    # Each read waits inside its query until all PARALLEL reads are inside theirs: that can only happen if
    # they run at the same time. Served one at a time, the first would wait alone until the timeout.
    inside = threading.Barrier(PARALLEL)
    met: list[bool] = []

    def slow_latest(period: str, workflow: str | None = None) -> None:
        try:
            inside.wait(
                timeout=MEET_TIMEOUT_S
            )  # stands for a slow query; holds no lock, like a database wait
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)
        return None

    monkeypatch.setattr(queries, "latest_window_end", slow_latest)

    async def together() -> list[int]:
        client = AsyncClient()
        assert (await client.get("/v1/sla/gpu/metrics?interval=7m")).status_code == 422  # loads the chain
        replies = await asyncio.gather(
            *(client.get(f"/v1/sla/leaderboard?offset={i}") for i in range(PARALLEL))
        )
        return [r.status_code for r in replies]

    assert async_to_sync(together)() == [200] * PARALLEL
    assert met and all(met), met  # every read met the others inside its query


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        row = cursor.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.django_db(transaction=True)
def test_reads_on_worker_threads_see_committed_scores_and_give_their_connections_back(
    settings: Any, pooled: None
) -> None:
    settings.NAAP_API_RESPONSE_CACHE_S = 0
    make_score(ORCH_A, 91.0)
    make_score(ORCH_B, 72.5)
    before = _backends()

    async def many() -> list[Any]:
        client = AsyncClient()
        paths = [f"/v1/sla/leaderboard?workflow={WORKFLOW}&offset={i % 2}" for i in range(8)]
        return list(await asyncio.gather(*(client.get(p) for p in paths)))

    replies = async_to_sync(many)()
    assert {r.status_code for r in replies} == {200}
    first = next(r.json() for r in replies if r.json()["page"]["offset"] == 0)
    assert [(row["address"], row["score"]) for row in first["data"]] == [(ORCH_A, 91.0), (ORCH_B, 72.5)]
    assert _backends() <= before  # every worker thread closed (or pooled) the connection it used


@pytest.mark.django_db
def test_the_leaderboard_takes_names_from_the_registered_provider(client: Client) -> None:
    make_score(ORCH_A, 91.0)
    asked: list[list[str]] = []

    def provider(addresses: Any) -> dict[str, str]:
        wanted = list(addresses)
        asked.append(wanted)
        return {ORCH_A: "alice.eth"} if ORCH_A in wanted else {}

    previous = names.name_provider()
    names.set_name_provider(provider)
    try:
        row = client.get(f"/v1/sla/leaderboard?workflow={WORKFLOW}").json()["data"][0]
    finally:
        names.set_name_provider(previous)
    assert row["ens_name"] == "alice.eth"
    assert asked == [[ORCH_A]]


def test_without_a_provider_no_address_has_a_name() -> None:
    previous = names.name_provider()
    names.set_name_provider(None)
    try:
        assert names.names_for([ORCH_A]) == {}
    finally:
        names.set_name_provider(previous)


def test_the_leaderboard_app_registers_its_ens_lookup() -> None:
    from leaderboard.ens import names_for

    assert names.name_provider() is names_for


class CountingApp:
    """The Django ASGI app, counting the requests that reach it."""

    def __init__(self) -> None:
        from naap_site.asgi import django_asgi

        self.inner = django_asgi
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.inner(scope, receive, send)


def _asgi_gets(app: Any, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [await client.get(path, headers=headers) for path, headers in requests]

    # Like Django's test clients: a real handler would close the test transaction's connection at the start
    # and end of each request.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        return async_to_sync(run)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
def test_the_asgi_fast_path_answers_cache_hits_without_entering_django() -> None:
    make_score(ORCH_A, 91.0)
    app = CountingApp()
    path = f"/v1/sla/leaderboard?workflow={WORKFLOW}"
    miss, hit = _asgi_gets(http.PublicReadFastPath(app), [(path, {}), (path, {})])
    assert app.calls == 1  # the second read never reached Django
    assert miss.status_code == hit.status_code == 200
    assert miss.headers["X-Cache"] == "miss" and hit.headers["X-Cache"] == "hit"
    assert hit.content == miss.content and hit.json()["data"][0]["address"] == ORCH_A
    for name in ("ETag", "Cache-Control", "Content-Type", "Access-Control-Allow-Origin", "Vary"):
        assert hit.headers[name] == miss.headers[name], name
    assert int(hit.headers["X-RateLimit-Remaining"]) == int(miss.headers["X-RateLimit-Remaining"]) - 1
    # The same cached entry read by the middleware (Django's own client skips the fast path) is identical.
    through_django = async_to_sync(AsyncClient().get)(path)
    assert through_django["X-Cache"] == "hit" and through_django.content == hit.content
    assert through_django["ETag"] == hit.headers["ETag"]


@pytest.mark.django_db
@pytest.mark.usefixtures("frozen_rate_clock")
def test_the_asgi_fast_path_answers_304_and_429_like_the_middleware(settings: Any) -> None:
    make_score(ORCH_A, 91.0)
    settings.NAAP_API_RATE_LIMIT = 3
    settings.NAAP_API_RATE_WINDOW_S = 60
    app = CountingApp()
    path = f"/v1/sla/leaderboard?workflow={WORKFLOW}"
    (first,) = _asgi_gets(http.PublicReadFastPath(app), [(path, {})])
    etag = first.headers["ETag"]
    unchanged, refused = _asgi_gets(
        http.PublicReadFastPath(app), [(path, {"If-None-Match": etag}), (path, {})]
    )
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["ETag"] == etag
    assert unchanged.headers["X-RateLimit-Remaining"] == "1"
    (refused_too,) = _asgi_gets(http.PublicReadFastPath(app), [(path, {})])
    assert refused.status_code == 200 and refused_too.status_code == 429
    assert refused_too.headers["Retry-After"] == "45"
    assert refused_too.headers["Access-Control-Allow-Origin"] == "*"
    assert "rate limit exceeded" in refused_too.json()["detail"]
    assert app.calls == 1  # only the first read needed a view


@pytest.mark.django_db
def test_the_fast_path_leaves_other_paths_and_methods_to_django() -> None:
    app = CountingApp()
    (bad,) = _asgi_gets(http.PublicReadFastPath(app), [("/v1/sla/gpu/metrics?interval=7m", {})])
    assert bad.status_code == 422 and bad.headers["Cache-Control"] == "no-store"
    assert app.calls == 1
