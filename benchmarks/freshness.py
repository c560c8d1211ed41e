"""Issue 4 §5b: freshness — publication of an event → its effect in ``GET /v1/sla/gpu/metrics`` (1 m interval).

Everything runs as in production, one process each, against a scratch database:
uvicorn (the ASGI app), a Celery worker on the ``ingest`` and ``derive`` queues, ``manage.py consume_mqtt`` on
a unique topic of the local Mosquitto (with its defaults: MQTT 5 with a large Receive Maximum, batches cut
after ``NAAP_SOURCE_MAX_DELAY_MS``), and a refresher. The refresher is a loop calling
``sla.tasks.run_pipeline`` (derive → rollups → scores) back to back rather than beat with a 1 s schedule:
beat would add up to a second of scheduling delay plus queue time, and tasks piling up behind a slow
refresh would only wait on the same advisory lock; the loop is what beat at "as often as possible" means.
Like beat, it logs a failed run and starts the next one.

Load: ``manage.py simulate --publish mqtt://…/<topic> --rate 2000`` (200 orchestrators, starting 20 minutes
in the past so that 2,000 events/s is a backlog the simulator never runs out of). Probe: a dedicated
session (request, first ingest, runner and first-frame traces, then one ``ai_stream_status`` per second)
for an orchestrator address nobody else uses; after each status publication the API is polled until its
1 m rows count that many fps samples. The shared response cache is off, so the figure is the pipeline's
(with the production cache a 1 m row may additionally be up to its 5 s max-age old).

Besides the freshness percentiles the table shows where the time goes: publication → the batch cut (the
adapter's share, from the probe events' ``received_at``), the duration of the refresher's cycles, and the
CPU each process used (the machine is small and shared, so this tells starvation from slowness).

    python -m benchmarks.freshness            # NAAP_BENCH_FRESHNESS_SECONDS=60 by default
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg

from benchmarks.common import PY, ROOT, Report, bench_env, scratch_database

RATE = 2000
DURATION_S = float(os.environ.get("NAAP_BENCH_FRESHNESS_SECONDS", "60"))
WARMUP_S = 8.0
PIPELINE = "streamdiffusion-sdxl"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883

REFRESHER = """
import sys
import time
import traceback
import django
django.setup()
from django.db import close_old_connections
import sla.tasks
from sla.tasks import run_pipeline

spent = {}

def timed(name, fn):  # measures the stages run_pipeline calls; changes nothing else
    def wrapper(*args, **kwargs):
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = time.monotonic() - started
    return wrapper

sla.tasks.refresh_rollups = timed("rollups", sla.tasks.refresh_rollups)
sla.tasks.compute_scores_for_ranges = timed("scores", sla.tasks.compute_scores_for_ranges)
cycles = open(sys.argv[1], "a", buffering=1)
while True:
    started = time.monotonic()
    spent.clear()
    try:
        summary = run_pipeline()
    except Exception:  # as beat would: a failed run is logged and the next one starts over
        traceback.print_exc()
        close_old_connections()
        time.sleep(0.1)
        continue
    total = time.monotonic() - started
    derived = summary.derived
    rollups, scores = spent.get("rollups", 0.0), spent.get("scores", 0.0)
    cycles.write(f"{total:.3f} {derived.facts} {derived.seconds:.3f} {rollups:.3f} {scores:.3f}\\n")
    if summary.rollups.skipped or summary.rollups.empty:
        time.sleep(0.1)
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Probe:
    """One session of a dedicated orchestrator, published event by event on the load's topic."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.address = "0x" + uuid.uuid4().hex[:8] + "f" * 32
        self.stream = f"probe-{uuid.uuid4().hex[:12]}"
        self.request = uuid.uuid4().hex[:8]
        self.url = "https://probe.example:8935"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"naap-probe-{self.stream}")
        self.client.connect(MQTT_HOST, MQTT_PORT)
        self.client.loop_start()
        self.sent = 0

    def _publish(self, kind: str, at: datetime, data: dict[str, Any]) -> None:
        event = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "timestamp": str(_ms(at)),
            "gateway": "probe-gateway",
            "data": {"stream_id": self.stream, "request_id": self.request, "pipeline": PIPELINE, **data},
        }
        self.client.publish(self.topic, json.dumps(event), qos=1).wait_for_publish(timeout=10)

    def _trace(self, kind: str, at: datetime, runner: bool = False) -> None:
        stamp: float = round(at.timestamp(), 3) if runner else _ms(at)
        info = {"address": self.address, "url": self.url}
        self._publish("stream_trace", at, {"type": kind, "timestamp": stamp, "orchestrator_info": info})

    def open(self) -> None:
        t0 = datetime.now(UTC) - timedelta(seconds=3)
        self._trace("gateway_receive_stream_request", t0)
        self._trace("gateway_send_first_ingest_segment", t0 + timedelta(milliseconds=200))
        self._trace("runner_receive_first_ingest_segment", t0 + timedelta(milliseconds=300), runner=True)
        self._trace("runner_send_first_processed_segment", t0 + timedelta(milliseconds=1300), runner=True)
        self._trace("gateway_receive_first_processed_segment", t0 + timedelta(milliseconds=1500))

    def status(self) -> float:
        """Publish the next marked status sample; returns its publication time (monotonic)."""
        self.sent += 1
        now = datetime.now(UTC)
        self._publish(
            "ai_stream_status",
            now,
            {
                "state": "ONLINE",
                "timestamp": _ms(now),
                "orchestrator_info": {"address": self.address, "url": self.url},
                "inference_status": {"fps": 20.0 + self.sent / 1000, "restart_count": 0},
                "input_status": {"fps": 20.0},
            },
        )
        return time.monotonic()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _drop_session(client_id: str) -> None:
    """Remove the consumer's durable session from the shared Mosquitto (a clean session replaces it)."""
    cleaner = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    cleaner.connect(MQTT_HOST, MQTT_PORT)
    cleaner.disconnect()


