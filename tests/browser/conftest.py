"""A real ASGI server (uvicorn, in a thread, against the test database) and the system Chromium.

Websockets need ASGI, so pytest-django's WSGI live_server will not do. The channel layer is Redis (a real
peer, with a per-process prefix) so that broadcasts from the test thread reach the server's event loop.
A second plain HTTP server on another port plays the Livepeer Explorer that frames our embeds.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from channels.layers import channel_layers

from tests.leaderboard.conftest import _clean_live_registry, make_score  # noqa: F401  (shared fixtures)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_channel_layer(settings) -> Iterator[None]:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [settings.TEST_REDIS_URL], "prefix": f"naaptest{os.getpid()}ws"},
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def asgi_server(
    transactional_db, clean_time_tables, redis_channel_layer, settings, monkeypatch
) -> Iterator[str]:
    """Base URL of our production ASGI application served by uvicorn (WhiteNoise serves /static/ itself)."""
    # Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests make
    # from that thread are ordinary synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from naap_site.asgi import application

    port = free_port()
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Celery tasks run inline where they are sent (the demo's mode): the broadcast after a pipeline run."""
    from naap_site.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def scoring_v1(transactional_db) -> None:
    """Transactional tests flush the migration's seed: put scoring version 1 back."""
    import importlib

    from sla.scoring_models import ScoringConfig

    seed = dict(importlib.import_module("sla.migrations.0004_scoring").SEED_V1)
    ScoringConfig.objects.get_or_create(version=seed.pop("version"), defaults=seed)


@pytest.fixture(scope="session", autouse=True)
def _release_server_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Connections left open by the server's worker threads would keep the test database from being
    dropped at the end of the session: end them once no test runs any more."""
    yield
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [db["NAME"]],
        )


@pytest.fixture
def other_origin() -> Iterator[Callable[[str], str]]:
    """A second local HTTP server (another origin) that serves pages we give it; returns their URL maker."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"

    def host(path: str, html: str = "") -> str:
        pages[path] = html
        return origin + path

    host.origin = origin  # type: ignore[attr-defined]
    yield host
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never download a browser)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        yield page
        context.close()
        browser.close()
