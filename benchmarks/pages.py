"""Issue 5: page server time and websocket update latency for 200 orchestrators.

A scratch database gets 200 orchestrators × 2 workflows × 3 days of hourly 1 h and 24 h scores; the ASGI app
runs under uvicorn (one worker, Redis channel layer). Page time: sequential GETs of the leaderboard (several
choices), orchestrator pages, the network page and the leaderboard embed, p50/p95. Websocket latency: a
client subscribed to a leaderboard stream; a broadcaster process changes one score and runs the broadcast
(snapshot, diff, group send) as the Celery task does; latency = receipt − broadcast start, p95.

    python -m benchmarks pages
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time

import httpx
import psycopg
import websockets

from benchmarks.common import PY, ROOT, Report, bench_env, scratch_database

ORCHESTRATORS = 200
DAYS = 3
PAGE_REQUESTS = int(os.environ.get("NAAP_BENCH_PAGE_REQUESTS", "300"))
WS_UPDATES = int(os.environ.get("NAAP_BENCH_WS_UPDATES", "40"))
END = "2026-01-09T00:00:00Z"
WORKFLOW = "streamdiffusion-sdxl"

SEED_SCORES = """
INSERT INTO sla_score (orchestrator, workflow, "window", window_start, window_end, version, score, latency,
                       reliability, performance, sufficient, sessions, inputs, computed_at)
SELECT '0x' || lpad(to_hex(o), 40, '0'), w.name, p.win, h - p.len, h, 1,
       50 + (hashtext(o::text || h::text || w.name) %% 50) / 1.0, 90, 80, 70, true, 10,
       jsonb_build_object('sessions', 10, 'started', 9, 'effective_ok', 8, 'swaps', 1, 'streams', 6,
                          'p2ff_p95_ms', 1500 + o, 'output_fps_mean', 19.5, 'jitter_mean', 0.05),
       h
FROM generate_series(1, %(orchs)s) AS o,
     generate_series(%(end)s::timestamptz - make_interval(days => %(days)s), %(end)s::timestamptz,
                     interval '1 hour') AS h,
     (VALUES ('streamdiffusion-sdxl'), ('streamdiffusion-sdxl-faceid')) AS w(name),
     (VALUES ('1h', interval '1 hour'), ('24h', interval '24 hours')) AS p(win, len)
"""

BUMP_SCORE = """
UPDATE sla_score SET score = %(score)s
WHERE orchestrator = %(orch)s AND workflow = %(workflow)s AND "window" = '24h' AND window_end = %(end)s
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(url: str) -> dict[str, str]:
    return bench_env(
        url,
        NAAP_ALLOWED_HOSTS="127.0.0.1,localhost",
        NAAP_CHANNEL_LAYER="redis",
        NAAP_CHANNEL_PREFIX=f"naapbench{os.getpid()}",
        NAAP_CACHE_KEY_PREFIX=f"naapbench{os.getpid()}",
    )


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "naap_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=_env(url),
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


def _page_paths(rng: random.Random) -> list[str]:
    paths = []
    for _ in range(PAGE_REQUESTS):
        kind = rng.random()
        if kind < 0.45:
            wf = rng.choice(("all", WORKFLOW, "streamdiffusion-sdxl-faceid"))
            paths.append(
                f"/?workflow={wf}&window={rng.choice(('1h', '24h'))}&sort={rng.choice(('rank', 'fps'))}"
            )
        elif kind < 0.8:
            paths.append(f"/orchestrators/0x{rng.randint(1, ORCHESTRATORS):040x}")
        elif kind < 0.9:
            paths.append("/network")
        else:
            paths.append("/embed/leaderboard?theme=dark")
    return paths


def measure_pages(base: str) -> tuple[list[float], int]:
    rng = random.Random(5)
    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base, timeout=30) as client:
        for path in _page_paths(rng)[:5]:
            client.get(path)  # warm-up
        for path in _page_paths(rng):
            started = time.perf_counter()
            response = client.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            errors += response.status_code != 200
    return latencies, errors


BROADCASTER = """
import json, sys, time, django
django.setup()
import psycopg
from django.conf import settings
from leaderboard.tasks import broadcast_stream
stream, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
from benchmarks.pages import BUMP_SCORE, END, WORKFLOW
with psycopg.connect(url, autocommit=True) as conn:
    broadcast_stream(stream)  # the first snapshot
    for i in range(n):
        conn.execute(BUMP_SCORE, {"score": 99.0 - i * 0.01, "orch": "0x" + format(1 + i % 50, "040x"),
                                  "workflow": WORKFLOW, "end": END})
        started = time.time()
        broadcast_stream(stream)
        print(json.dumps({"i": i, "started": started}), flush=True)
        time.sleep(0.1)
"""


async def _ws_client(port: int, stream: str, expected: int, received: list[tuple[int, float]]) -> None:
    uri = f"ws://127.0.0.1:{port}/ws/live"
    async with websockets.connect(uri, origin=f"http://127.0.0.1:{port}") as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"subscribe": [stream]}))
        await ws.recv()
        while len(received) < expected + 1:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            if msg.get("type") == "delta":
                received.append((msg["seq"], time.time()))


def measure_ws(url: str, port: int) -> list[float]:
    stream = f"leaderboard:{WORKFLOW}:all:24h"
    received: list[tuple[int, float]] = []

    async def run() -> list[str]:
        client = asyncio.create_task(_ws_client(port, stream, WS_UPDATES, received))
        await asyncio.sleep(0.5)
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            BROADCASTER,
            stream,
            url,
            str(WS_UPDATES),
            cwd=ROOT,
            env=_env(url),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        await asyncio.wait_for(client, timeout=30)
        return out.decode().splitlines()

    lines = asyncio.run(run())
    starts = [json.loads(line)["started"] for line in lines if line.startswith("{")]
    # deltas arrive in order; the first one is the initial snapshot
    arrivals = [t for _, t in received[1:]]
    return [(a - s) * 1000 for s, a in zip(starts, arrivals, strict=False)]


def run(report: Report) -> dict[str, float]:
    url = scratch_database("naap_bench_pages")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SCORES, {"orchs": ORCHESTRATORS, "days": DAYS, "end": END})
        conn.execute("ANALYZE sla_score")
        row = conn.execute("SELECT count(*) FROM sla_score").fetchone()
    report.add(
        "pages: stored scores", int(row[0]) if row else 0, f"{ORCHESTRATORS} orchestrators, {DAYS} days"
    )
    port = _free_port()
    proc = _serve(url, port)
    try:
        latencies, errors = measure_pages(f"http://127.0.0.1:{port}")
        report.add(
            "pages: p50 ms", _pct(latencies, 0.5), f"{len(latencies)} sequential GETs, {errors} errors"
        )
        report.add("pages: p95 ms", _pct(latencies, 0.95), "target ≤ 300")
        ws = measure_ws(url, port)
        report.add("ws update: p50 ms", _pct(ws, 0.5), f"{len(ws)} deltas (score change → client)")
        report.add("ws update: p95 ms", _pct(ws, 0.95))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {"page_p95_ms": _pct(latencies, 0.95), "ws_update_p95_ms": _pct(ws, 0.95)}


if __name__ == "__main__":
    r = Report()
    print(run(r))
    sys.exit(0)
