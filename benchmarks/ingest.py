"""Issue 3: end-to-end ingest of a simulated file through a real Celery worker, against a bare COPY.

The worker writes raw + facts; the baseline COPYs the same raw rows into an identical partitioned table.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections import deque
from datetime import timedelta
from pathlib import Path

import psycopg
from celery import Celery
from psycopg import sql

from benchmarks.common import (
    PY,
    ROOT,
    VAR,
    BackendCpu,
    PeakRss,
    Report,
    bench_env,
    scratch_database,
    tree_cpu_s,
)

POOL = os.environ.get("NAAP_BENCH_POOL", "solo")
WORKERS = int(os.environ.get("NAAP_BENCH_WORKERS", "2"))
BATCH_LINES = int(os.environ.get("NAAP_BENCH_BATCH_LINES", "3000"))  # lines per task
IN_FLIGHT = 4
# For iterating on a slice: NAAP_BENCH_INGEST_LINES=200000 sends only the first lines (the full run is the
# measure the issue asks for).
LINE_LIMIT = int(os.environ.get("NAAP_BENCH_INGEST_LINES", "0")) or None


def simulated_file(events_wanted: int = 1_000_000) -> Path:
    path = VAR / "sim-s11-o200.jsonl"
    if path.exists() and sum(1 for _ in path.open("rb")) >= events_wanted:
        return path
    VAR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            PY,
            "manage.py",
            "simulate",
            "--seed",
            "11",
            "--duration",
            "140m",  # a little over 1,000,000 events with 200 orchestrators
            "--orchestrators",
            "200",
            "--start",
            "2026-01-09T00:00:00Z",
            "--out",
            str(path),
        ],
        cwd=ROOT,
        check=True,
    )
    return path


def _celery(env: dict[str, str]) -> Celery:
    app = Celery("bench", broker=env["REDIS_URL"], backend=env["REDIS_URL"])
    opts = {"global_keyprefix": env["NAAP_CELERY_KEY_PREFIX"]}
    app.conf.broker_transport_options = opts
    app.conf.result_backend_transport_options = opts
    return app


def run(report: Report) -> dict[str, float]:
    path = simulated_file()
    url = scratch_database("naap_bench_ingest")
    env = bench_env(url)
    # The worker shape: POOL=solo runs WORKERS single-process workers (one per core, as the compose file
    # scales them); POOL=prefork runs one worker with WORKERS child processes. Both are started under one
    # shell so that the memory of the whole tree is what is measured.
    common = "-Q ingest -l warning --without-heartbeat --without-gossip --without-mingle"
    celery = f"{PY} -m celery -A naap_site worker {common}"
    if POOL == "solo":
        script = " & ".join(f"{celery} --pool solo -n w{i}@%h" for i in range(WORKERS)) + " & wait"
    else:
        script = f"exec {celery} --pool prefork -c {WORKERS}"
    worker = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, start_new_session=True)
    app = _celery(env)
    try:
        nodes = 1 if POOL == "prefork" else WORKERS
        deadline = time.monotonic() + 120
        while len(app.control.ping(timeout=1)) < nodes:  # start-up (imports) is not ingest work
            if time.monotonic() > deadline:
                raise RuntimeError("the ingest workers did not start within 120 s")
        events = 0
        pending: deque = deque()
        received_ms = int(time.time() * 1000)
        cpu_before = tree_cpu_s(worker.pid)  # start-up (imports, forks) is not ingest work
        with path.open("rb") as handle, PeakRss(worker.pid) as rss, BackendCpu(url) as database_cpu:
            started = time.perf_counter()
            source = itertools.islice(handle, LINE_LIMIT)
            while True:
                lines = list(itertools.islice(source, BATCH_LINES))
                if not lines:
                    break
                events += len(lines)
                body = b"".join(lines).decode()
                message = {"body": body, "value": None, "publisher": "bench", "metadata": None}
                pending.append(
                    app.send_task(
                        "telemetry.tasks.ingest_batch",
                        args=["file", [message], received_ms],
                        queue="ingest",
                        serializer="msgpack",  # as telemetry.tasks.ingest_batch sends itself
                        compression="zstd",
                    )
                )
                while len(pending) >= IN_FLIGHT:
                    pending.popleft().get(timeout=600)
            while pending:
                pending.popleft().get(timeout=600)
            elapsed = time.perf_counter() - started
        ingest_rate = events / elapsed
        worker_cpu = tuple(
            after - before for after, before in zip(tree_cpu_s(worker.pid), cpu_before, strict=True)
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    copy_rate, copied = bare_copy(url)
    report.add("ingest events", events, path.name)
    report.add("lines per task", BATCH_LINES, f"{IN_FLIGHT} tasks in flight")
    report.add("ingest seconds", elapsed)
    report.add("ingest_events_per_s", ingest_rate, f"raw + facts, {WORKERS} worker processes ({POOL} pool)")
    report.add("bare COPY rows/s", copy_rate, f"{copied} raw rows into an identical table")
    report.add("copy_ratio", round(ingest_rate / copy_rate, 3), "target >= 0.5")
    report.add("worker CPU s", round(sum(worker_cpu), 1), "receive, decode, validate, facts, COPY")
    report.add("PostgreSQL CPU s", round(database_cpu.total, 1), "the worker's database sessions (sampled)")
    report.add("worker peak RSS MB", round(rss.peak, 1), "every worker process, summed; target <= 400")
    processes = {pid: mb for pid, mb in rss.per_process.items() if mb > 20}  # not the bash wrapper
    report.add(
        "  largest worker process peak MB",
        round(max(processes.values(), default=0.0), 1),
        f"{len(processes)} processes",
    )
    return {
        "ingest_events_per_s": ingest_rate,
        "copy_ratio": ingest_rate / copy_rate,
        "peak_rss_mb": rss.peak,
    }


def bare_copy(url: str) -> tuple[float, int]:
    from naap_site.timeseries import create_statements
    from telemetry.tables import RAW, TimeTable

    twin = TimeTable(
        name="bench_raw_copy",
        columns=RAW.columns,
        time_column=RAW.time_column,
        primary_key=RAW.primary_key,
        indexes=RAW.indexes,
    )
    dump = VAR / "raw.copy"
    with psycopg.connect(url, autocommit=True) as conn:
        with conn.cursor() as cursor:
            for statement in create_statements(twin, "plain"):
                cursor.execute(statement)  # type: ignore[call-overload]  # a Composed or SQL
        days = conn.execute(
            "SELECT DISTINCT date_trunc('day', event_time AT TIME ZONE 'UTC') FROM telemetry_events_raw"
        ).fetchall()
        for (day,) in days:
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF bench_raw_copy FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(f"bench_raw_copy_p{day:%Y%m%d}"),
                    sql.Literal(f"{day:%Y-%m-%d} 00:00+00"),
                    sql.Literal(f"{day + timedelta(days=1):%Y-%m-%d} 00:00+00"),
                )
            )
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in RAW.column_names())
        with (
            dump.open("wb") as out,
            conn.cursor().copy(
                sql.SQL("COPY (SELECT {} FROM telemetry_events_raw) TO STDOUT (FORMAT binary)").format(cols)
            ) as copy,
        ):
            for chunk in copy:
                out.write(chunk)
        started = time.perf_counter()
        with (
            conn.transaction(),
            dump.open("rb") as src,
            conn.cursor().copy(
                sql.SQL("COPY bench_raw_copy ({}) FROM STDIN (FORMAT binary)").format(cols)
            ) as copy,
        ):
            while block := src.read(1 << 20):
                copy.write(block)
        elapsed = time.perf_counter() - started
        row = conn.execute("SELECT count(*) FROM bench_raw_copy").fetchone()
        copied = int(row[0]) if row else 0
    dump.unlink()
    return copied / elapsed, copied
