"""Shared benchmark plumbing: scratch databases, a results table, process memory sampling."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
PY = sys.executable
ADMIN_URL = os.environ.get("NAAP_BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Benchmarks run the production settings, which require a secret key; scratch runs get a fixed one
# (in this process too, for the benchmarks that set Django up in-process).
BENCH_SECRET_KEY = "benchmark-only-secret-key-not-for-production"
os.environ.setdefault("NAAP_SECRET_KEY", BENCH_SECRET_KEY)


@dataclass
class Report:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: object, note: str = "") -> None:
        text = f"{value:,.1f}" if isinstance(value, float) else str(value)
        self.rows.append((name, text, note))
        print(f"  {name:<34} {text:>14}  {note}", file=sys.stderr, flush=True)

    def print_table(self) -> None:
        width = max((len(r[0]) for r in self.rows), default=10)
        print(f"{'measure':<{width}}  {'value':>14}  note")
        print("-" * (width + 40))
        for name, value, note in self.rows:
            print(f"{name:<{width}}  {value:>14}  {note}")


def scratch_database(name: str) -> str:
    """(Re)create a scratch database and migrate it; returns its URL."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    env = bench_env(url)
    subprocess.run([PY, "manage.py", "migrate", "-v0", "--noinput"], cwd=ROOT, env=env, check=True)
    return url


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "naap_site.settings",
            "REDIS_URL": os.environ.get("NAAP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "NAAP_CELERY_KEY_PREFIX": f"naapbench{os.getpid()}:",
            "NAAP_LOG_LEVEL": "WARNING",
        }
    )
    env.setdefault("NAAP_SECRET_KEY", BENCH_SECRET_KEY)
    env.update(extra)
    return env


def process_rss_mb(pid: int) -> dict[int, float]:
    """Resident memory of a process and each of its descendants, in MB, by pid."""
    found: dict[int, float] = {}
    pids = [pid]
    while pids:
        current = pids.pop()
        if current in found:
            continue
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        found[current] = int(line.split()[1]) / 1024
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


class PeakRss:
    """Samples a process tree's memory: the peak of the sum, and each process's own peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.peak = 0.0
        self.per_process: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._every = every

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            sample = process_rss_mb(self.pid)
            self.peak = max(self.peak, sum(sample.values()))
            for pid, mb in sample.items():
                self.per_process[pid] = max(self.per_process.get(pid, 0.0), mb)
            time.sleep(self._every)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used, including its children that have exited."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0
    # fields[0] is field 3 of proc(5): utime, stime, cutime, cstime are fields 14-17
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of a process itself and of all its descendants (living and exited)."""
    own = process_cpu_s(pid)
    descendants = sum(process_cpu_s(p) for p in process_rss_mb(pid) if p != pid)
    return own, descendants


class BackendCpu:
    """Samples the CPU seconds of the server processes of other sessions on one database.

    Sessions come and go (Celery closes a worker's connections after each task), so the sampler keeps
    the largest figure seen per server process; the last fraction of a sampling interval of a session
    that ends is missed, so the sum is a slight undercount.
    """

    def __init__(self, url: str, every: float = 0.1) -> None:
        self.url = url
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._every = every

    @property
    def total(self) -> float:
        return sum(self.seen.values())

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            baseline: dict[int, float] = {}
            first = True
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in rows:
                    used = process_cpu_s(pid)
                    if first:
                        baseline[pid] = used  # sessions already open count from now on
                    self.seen[pid] = max(self.seen.get(pid, 0.0), used - baseline.get(pid, 0.0))
                first = False
                time.sleep(self._every)
