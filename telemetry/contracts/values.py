"""Parsing of the value formats real producers send: timestamps, addresses, amounts with units."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from telemetry.contracts import reasons
from telemetry.contracts.errors import Rejection

# Unix time in milliseconds is 13 digits until 2286; seconds are 10 digits. Anything between 1e11 and 1e14
# is taken as milliseconds, anything between 1e8 and 1e11 as seconds (runner traces send seconds).
_MS_MIN, _MS_MAX = 10**11, 10**14
_S_MIN = 10**8
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


def parse_timestamp(value: object, field: str = "timestamp") -> datetime:
    """Accept Unix ms (number or digit string), Unix seconds, or RFC 3339; return an aware UTC datetime."""
    if isinstance(value, bool) or value is None:
        raise Rejection(reasons.BAD_TIMESTAMP, f"{field} is missing or not a time: {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise Rejection(reasons.BAD_TIMESTAMP, f"{field} is empty")
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is None:
            return _parse_rfc3339(text, field)
    else:
        raise Rejection(
            reasons.BAD_TIMESTAMP, f"{field} must be a number or string, got {type(value).__name__}"
        )
    if number != number or number in (float("inf"), float("-inf")):
        raise Rejection(reasons.BAD_TIMESTAMP, f"{field} is not finite")
    if _MS_MIN <= number < _MS_MAX:
        seconds = number / 1000.0
    elif _S_MIN <= number < _MS_MIN:
        seconds = number
    else:
        raise Rejection(reasons.BAD_TIMESTAMP, f"{field} {value!r} is not Unix seconds or milliseconds")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _parse_rfc3339(text: str, field: str) -> datetime:
    candidate = text.replace("Z", "+00:00").replace("z", "+00:00")
    # Python accepts at most microseconds; go-livepeer sends nanoseconds.
    if "." in candidate:
        head, _, rest = candidate.partition(".")
        digits = ""
        idx = 0
        while idx < len(rest) and rest[idx].isdigit():
            digits += rest[idx]
            idx += 1
        candidate = f"{head}.{digits[:6].ljust(6, '0')}{rest[idx:]}" if digits else head + rest[idx:]
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError as exc:
        raise Rejection(reasons.BAD_TIMESTAMP, f"{field} {text[:60]!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise Rejection(reasons.BAD_TIMESTAMP, f"{field} {text[:60]!r} has no time zone")
    return parsed.astimezone(UTC)


def normalise_address(value: object, field: str = "address") -> str:
    """Lower-case a 0x address; the empty string stays empty (first traces carry ``address: ""``)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a string")
    text = value.strip().lower()
    if text == "":
        return ""
    if _ADDRESS.fullmatch(text) is None:
        raise Rejection(reasons.BAD_VALUE, f"{field} {value[:50]!r} is not a 20-byte hex address")
    return text


def parse_amount(value: object, field: str, unit: str | None = None) -> Decimal:
    """Parse ``"2400000000000000 WEI"``, ``"0.0010000000"`` or ``"1646.821 wei/pixel"`` exactly."""
    if isinstance(value, bool):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a number or numeric string")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a number or numeric string")
    text = value.strip()
    number_text, _, found_unit = text.partition(" ")
    if unit is not None and found_unit and found_unit.strip().lower() != unit.lower():
        raise Rejection(reasons.BAD_VALUE, f"{field} has unit {found_unit!r}, expected {unit!r}")
    try:
        amount = Decimal(number_text)
    except InvalidOperation as exc:
        raise Rejection(reasons.BAD_VALUE, f"{field} {text[:40]!r} is not a number") from exc
    if not amount.is_finite():
        raise Rejection(reasons.BAD_VALUE, f"{field} is not finite")
    return amount


MAX_NESTING = 64
_NESTING_SCAN_FROM = 2 * MAX_NESTING  # fewer brackets than this cannot nest deeper than MAX_NESTING


def check_json_shape(raw: bytes, value: object) -> Rejection | None:
    """What JSON allows but PostgreSQL (or the encoder) refuses: NUL characters and very deep nesting.

    Cheap on the hot path: two byte scans of the raw text, and a walk of the value only when those
    scans cannot rule the problem out.
    """
    if b"\\u0000" in raw and _has_nul(value):
        return Rejection(reasons.BAD_VALUE, "strings must not contain NUL (\\u0000)")
    if raw.count(b"[") + raw.count(b"{") >= _NESTING_SCAN_FROM and _depth(value) > MAX_NESTING:
        return Rejection(reasons.BAD_VALUE, f"JSON is nested deeper than {MAX_NESTING} levels")
    return None


def _has_nul(value: object) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(value: object) -> int:
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest
