"""Parameter rules of the public API: time windows, caps and pagination. Pure Python, no Django views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
PERIODS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
# Default span when ``from`` is omitted, per interval.
DEFAULT_SPAN: dict[str, timedelta] = {
    "1m": timedelta(hours=1),
    "5m": timedelta(hours=6),
    "1h": timedelta(days=2),
    "1d": timedelta(days=30),
}
MAX_BUCKETS = 1440  # per request: 1 day of 1m, 5 days of 5m, 60 days of 1h, ~4 years of 1d
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_OFFSET = 100_000
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class ParamError(Exception):
    """A request parameter with a value we cannot serve; answered as 422 naming the parameter."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def floor_to(moment: datetime, step: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // step) * step


def ceil_to(moment: datetime, step: timedelta) -> datetime:
    floored = floor_to(moment, step)
    return floored if floored == moment else floored + step


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    step: timedelta


def resolve_window(start: datetime | None, end: datetime | None, interval: str, now: datetime) -> Window:
    """[start, end) aligned outward to ``interval`` buckets; defaults end at the current bucket's end."""
    step = INTERVALS[interval]
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise ParamError(name, "must include a UTC offset, e.g. 2026-01-09T14:00:00Z")
    end_at = ceil_to(end if end is not None else now, step)
    start_at = floor_to(start, step) if start is not None else end_at - DEFAULT_SPAN[interval]
    if start_at >= end_at:
        raise ParamError("from", "must be earlier than to")
    buckets = (end_at - start_at) // step
    if buckets > MAX_BUCKETS:
        raise ParamError(
            "from",
            f"range spans {buckets} {interval} buckets; at most {MAX_BUCKETS} per request "
            f"(at most {MAX_BUCKETS * step} at interval {interval})",
        )
    return Window(start=start_at, end=end_at, step=step)


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ParamError("limit", f"must be between 1 and {MAX_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise ParamError("offset", f"must be between 0 and {MAX_OFFSET}")


def next_link(path: str, query: dict[str, str], limit: int, offset: int, total: int) -> str | None:
    """URL of the following page (same filters), or None when this page is the last."""
    if offset + limit >= total:
        return None
    following = dict(query)
    following["limit"] = str(limit)
    following["offset"] = str(offset + limit)
    return f"{path}?{urlencode(sorted(following.items()))}"


def time_window(start: datetime, end: datetime) -> str:
    """ISO 8601 interval ``start/end`` in UTC with a Z suffix, as in the seed's sample response."""
    return f"{_iso(start)}/{_iso(end)}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalise_address(param: str, value: str | None) -> str | None:
    """Lower-case 0x address, or ParamError naming ``param``."""
    if value is None or value == "":
        return None
    lowered = value.strip().lower()
    if len(lowered) != 42 or not lowered.startswith("0x"):
        raise ParamError(param, "must be a 0x-prefixed 20-byte hex address")
    try:
        int(lowered[2:], 16)
    except ValueError as exc:
        raise ParamError(param, "must be a 0x-prefixed 20-byte hex address") from exc
    return lowered
