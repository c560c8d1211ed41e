"""`make demo` end to end: services found, migrations, web, worker, beat, simulator feeding HTTP ingest."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_until(condition, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s")
        time.sleep(0.5)


@pytest.mark.slow
def test_make_demo_serves_ingests_simulated_events_and_stops_every_child(tmp_path: Path) -> None:
    name = f"naap_demo_test_{os.getpid()}"
    db_url = f"postgres://postgres@127.0.0.1:5432/{name}"
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        REDIS_URL="redis://127.0.0.1:6379/14",
        NAAP_CELERY_KEY_PREFIX=f"demotest{os.getpid()}:",
        NAAP_CHANNEL_PREFIX=f"demotest{os.getpid()}",
        NAAP_CACHE_KEY_PREFIX=f"demotest{os.getpid()}",
        NAAP_DEMO_PORT=str(port),
        NAAP_DEMO_ORCHESTRATORS="4",
        NAAP_DEMO_BACKFILL="5m",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "demo.err").open("w+")
    demo = subprocess.Popen(
        [sys.executable, "-m", "naap_site.launch", "demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )

    def raw_events() -> int:
        try:
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", connect_timeout=3) as conn:
                row = conn.execute("SELECT count(*) FROM telemetry_events_raw").fetchone()
                return int(row[0]) if row else 0
        except psycopg.Error:
            return 0

    try:
        assert demo.stdout is not None
        url = f"http://127.0.0.1:{port}/"
        for line in demo.stdout:  # migrate prints first; the URL line says everything is up
            if url in line:
                break
        else:
            raise AssertionError(Path(log.name).read_text()[-3000:])
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        wait_until(lambda: raw_events() > 50, 60)
        pids = {
            m.group(1): int(m.group(2))
            for m in re.finditer(r"started (\w+) pid=(\d+)", Path(log.name).read_text())
        }
        assert {"web", "worker", "beat", "simulator"} <= set(pids)
        assert all(alive(pid) for pid in pids.values())
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=40) == 0
        wait_until(lambda: not any(alive(pid) for pid in pids.values()), 10)
        assert "all stopped" in Path(log.name).read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
