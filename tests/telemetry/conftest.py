"""Fixtures for the source adapter tests: real peers and a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.peers.kafka_broker import KafkaBroker
from tests.peers.streamr_node import StreamrNode

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.05) -> Any:
    """Poll until ``condition()`` is truthy and return its value; fail the test on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(every_s)


def raw_ids() -> list[str]:
    """The producer event ids stored in the raw log, sorted (duplicates would show twice)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT event_id FROM telemetry_events_raw ORDER BY event_id")
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def streamr_node() -> Iterator[StreamrNode]:
    node = StreamrNode().start()
    yield node
    node.stop()


@pytest.fixture
def kafka_broker() -> Iterator[KafkaBroker]:
    broker = KafkaBroker().start()
    yield broker
    broker.stop()


@pytest.fixture
def celery_worker_thread(clean_time_tables: None) -> Iterator[Any]:
    """A real Celery worker consuming the ingest queue, in a thread of this process (test key prefix)."""
    from celery.contrib.testing.worker import start_worker

    from naap_site.celery import QUEUE_INGEST, app

    app.loader.import_default_modules()
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[QUEUE_INGEST]) as worker:
        yield worker
    connection.close()


def worker_env(database_name: str) -> dict[str, str]:
    """Environment for a `celery worker` subprocess that shares this test process's database and queues."""
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "naap_site.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{database_name}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
        "NAAP_CELERY_KEY_PREFIX": settings.CELERY_KEY_PREFIX,
        "NAAP_LOG_LEVEL": "WARNING",
    }


def start_worker_process(database_name: str, log_path: Path) -> subprocess.Popen[bytes]:
    """A `celery worker` subprocess (solo pool, ingest queue only); its output goes to ``log_path``."""
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "naap_site",
        "worker",
        "--pool=solo",
        "--queues=ingest",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=WARNING",
        f"--hostname=faulttest-{time.monotonic_ns()}@localhost",
    ]
    with log_path.open("ab") as log:
        return subprocess.Popen(cmd, cwd=ROOT, env=worker_env(database_name), stdout=log, stderr=log)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


def status_event(event_id: str, offset_s: int = 0, orchestrator: str = "0x" + "ab" * 20) -> dict[str, Any]:
    """A go-livepeer ``ai_stream_status`` event at ANCHOR + ``offset_s``."""
    from tests.conftest import ANCHOR_MS

    return {
        "id": event_id,
        "type": "ai_stream_status",
        "timestamp": str(ANCHOR_MS + offset_s * 1000),
        "gateway": "gw-test",
        "data": {
            "stream_id": "stream-1",
            "request_id": "req-1",
            "pipeline": "streamdiffusion-sdxl",
            "orchestrator_info": {"address": orchestrator, "url": "https://o.example:8935"},
            "inference_status": {"fps": 20.0},
        },
    }
