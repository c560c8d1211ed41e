"""Split a received body into event objects: one JSON object, a JSON array of objects, or JSON lines.

Each element is returned decoded or as a :class:`Rejection` with the raw bytes it came from, so that one
poison event never blocks its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from telemetry.contracts import reasons
from telemetry.contracts.errors import Rejection
from telemetry.contracts.values import check_json_shape

# network_capabilities and discovery_results list every orchestrator: they may exceed the normal limit.
LARGE_EVENT_TYPES = frozenset({"network_capabilities", "discovery_results"})
LARGE_EVENT_BYTES = 4 * 1024 * 1024

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(slots=True)
class Piece:
    raw: bytes
    value: object = None
    error: Rejection | None = None


def _size_check(raw: bytes, value: object, max_bytes: int) -> Rejection | None:
    if len(raw) <= max_bytes:
        return check_json_shape(raw, value)
    if isinstance(value, dict) and value.get("type") in LARGE_EVENT_TYPES and len(raw) <= LARGE_EVENT_BYTES:
        return check_json_shape(raw, value)
    return Rejection(reasons.TOO_LARGE, f"event is {len(raw)} bytes, the limit is {max_bytes}")


def _one(raw: bytes, max_bytes: int) -> Piece:
    if len(raw) > LARGE_EVENT_BYTES:
        return Piece(raw, error=Rejection(reasons.TOO_LARGE, f"event is {len(raw)} bytes"))
    try:
        value = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        return Piece(raw, error=Rejection(reasons.MALFORMED_JSON, str(exc)[:200]))
    error = _size_check(raw, value, max_bytes)
    return Piece(raw, value=value, error=error)


def split_body(body: bytes, max_bytes: int) -> list[Piece]:
    stripped = body.strip()
    if not stripped:
        return []
    if stripped[:1] == b"[":
        try:
            values = _decoder.decode(stripped)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            values = None
        if isinstance(values, list):
            pieces = []
            for value in values:
                raw = _encoder.encode(value)
                pieces.append(Piece(raw, value=value, error=_size_check(raw, value, max_bytes)))
            return pieces
    if b"\n" in stripped:
        return [_one(line, max_bytes) for line in stripped.split(b"\n") if line.strip()]
    return [_one(stripped, max_bytes)]


def split_value(value: object, max_bytes: int) -> list[Piece]:
    """For transports that already decoded JSON (e.g. a Streamr message's content)."""
    values = value if isinstance(value, list) else [value]
    pieces = []
    for item in values:
        raw = _encoder.encode(item)
        pieces.append(Piece(raw, value=item, error=_size_check(raw, item, max_bytes)))
    return pieces
