"""Faults on the ingest path: a worker killed mid-batch, the database dropping every connection mid-batch.

Both run a real `celery worker` subprocess on this test process's database and Redis key prefix. A batch
is held *in flight* by a table lock that the test takes, so the fault always strikes while the worker's
transaction is open; then the lock is released and the system must converge to each event stored once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from django.db import connection

from telemetry.pipeline.ingest import Message
from telemetry.sources.dispatch import Dispatcher
from tests.conftest import ANCHOR
from tests.telemetry.conftest import raw_ids, start_worker_process, status_event, stop_process, wait_for

pytestmark = pytest.mark.slow

# pg_locks is live; pg_stat_activity would be a snapshot fixed for the length of our transaction
WORKER_BACKENDS = """
SELECT DISTINCT pid FROM pg_locks
WHERE NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = %s)
"""


def database_name() -> str:
    return str(settings.DATABASES["default"]["NAME"])


def admin_connection() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=database_name())


@pytest.fixture
def redis_keys() -> Iterator[None]:
    """Remove this test process's Celery keys afterwards (a killed worker leaves its unacked message)."""
    yield
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for key in client.scan_iter(f"{settings.CELERY_KEY_PREFIX}*"):
        client.delete(key)


def feed(dispatcher: Dispatcher[int], count: int) -> list[str]:
    ids = [f"f{i:03d}" for i in range(count)]
    for i, event_id in enumerate(ids):
        dispatcher.add(Message(body=json.dumps(status_event(event_id, i))), i)
    return ids


def make_dispatcher() -> Dispatcher[int]:
    return Dispatcher(
        "faults",
        mode="celery",
        batch_size=10,
        max_delay_s=0.01,
        max_in_flight=2,
        result_timeout_s=20.0,  # a batch whose worker died is resubmitted after this
        wall_clock=lambda: ANCHOR,
    )


def pump_until_all_acked(dispatcher: Dispatcher[int], expected: int, timeout_s: float = 150.0) -> list[int]:
    acked: list[int] = []
    wait_for(lambda: (acked.extend(dispatcher.pump(0.2)), len(acked) >= expected)[1], timeout_s, every_s=0)
    return acked


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    clean_time_tables: None, redis_keys: None, tmp_path: Path
) -> None:
    log = tmp_path / "workers.log"
    dispatcher = make_dispatcher()
    ids = feed(dispatcher, 25)
    first = start_worker_process(database_name(), log)
    second = None
    try:
        with admin_connection() as admin:
            admin.execute("LOCK TABLE telemetry_events_raw IN ACCESS EXCLUSIVE MODE")
            dispatcher.pump()
            # the worker took the first batch and waits on the lock, its transaction open
            wait_for(
                lambda: (dispatcher.pump(), admin.execute(WORKER_BACKENDS, (database_name(),)).fetchall())[1],
                90,
            )
            first.kill()
            first.wait(30)
            admin.rollback()
        assert dispatcher.stats.acked == 0
        second = start_worker_process(database_name(), log)
        acked = pump_until_all_acked(dispatcher, len(ids))
    finally:
        stop_process(first)
        if second is not None:
            stop_process(second)
    assert acked == list(range(25)), "acknowledged in arrival order, each once"
    assert raw_ids() == ids, log.read_text()[-2000:]
    assert dispatcher.stats.resubmits >= 1
    assert (dispatcher.stats.accepted, dispatcher.stats.batches_committed) == (25, 3)


def test_a_database_restart_during_ingest_loses_nothing_and_duplicates_nothing(
    clean_time_tables: None, redis_keys: None, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    dispatcher = make_dispatcher()
    ids = feed(dispatcher, 25)
    worker = start_worker_process(database_name(), log)
    try:
        with admin_connection() as admin:
            admin.execute("LOCK TABLE telemetry_events_raw IN ACCESS EXCLUSIVE MODE")
            dispatcher.pump()
            wait_for(
                lambda: (dispatcher.pump(), admin.execute(WORKER_BACKENDS, (database_name(),)).fetchall())[1],
                90,
            )
            # what a restart does to clients: every other connection to the database is cut
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database_name(),),
            )
            admin.rollback()
        connection.close()  # ours was cut too
        acked = pump_until_all_acked(dispatcher, len(ids))
    finally:
        stop_process(worker)
    assert acked == list(range(25))
    assert raw_ids() == ids, log.read_text()[-2000:]
    assert dispatcher.stats.accepted + dispatcher.stats.duplicates >= 25
    assert dispatcher.stats.accepted == 25
