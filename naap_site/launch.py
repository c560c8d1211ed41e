"""`make demo` and `make test` start-up: find or start PostgreSQL and Redis, then run the system.

python -m naap_site.launch check-services   # make sure PostgreSQL answers and the database exists
python -m naap_site.launch demo             # migrations, web, worker, beat and the simulator
"""

from __future__ import annotations

import os
import socket
import sys
import time
from urllib.parse import urlparse

import psycopg
from psycopg import sql


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (the default is `naap`)."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/") or "naap"
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}", file=sys.stderr)


def wait_for(host: str, port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} is not answering on {host}:{port}; start it or set its URL")
        time.sleep(0.5)


def check_services() -> None:
    db_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/naap")
    parsed = urlparse(db_url)
    wait_for(parsed.hostname or "127.0.0.1", parsed.port or 5432, "PostgreSQL")
    redis = urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    wait_for(redis.hostname or "127.0.0.1", redis.port or 6379, "Redis")
    ensure_database(db_url)


def main(argv: list[str]) -> None:
    command = argv[1] if len(argv) > 1 else "demo"
    if command == "check-services":
        check_services()
    elif command == "demo":
        from naap_site.demo import run_demo

        run_demo()
    else:
        raise SystemExit(f"unknown command {command!r}: use demo or check-services")


if __name__ == "__main__":
    main(sys.argv)
