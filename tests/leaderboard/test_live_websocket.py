"""/ws/live through the real ASGI application: subscriptions, validation, and deltas after a refresh."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from leaderboard.consumers import StreamNameError, parse_stream
from leaderboard.tasks import active_streams, broadcast_all, diff
from naap_site.asgi import application
from tests.leaderboard.conftest import WORKFLOW, address

STREAM = f"leaderboard:{WORKFLOW}:all:24h"
HEADERS = [(b"origin", b"http://testserver")]


def test_stream_names_are_validated() -> None:
    assert parse_stream("network") == ("network", ())
    assert parse_stream(f"orchestrator:{address(1)}") == ("orchestrator", (address(1),))
    assert parse_stream(STREAM) == ("leaderboard", (WORKFLOW, "all", "24h"))
    for bad in ("leaderboard:x:y:7y", "orchestrator:0xNOPE", "network:extra", "nothing", "a" * 300):
        with pytest.raises(StreamNameError):
            parse_stream(bad)


def test_diff_sends_only_changed_numbers_and_removed_rows() -> None:
    before = {"a": {"score": 1.0, "fps": 2.0}, "b": {"score": 3.0}}
    after = {"a": {"score": 1.5, "fps": 2.0}, "c": {"score": 4.0}}
    assert diff(before, after) == {"rows": {"a": {"score": 1.5}, "c": {"score": 4.0}}, "removed": ["b"]}
    assert diff(after, after) == {}


async def _connect() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/live", headers=HEADERS)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
def test_subscribers_receive_numeric_deltas_after_a_refresh(make_score, clean_time_tables) -> None:
    import asyncio

    async def scenario() -> None:
        await sync_to_async(make_score)(address(1), 80.0, fps=20.0)
        ws = await _connect()
        await ws.send_json_to({"subscribe": [STREAM, "bogus"]})
        error = await ws.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["stream"] == "bogus"
        assert (await ws.receive_json_from(timeout=5)) == {"type": "subscribed", "streams": [STREAM]}
        assert await sync_to_async(active_streams)() == [STREAM]

        assert await sync_to_async(broadcast_all)() == 1
        first = await ws.receive_json_from(timeout=5)
        assert first["type"] == "delta" and first["stream"] == STREAM and first["seq"] == 1
        row = first["data"]["rows"][address(1)]
        assert row["score"] == 80.0 and row["fps"] == 20.0 and row["rank"] == 1 and row["sufficient"] == 1

        # nothing changed: nothing is sent
        assert await sync_to_async(broadcast_all)() == 0
        assert await ws.receive_nothing(timeout=0.3)

        # a new, better orchestrator appears: only the changed numbers travel
        await sync_to_async(make_score)(address(2), 95.0, fps=30.0)
        assert await sync_to_async(broadcast_all)() == 1
        second = await ws.receive_json_from(timeout=5)
        assert second["seq"] == 2
        assert second["data"]["rows"][address(1)] == {"rank": 2}
        assert second["data"]["rows"][address(2)]["score"] == 95.0

        await ws.send_json_to({"ping": 7})
        assert await ws.receive_json_from(timeout=5) == {"type": "pong", "ping": 7}
        await ws.disconnect()

    asyncio.run(scenario())


@pytest.mark.django_db(transaction=True)
def test_unsubscribed_clients_receive_nothing(make_score, clean_time_tables) -> None:
    import asyncio

    async def scenario() -> None:
        ws = await _connect()
        await ws.send_json_to({"subscribe": ["network"]})
        await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"unsubscribe": ["network"]})
        assert await ws.receive_json_from(timeout=5) == {"type": "subscribed", "streams": []}
        await sync_to_async(make_score)(address(1), 80.0)
        await sync_to_async(broadcast_all)()
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()

    asyncio.run(scenario())


def test_connections_from_foreign_origins_are_refused() -> None:
    import asyncio

    async def scenario() -> None:
        communicator = WebsocketCommunicator(
            application, "/ws/live", headers=[(b"origin", b"https://evil.example")]
        )
        connected, _ = await communicator.connect()
        assert not connected

    asyncio.run(scenario())


@pytest.fixture
def eager_celery():
    """Run Celery tasks inline, as the demo does (no worker in tests)."""
    from naap_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def scoring_v1() -> None:
    """Transactional tests flush the migration's seed: put scoring version 1 back."""
    import importlib

    from sla.scoring_models import ScoringConfig

    seed = dict(importlib.import_module("sla.migrations.0004_scoring").SEED_V1)
    ScoringConfig.objects.get_or_create(version=seed.pop("version"), defaults=seed)


@pytest.mark.django_db(transaction=True)
def test_a_committed_pipeline_run_pushes_new_rows_to_subscribers(
    clean_time_tables, eager_celery, scoring_v1
) -> None:
    """sla sends refresh_completed after commit; leaderboard's receiver broadcasts; the client gets the rows,
    unranked ones included (rank null, sufficient 0)."""
    import asyncio
    from datetime import timedelta

    from sla.tasks import run_pipeline
    from tests.conftest import ANCHOR
    from tests.sla.rollup_factories import SegSpec, make_session, mark_dirty

    stream = "leaderboard:all:all:24h"
    a = address(0xA1)

    def pipeline_with_one_session() -> None:
        make_session("s1", segments=(SegSpec(orchestrator=a, fps={0: [20.0, 20.0, 20.0]}),))
        mark_dirty(ANCHOR, ANCHOR + timedelta(hours=1))
        run_pipeline(ANCHOR + timedelta(hours=1))

    async def scenario() -> None:
        ws = await _connect()
        await ws.send_json_to({"subscribe": [stream]})
        await ws.receive_json_from(timeout=5)
        await sync_to_async(pipeline_with_one_session)()
        delta = await ws.receive_json_from(timeout=10)
        assert delta["type"] == "delta" and delta["stream"] == stream
        row = delta["data"]["rows"][f"{a}|{WORKFLOW}"]
        assert row["sessions"] == 1 and row["sufficient"] == 0 and row["rank"] is None
        assert row["fps"] == 20.0
        await ws.disconnect()

    asyncio.run(scenario())


@pytest.mark.django_db
def test_nothing_is_enqueued_while_nobody_listens(monkeypatch) -> None:
    from leaderboard import tasks

    sent: list[int] = []
    monkeypatch.setattr(tasks.broadcast_live, "delay", lambda: sent.append(1))
    tasks.broadcast_after_refresh()
    assert sent == []
    tasks.register_streams(["network"])
    tasks.broadcast_after_refresh()
    assert sent == [1]
