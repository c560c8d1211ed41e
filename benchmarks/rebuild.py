"""Issue 4 §5c: rebuild speed from the raw log.

A scratch database receives a simulated network (≥ 200k events: 100 orchestrators for 60 minutes plus the
hours-late sessions) through ``manage.py ingest_file``; then, timed stage by stage in one Django process,
everything derived is rebuilt from the raw log: facts (``telemetry.services.rebuild_facts``), sessions
(``sla.sessions.derive.derive(rebuild=True)``, what ``sla_derive --rebuild`` runs) and every rollup level
(``sla.refresh.rebuild_all`` over the hours the raw log spans). Reported: raw events ÷ total seconds, and each
stage's seconds and share; then, separately, what one periodic refresh of 3 dirty minutes costs.

    python -m benchmarks.rebuild
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import PY, ROOT, VAR, Report, bench_env, scratch_database

SEED = 5
ORCHESTRATORS = 100
DURATION = "60m"
START = "2026-01-09T12:00:00Z"

STAGES = """
import json, time
import django
django.setup()
from telemetry.services import rebuild_facts
from sla.sessions.derive import derive
from sla.refresh import rebuild_all

from datetime import timedelta
from django.db import connection
from sla.refresh import ceil_to, floor_to
with connection.cursor() as cursor:
    cursor.execute("SELECT min(event_time), max(event_time) FROM telemetry_events_raw")
    low, high = cursor.fetchone()
hour = timedelta(hours=1)
start, end = floor_to(low, hour), ceil_to(high + timedelta(microseconds=1), hour)
out = {{"range_h": (end - start) / hour}}
t0 = time.perf_counter()
facts = rebuild_facts(start, end)
out["facts_s"] = time.perf_counter() - t0
out["raw_events"] = facts["raw_events"]
out["facts_written"] = facts["facts_written"]
t0 = time.perf_counter()
stats = derive(rebuild=True)
out["sessions_s"] = time.perf_counter() - t0
out["sessions"] = stats.sessions
out["segments"] = stats.segments
t0 = time.perf_counter()
buckets = rebuild_all(start, end)
out["rollups_s"] = time.perf_counter() - t0
out["rollup_buckets"] = sum(buckets.values())
# What the periodic refresh does after a derive run rewrote a few minutes: every level of every family
# over 3 dirty minutes in the middle of the data (median of 5; not part of the rebuild total).
from sla.refresh import refresh_ranges
mid = floor_to(start + (end - start) / 2, timedelta(minutes=1))
times = []
for _ in range(5):
    t0 = time.perf_counter()
    refresh_ranges([(mid, mid + timedelta(minutes=3))])
    times.append(time.perf_counter() - t0)
out["incremental_ms"] = 1000 * sorted(times)[2]
print("RESULT " + json.dumps(out))
"""


def simulated_file() -> Path:
    path = VAR / f"rebuild-s{SEED}-o{ORCHESTRATORS}.jsonl"
    if path.exists():
        return path
    VAR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            PY,
            "manage.py",
            "simulate",
            "--seed",
            str(SEED),
            "--duration",
            DURATION,
            "--orchestrators",
            str(ORCHESTRATORS),
            "--start",
            START,
            "--out",
            str(path),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return path


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def run(report: Report) -> dict[str, float]:
    path = simulated_file()
    lines = sum(1 for _ in path.open("rb"))
    url = scratch_database("naap_bench_rebuild")
    env = bench_env(url)
    started = time.perf_counter()
    counts = json.loads(_manage(env, "ingest_file", str(path)).strip().splitlines()[-1])
    ingest_s = time.perf_counter() - started
    report.add("rebuild: events ingested", counts["accepted"], f"{lines:,} lines, {ingest_s:.1f} s (setup)")
    code = STAGES.format()
    done = subprocess.run([PY, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    result = json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))[7:])
    total = result["facts_s"] + result["sessions_s"] + result["rollups_s"]
    rate = result["raw_events"] / total
    report.add("rebuild: raw events", result["raw_events"], f"{result['facts_written']:,} facts")
    for stage, note in (
        ("facts", f"{result['facts_written']:,} fact rows"),
        ("sessions", f"{result['sessions']:,} sessions, {result['segments']:,} segments"),
        ("rollups", f"{result['rollup_buckets']:,} buckets, every level, {result['range_h']:.0f} h range"),
    ):
        seconds = result[f"{stage}_s"]
        report.add(f"rebuild: {stage} s", seconds, f"{100 * seconds / total:.0f} % — {note}")
    report.add("rebuild: total s", total)
    report.add("rebuild: events/s", rate, "raw events ÷ total seconds")
    report.add("refresh: 3 dirty minutes ms", result["incremental_ms"], "every level, median of 5")
    return {
        "rebuild_events_per_s": rate,
        "rebuild_seconds": total,
        "rebuild_raw_events": float(result["raw_events"]),
        "rebuild_facts_share": result["facts_s"] / total,
        "rebuild_sessions_share": result["sessions_s"] / total,
        "rebuild_rollups_share": result["rollups_s"] / total,
        "refresh_3min_ms": result["incremental_ms"],
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
    out = Report()
    print(run(out), file=sys.stderr)
    out.print_table()
