"""Typed readers for environment variables: every setting has a documented default and fails loudly."""

from __future__ import annotations

import math
import os
from urllib.parse import parse_qs, unquote, urlparse


class ConfigError(ValueError):
    """A setting read from the environment has a value we cannot use."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_secret(name: str, *, debug: bool) -> str:
    """A secret that has no safe default: required unless debugging (then a fixed, public dev value)."""
    value = os.environ.get(name, "")
    if value:
        return value
    if debug:
        return f"dev-only-insecure-{name.lower()}"
    raise ConfigError(
        f"{name} must be set when NAAP_DEBUG is false; generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, got {raw!r}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int_list(name: str, default: list[int]) -> list[int]:
    items = env_list(name, [str(d) for d in default])
    try:
        return [int(item) for item in items]
    except ValueError as exc:
        raise ConfigError(f"{name} must be a comma-separated list of integers, got {items!r}") from exc


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def database_from_url(url: str, pool_size: int = 0) -> dict[str, object]:
    """Turn ``postgres://user:pass@host:port/name?host=/socket/dir`` into a Django DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"DATABASE_URL must be a postgres:// URL, got scheme {parsed.scheme!r}")
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    name = unquote(parsed.path.lstrip("/")) or "naap"
    entry: dict[str, object] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": host,
        "PORT": str(parsed.port or 5432),
        "CONN_MAX_AGE": 0,
    }
    if pool_size > 0:
        # One bounded psycopg pool per process: ASGI runs sync views on several threads, and persistent
        # per-thread connections would otherwise pile up until PostgreSQL refuses new clients.
        entry["OPTIONS"] = {"pool": {"min_size": 1, "max_size": pool_size, "timeout": 10}}
    else:
        entry["CONN_MAX_AGE"] = 60
        entry["CONN_HEALTH_CHECKS"] = True
    return entry
