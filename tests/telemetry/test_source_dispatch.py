from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from telemetry.pipeline.ingest import Message
from telemetry.sources.dispatch import Backoff, Dispatcher
from tests.conftest import ANCHOR
from tests.telemetry.conftest import raw_ids, status_event, wait_for


def feed(dispatcher: Dispatcher[int], count: int, prefix: str = "d") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(count)]
    for i, event_id in enumerate(ids):
        dispatcher.add(Message(body=json.dumps(status_event(event_id, i))), i)
    return ids


@pytest.fixture
def redis_keys() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(f"{settings.CELERY_KEY_PREFIX}*"):
        client.delete(key)


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.2, 1.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next_delay() == 0.2


@pytest.mark.django_db
def test_batches_are_cut_by_size_and_by_age() -> None:
    dispatcher: Dispatcher[int] = Dispatcher(
        "test", mode="inprocess", batch_size=4, max_delay_s=3600, wall_clock=lambda: ANCHOR
    )
    feed(dispatcher, 6)
    assert dispatcher.pump() == [0, 1, 2, 3]  # one full batch; two messages are not due yet
    assert dispatcher.pending == 2
    assert dispatcher.flush(5) == [4, 5]
    assert (dispatcher.stats.batches_committed, dispatcher.stats.accepted) == (2, 6)


def test_batches_go_through_a_real_celery_worker_and_are_acked_in_order(celery_worker_thread: Any) -> None:
    dispatcher: Dispatcher[int] = Dispatcher(
        "celery-test", mode="celery", batch_size=5, max_delay_s=0.01, wall_clock=lambda: ANCHOR
    )
    ids = feed(dispatcher, 12)
    acked: list[int] = []
    wait_for(lambda: (acked.extend(dispatcher.pump(0.2)), len(acked) == 12)[1], 60, every_s=0)
    assert acked == list(range(12))
    assert raw_ids() == ids
    assert (dispatcher.stats.batches_committed, dispatcher.stats.accepted) == (3, 12)


def test_in_flight_batches_are_bounded_and_nothing_is_acked_without_a_commit(redis_keys: None) -> None:
    # no worker consumes this process's queue: batches are submitted but never commit
    dispatcher: Dispatcher[int] = Dispatcher(
        "bounded", mode="celery", batch_size=2, max_delay_s=0.01, max_in_flight=2, wall_clock=lambda: ANCHOR
    )
    feed(dispatcher, 9)
    assert dispatcher.pump(0.3) == []
    assert dispatcher.stats.batches_submitted == 2
    assert (dispatcher.stats.in_flight, dispatcher.stats.buffered, dispatcher.pending) == (4, 5, 9)


def test_an_inprocess_batch_that_loses_its_database_connection_is_retried(clean_time_tables: None) -> None:
    dispatcher: Dispatcher[int] = Dispatcher(
        "retry",
        mode="inprocess",
        batch_size=100,
        max_delay_s=0,
        wall_clock=lambda: ANCHOR,
        backoff=Backoff(0.05, 0.2),
    )
    ids = feed(dispatcher, 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=True
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    acked: list[int] = []
    wait_for(lambda: (acked.extend(dispatcher.pump(0.1)), len(acked) == 3)[1], 30, every_s=0)
    assert dispatcher.stats.batch_failures == 1
    assert raw_ids() == ids


def test_the_result_backend_is_asked_at_most_once_per_poll_interval(redis_keys: None) -> None:
    # no worker consumes this process's queue: the batch stays in flight and is polled again and again
    now = [100.0]
    dispatcher: Dispatcher[int] = Dispatcher(
        "polls",
        mode="celery",
        batch_size=2,
        max_delay_s=0.01,
        poll_interval_s=0.5,
        clock=lambda: now[0],
        wall_clock=lambda: ANCHOR,
    )
    feed(dispatcher, 2)
    for _ in range(50):  # an adapter pumping after every message it reads
        assert dispatcher.pump() == []
    assert (dispatcher.stats.batches_submitted, dispatcher.stats.result_polls) == (1, 1)
    now[0] += 0.4
    dispatcher.pump()
    assert dispatcher.stats.result_polls == 1
    now[0] += 0.1
    dispatcher.pump()
    assert dispatcher.stats.result_polls == 2