def _visible_samples(client: httpx.Client, address: str, since: datetime) -> int:
    start = since.replace(second=0, microsecond=0) - timedelta(minutes=1)
    end = datetime.now(UTC) + timedelta(minutes=2)
    response = client.get(
        "/v1/sla/gpu/metrics",
        params={
            "o_wallet": address,
            "interval": "1m",
            "from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "to": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "limit": 500,
        },
    )
    if response.status_code == 404:  # not derived yet: never seen
        return 0
    response.raise_for_status()
    return sum(int(row["samples"]["fps_samples"]) for row in response.json()["data"])


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its live descendants, in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pids, seen = 0.0, [pid], set()
    while pids:
        current = pids.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():  # children of any of its threads
                pids.extend(int(p) for p in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
    return total


def _probe_transport_lag(url: str, stream: str) -> list[float]:
    """Seconds from each probe status sample's publication to the stamp of the batch that carried it."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM received_at - event_time) FROM telemetry_events_raw"
            " WHERE stream_id = %s AND event_type = 'ai_stream_status'",
            [stream],
        ).fetchall()
    return [float(r[0]) for r in rows]


def _raw_count(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry_events_raw").fetchone()
    return int(row[0]) if row else 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


def _start(args: list[str], env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 20
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def run(report: Report) -> dict[str, float]:
    url = scratch_database("naap_bench_freshness")
    port = _free_port()
    topic = f"naap/bench/fresh-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    env = bench_env(
        url,
        NAAP_API_RATE_LIMIT="100000000",
        NAAP_API_RESPONSE_CACHE_S="0",
        NAAP_ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    log_path = ROOT / "var" / "bench" / "freshness.log"
    cycles_path = ROOT / "var" / "bench" / "freshness-cycles.txt"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cycles_path.unlink(missing_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    probe: Probe | None = None
    consumer_id = f"naap-bench-{uuid.uuid4().hex[:8]}"
    with log_path.open("ab") as log:
        try:
            procs.append(
                _start(
                    [PY, "-m", "uvicorn", "naap_site.asgi:application", "--host", "127.0.0.1"]
                    + ["--port", str(port), "--log-level", "warning", "--no-access-log"],
                    env,
                    log,
                )
            )
            procs.append(
                _start(
                    [PY, "-m", "celery", "-A", "naap_site", "worker", "-Q", "ingest,derive", "-c", "2"]
                    + ["--pool", "prefork", "-l", "warning", "--without-heartbeat", "--without-gossip"]
                    + ["--without-mingle", f"--hostname=fresh{os.getpid()}@localhost"],
                    env,
                    log,
                )
            )
            procs.append(_start([PY, "-c", REFRESHER, str(cycles_path)], env, log))
            procs.append(
                _start(
                    [PY, "manage.py", "consume_mqtt", "--url", f"mqtt://{MQTT_HOST}:{MQTT_PORT}"]
                    + ["--streams", topic, "--client-id", consumer_id]
                    + ["--mode", "celery", "--progress-every", "30"],
                    env,
                    log,
                )
            )
            base = f"http://127.0.0.1:{port}"
            client = httpx.Client(base_url=base, timeout=30)
            for _ in range(300):
                try:
                    client.get("/v1/openapi.json")
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(3)  # the consumer subscribes
            procs.append(
                _start(
                    [PY, "manage.py", "simulate", "--seed", "17", "--orchestrators", "200"]
                    + ["--duration", "inf", "--start", "now-20m", "--rate", str(RATE)]
                    + ["--publish", f"mqtt://{MQTT_HOST}:{MQTT_PORT}/{topic}"],
                    env,
                    log,
                )
            )
            time.sleep(WARMUP_S)
            probe = Probe(topic)
            opened_at = datetime.now(UTC)
            probe.open()
            raw_before, t_before = _raw_count(url), time.monotonic()
            cpu_before = [_cpu_seconds(p.pid) for p in procs]
            published: list[float] = []  # monotonic publication time of sample k (1-based: index k-1)
            latencies: list[float] = []
            next_publish = time.monotonic()
            deadline = time.monotonic() + DURATION_S
            seen = 0
            while time.monotonic() < deadline or (seen < len(published) and time.monotonic() < deadline + 30):
                now = time.monotonic()
                if now >= next_publish and now < deadline:
                    published.append(probe.status())
                    next_publish += 1.0
                visible = _visible_samples(client, probe.address, opened_at)
                stamp = time.monotonic()
                while seen < min(visible, len(published)):
                    latencies.append(stamp - published[seen])
                    seen += 1
                time.sleep(0.05)
            raw_after, t_after = _raw_count(url), time.monotonic()
            cores = [
                (_cpu_seconds(p.pid) - c) / (t_after - t_before)
                for p, c in zip(procs, cpu_before, strict=True)
            ]
            transport = _probe_transport_lag(url, probe.stream)
        finally:
            if probe is not None:
                probe.close()
            _stop(list(reversed(procs)))
            _drop_session(consumer_id)
    rate = (raw_after - raw_before) / (t_after - t_before)
    missing = len(published) - len(latencies)
    note = f"{len(latencies)} probe samples, {missing} never visible, {DURATION_S:.0f} s"
    if not latencies:
        raise RuntimeError(f"no probe sample became visible; see {log_path}")
    p50, p95 = _pct(latencies, 0.50), _pct(latencies, 0.95)
    report.add("freshness: p50 s", p50, note)
    report.add("freshness: p95 s", p95, "target ≤ 5 s")
    report.add("freshness: max s", max(latencies))
    report.add("freshness: ingest events/s", rate, f"raw rows accepted while publishing {RATE}/s over MQTT")
    if transport:
        report.add(
            "freshness: to batch cut p50/p95 s",
            f"{_pct(transport, 0.5):.1f} / {_pct(transport, 0.95):.1f}",
            "publication → the adapter cut the batch",
        )
    # cycles that derived something (before the load starts, the loop spins over nothing)
    rows = [line.split() for line in cycles_path.read_text().splitlines() if line.strip()]
    busy = [[float(v) for v in row] for row in rows if int(row[1]) > 0]
    for column, name in ((0, "refresh cycle"), (2, "  derive"), (3, "  rollups"), (4, "  scores")):
        values = [row[column] for row in busy]
        if values:
            report.add(
                f"freshness: {name} p50/p95 s",
                f"{_pct(values, 0.5):.1f} / {_pct(values, 0.95):.1f}",
                f"{len(busy)} run_pipeline cycles with new facts" if column == 0 else "",
            )
    names = ("api", "worker", "refresher", "consumer", "simulator")
    report.add("freshness: cores used", " ".join(f"{n}={c:.2f}" for n, c in zip(names, cores, strict=True)))
    return {
        "freshness_p50_s": p50,
        "freshness_p95_s": p95,
        "freshness_max_s": max(latencies),
        "freshness_missing": float(missing),
        "freshness_ingest_events_per_s": rate,
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
    out = Report()
    print(run(out), file=sys.stderr)
    out.print_table()
