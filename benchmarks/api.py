"""Issue 4 §5a: API latency under load.

A scratch database gets 30 days × 200 orchestrators of stored scores (1 h windows every hour and 24 h windows
every hour, bulk SQL); the ASGI app runs under uvicorn (2 workers); 50 concurrent httpx clients read the
leaderboard (varied workflow/page) and compliance for random orchestrators for a fixed time. Reported:
p50/p95/p99 latency and requests/s, with the shared response cache on (the production setting) and off.

    python -m benchmarks.api            # standalone
    run(report) -> {"api_p95_ms": ..., ...}   # for python -m benchmarks
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time

import httpx
import psycopg

from benchmarks.common import PY, ROOT, Report, bench_env, scratch_database

ORCHESTRATORS = 200
DAYS = 30
WORKFLOWS = ("streamdiffusion-sdxl", "streamdiffusion-sdxl-faceid")
CLIENTS = 50
DURATION_S = float(os.environ.get("NAAP_BENCH_API_SECONDS", "15"))
END = "2026-01-09T00:00:00Z"

SEED_SCORES = """
INSERT INTO sla_score (orchestrator, workflow, "window", window_start, window_end, version, score, latency,
                       reliability, performance, sufficient, sessions, inputs, computed_at)
SELECT '0x' || lpad(to_hex(o), 40, '0'), w.name, p.win,
       h - p.len, h, 1,
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SCORES, {"orchs": ORCHESTRATORS, "days": DAYS, "end": END})
        conn.execute("ANALYZE sla_score")
        row = conn.execute("SELECT count(*) FROM sla_score").fetchone()
    return int(row[0]) if row else 0


def _paths(rng: random.Random) -> str:
    if rng.random() < 0.5:
        workflow = rng.choice(WORKFLOWS)
        period = rng.choice(("1h", "24h"))
        offset = rng.choice((0, 50, 100, 150))
        return f"/v1/sla/leaderboard?workflow={workflow}&period={period}&limit=50&offset={offset}"
    orch = f"0x{rng.randint(1, ORCHESTRATORS):040x}"
    return f"/v1/sla/compliance?orchestrator_id={orch}&period={rng.choice(('1h', '24h'))}"


async def _load(base: str, seconds: float) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def one(seed_value: int) -> None:
            nonlocal errors
            rng = random.Random(seed_value)
            while time.perf_counter() < deadline:
                path = _paths(rng)
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        await asyncio.gather(*(one(i) for i in range(CLIENTS)))
    return latencies, errors, len(latencies)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def _serve(url: str, port: int, cache_s: int) -> subprocess.Popen[bytes]:
    env = bench_env(
        url,
        NAAP_API_RATE_LIMIT="100000000",
        NAAP_API_RESPONSE_CACHE_S=str(cache_s),
        NAAP_API_CACHE_NAMESPACE=f"bench{os.getpid()}c{cache_s}",
        NAAP_ALLOWED_HOSTS="127.0.0.1,localhost",
    )
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
            "--workers",
            "2",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/openapi.json", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


def measure(url: str, cache_s: int) -> dict[str, float]:
    port = _free_port()
    proc = _serve(url, port, cache_s)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_load(base, 2.0))  # warm-up: connections, caches
        started = time.perf_counter()
        latencies, errors, count = asyncio.run(_load(base, DURATION_S))
        elapsed = time.perf_counter() - started
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {
        "p50": _pct(latencies, 0.50),
        "p95": _pct(latencies, 0.95),
        "p99": _pct(latencies, 0.99),
        "rps": count / elapsed,
        "errors": float(errors),
        "requests": float(count),
    }


def run(report: Report) -> dict[str, float]:
    url = scratch_database("naap_bench_api")
    started = time.perf_counter()
    rows = seed(url)
    report.add(
        "api: score rows seeded",
        rows,
        f"{DAYS} d × {ORCHESTRATORS} orch, {time.perf_counter() - started:.1f} s",
    )
    figures: dict[str, float] = {}
    for label, cache_s in (("cached", 60), ("uncached", 0)):
        result = measure(url, cache_s)
        note = f"{CLIENTS} clients, uvicorn 2 workers, {result['requests']:.0f} req, {result['errors']:.0f} non-200"
        report.add(f"api {label}: p50 ms", result["p50"], note)
        report.add(f"api {label}: p95 ms", result["p95"])
        report.add(f"api {label}: p99 ms", result["p99"])
        report.add(f"api {label}: requests/s", result["rps"])
        figures[f"api_{label}_p95_ms"] = result["p95"]
        figures[f"api_{label}_rps"] = result["rps"]
    figures["api_p95_ms"] = figures["api_cached_p95_ms"]
    return figures


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
    out = Report()
    print(run(out), file=sys.stderr)
    out.print_table()
