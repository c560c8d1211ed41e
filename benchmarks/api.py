"""Issue 4 §5a: API latency under load.

A scratch database gets 30 days × 200 orchestrators of stored scores (1 h and 24 h windows every hour) and of
rollup state (``sla_perf_1h``, ``sla_rel_1h``, ``sla_net_1h`` one row per orchestrator GPU and hour, bulk
SQL; the 1 d level is then built from them with the rollups' own defining SELECT). The ASGI app runs under
uvicorn as production would (`--workers 2`: one per core of the 2-core reference machine; the psycopg pool
of NAAP_DB_POOL_SIZE connections per worker); 50 concurrent keep-alive clients (a minimal asyncio HTTP/1.1
client, ~0.1 ms CPU per request, so the load generator does not starve the server it measures) read the leaderboard (varied workflow/page/period), compliance
and /gpu/metrics (one orchestrator's last day by hour, its 30 days by day, or a network-wide page of one hour)
for a fixed time. Reported: p50/p95/p99 latency and requests/s, with the shared response cache on (the
production setting; hit ratio shown) and off, and for one client without the cache (the service time, i.e.
what a request costs when it does not queue behind 49 others on a shared 2-core machine). The hot reads are
EXPLAINed on the seeded data so the table shows which indexes they use.

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
from psycopg import sql

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


# Ten histogram shapes (one bucket holding 10 values), chosen per orchestrator: bucket 77 ≈ 1.5 s, 66 ≈ 0.05 σ/μ.
_HISTS = """
hists AS (
  SELECT v, array_agg(CASE WHEN i = %(base)s + v THEN 10 ELSE 0 END ORDER BY i) AS h
  FROM generate_series(0, 9) AS v, generate_series(0, 149) AS i GROUP BY v
), grid AS (
  SELECT '0x' || lpad(to_hex(o), 40, '0') AS orchestrator,
         (ARRAY['streamdiffusion-sdxl', 'streamdiffusion-sdxl-faceid'])[1 + o %% 2] AS pipeline,
         (ARRAY['eu', 'us', 'ap'])[1 + o %% 3] AS region, 'gpu-' || o AS gpu_id,
         'NVIDIA GeForce RTX 4090' AS gpu_type, o, h AS bucket
  FROM generate_series(1, %(orchs)s) AS o,
       generate_series(%(end)s::timestamptz - make_interval(days => %(days)s),
                       %(end)s::timestamptz - interval '1 hour', interval '1 hour') AS h
)
"""
SEED_PERF = (
    "WITH "
    + _HISTS
    + """
INSERT INTO sla_perf_1h
SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type,
       3600, 3600 * (18 + o %% 5), 3600 * (18 + o %% 5) ^ 2, 15, 25, 3600, 3600 * 30.0,
       60, 60 * 0.05, hists.h, 3600, (o + extract(hour FROM bucket)::int) %% 2, 60
FROM grid JOIN hists ON hists.v = grid.o %% 10
"""
)
SEED_REL = (
    "WITH "
    + _HISTS
    + """
INSERT INTO sla_rel_1h
SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type,
       10, 10, 10, 9, 9, 1, 1, 0, 0, 0, 8, 1, 1, 0, 0, 0, 0, 0, 0,
       10, 10 * 1500.0, hists.h, 10, 10 * 300.0, hists.h, 10, 10 * 450.0, hists.h
FROM grid JOIN hists ON hists.v = grid.o %% 10
"""
)
SEED_NET = (
    "WITH "
    + _HISTS
    + """
INSERT INTO sla_net_1h
SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type,
       360, 450000000 + o, 3600, 900000000, 3600, 100000, 100 + o, 50000, 10
FROM grid
"""
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _day_level(url: str) -> None:
    """Build the 1 d rollups from the seeded 1 h state with the rollups' own defining SELECT."""
    from naap_site.timeseries import rollup_select  # pure psycopg.sql composition; no Django set-up needed
    from sla.rollup_defs import ROLLUPS

    with psycopg.connect(url, autocommit=True) as conn:
        for family in ("perf", "rel", "net"):
            rollup = ROLLUPS[f"sla_{family}_1d"]
            select = rollup_select(rollup, "plain", ranged=False)
            conn.execute(sql.SQL("INSERT INTO {} ").format(sql.Identifier(rollup.name)) + select)


def seed(url: str) -> dict[str, int]:
    params = {"orchs": ORCHESTRATORS, "days": DAYS, "end": END, "base": 60}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SEED_SCORES, params)
        for statement in (SEED_PERF, SEED_REL, SEED_NET):
            conn.execute(statement, params)
    _day_level(url)
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("sla_score", "sla_perf_1h", "sla_rel_1h", "sla_net_1h", "sla_perf_1d"):
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def _plans(url: str) -> dict[str, str]:
    """EXPLAIN ANALYZE the hot reads on the seeded data: access paths used and execution time."""
    from sla.rollup_defs import sql_text  # SQL text only; no Django set-up needed

    wallet = f"0x{7:040x}"
    keys = sql.SQL(sql_text("read_gpu_row_keys.sql")).format(
        perf=sql.Identifier("sla_perf_1h"),
        rel=sql.Identifier("sla_rel_1h"),
        net=sql.Identifier("sla_net_1h"),
        filters=sql.SQL(" AND orchestrator = %(o)s"),
    )
    reads: dict[str, tuple[sql.Composable, dict[str, object]]] = {
        "gpu/metrics page keys (o_wallet, 1 d)": (
            keys,
            {"o": wallet, "start": "2026-01-08T00:00:00Z", "end": END, "limit": 100, "offset": 0},
        ),
        "leaderboard window": (
            sql.SQL(
                'SELECT * FROM sla_score WHERE "window" = %(p)s AND window_end = %(e)s AND sufficient '
                "AND score IS NOT NULL AND workflow = %(w)s"
            ),
            {"p": "24h", "e": END, "w": WORKFLOWS[0]},
        ),
    }
    out: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (query, params) in reads.items():
            plan = [r[0] for r in conn.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + query, params)]
            scans = sorted(
                {line.strip().lstrip("-> ").split(" (actual")[0] for line in plan if "Scan" in line}
            )
            took = next(
                (line.split(":")[1].strip() for line in plan if line.startswith("Execution Time")), "?"
            )
            out[name] = f"{', '.join(scans)}; {took}"
    return out


def _paths(rng: random.Random) -> str:
    """Half leaderboard, a tenth compliance, the rest /gpu/metrics (the issue's two hot reads)."""
    pick = rng.random()
    if pick < 0.5:
        workflow = rng.choice(WORKFLOWS)
        period = rng.choice(("1h", "24h"))
        offset = rng.choice((0, 50))
        return f"/v1/sla/leaderboard?workflow={workflow}&period={period}&limit=50&offset={offset}"
    orch = f"0x{rng.randint(1, ORCHESTRATORS):040x}"
    if pick < 0.6:
        return f"/v1/sla/compliance?orchestrator_id={orch}&period={rng.choice(('1h', '24h'))}"
    kind = rng.random()
    if kind < 0.5:  # one orchestrator's last day, hourly
        return f"/v1/sla/gpu/metrics?o_wallet={orch}&interval=1h&from=2026-01-08T00:00:00Z&to={END}"
    if kind < 0.75:  # one orchestrator's month, daily
        return f"/v1/sla/gpu/metrics?o_wallet={orch}&interval=1d&from=2025-12-10T00:00:00Z&to={END}"
    hour = rng.randint(0, 23)  # a network-wide page of one hour
    workflow = rng.choice(WORKFLOWS)
    return (
        f"/v1/sla/gpu/metrics?workflow={workflow}&interval=1h&from=2026-01-08T{hour:02d}:00:00Z"
        f"&to=2026-01-08T{hour:02d}:59:00Z&limit=50&offset={rng.choice((0, 50))}"
    )


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: a load generator on the same 2 cores must cost far less than the
    server it measures (httpx spent ~4-6 ms of CPU per request here, several times a cache hit's cost)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        else:
            body = b""
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def _load(
    base: str, seconds: float, clients: int = CLIENTS
) -> tuple[list[float], int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    hits: list[float] = []  # latencies of the responses served from the shared cache
    deadline = time.perf_counter() + seconds
    host, port = base.removeprefix("http://").split(":")

    async def one(seed_value: int) -> None:
        nonlocal errors
        rng = random.Random(seed_value)
        conn = _Connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                path = _paths(rng)
                started = time.perf_counter()
                status, headers, _ = await conn.get(path)
                took = (time.perf_counter() - started) * 1000
                latencies.append(took)
                if status != 200:
                    errors += 1
                if headers.get("x-cache") == "hit":
                    hits.append(took)
        finally:
            conn.close()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies, errors, hits, len(latencies)


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


def measure(url: str, cache_s: int, clients: int = CLIENTS, seconds: float = DURATION_S) -> dict[str, float]:
    port = _free_port()
    proc = _serve(url, port, cache_s)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_load(base, 2.0, clients))  # warm-up: connections, caches
        started = time.perf_counter()
        latencies, errors, hits, count = asyncio.run(_load(base, seconds, clients))
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
        "hit_ratio": len(hits) / count if count else 0.0,
        "hit_p50": _pct(hits, 0.50) if hits else 0.0,
        "hit_p95": _pct(hits, 0.95) if hits else 0.0,
    }


def run(report: Report) -> dict[str, float]:
    url = scratch_database("naap_bench_api")
    started = time.perf_counter()
    counts = seed(url)
    note = f"{DAYS} d × {ORCHESTRATORS} orch, {time.perf_counter() - started:.1f} s in all"
    for table, rows in counts.items():
        report.add(f"api: {table} rows seeded", rows, note)
        note = ""
    for name, plan in _plans(url).items():
        report.add(f"api plan: {name}", "EXPLAIN", plan)
    figures: dict[str, float] = {}
    runs = (("cached", 60, CLIENTS, DURATION_S), ("uncached", 0, CLIENTS, DURATION_S), ("serial", 0, 1, 8.0))
    for label, cache_s, clients, seconds in runs:  # serial: one client, no cache = the service time
        result = measure(url, cache_s, clients, seconds)
        note = (
            f"{clients} clients, uvicorn 2 workers, {result['requests']:.0f} req, "
            f"{result['errors']:.0f} non-200, cache hits {100 * result['hit_ratio']:.0f} %"
        )
        report.add(f"api {label}: p50 ms", result["p50"], note)
        report.add(f"api {label}: p95 ms", result["p95"])
        report.add(f"api {label}: p99 ms", result["p99"])
        report.add(f"api {label}: requests/s", result["rps"])
        if result["hit_ratio"]:
            report.add(f"api {label}: cache-hit p50 ms", result["hit_p50"])
            report.add(f"api {label}: cache-hit p95 ms", result["hit_p95"])
        figures[f"api_{label}_p95_ms"] = result["p95"]
        figures[f"api_{label}_rps"] = result["rps"]
    figures["api_p95_ms"] = figures["api_cached_p95_ms"]
    return figures


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
    out = Report()
    print(run(out), file=sys.stderr)
    out.print_table()
