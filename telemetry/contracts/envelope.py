"""The two envelopes producers send, normalised into one :class:`Event`.

* go-livepeer / open-pool: ``{id, type, timestamp, gateway, data | payload}``
* NaaP v1 (seed 002 §3.2): ``{schema_version: "v1", event_type, timestamp_ms, source_type, publisher, ids,
  geo, payload}``

Per-type payload checks live in ``telemetry.contracts.types`` (strict on ids, types, units and timestamps,
tolerant of unknown fields). Unknown event types are accepted as raw events with ``known_type=False``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from telemetry.contracts import reasons
from telemetry.contracts.errors import Rejection
from telemetry.contracts.types import CHECKS, KNOWN_TYPES
from telemetry.contracts.values import normalise_address, parse_timestamp

_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(slots=True)
class Event:
    event_type: str
    known_type: bool
    event_id: str
    event_time: datetime
    publisher: str
    gateway: str
    orchestrator: str
    stream_id: str
    request_id: str
    pipeline: str
    body: dict[str, Any]  # the event's data / payload object
    original: dict[str, Any]  # the whole event as received
    dedup_key: bytes
    naap_v1: bool
    region: str = ""  # NaaP v1 geo.region; go-livepeer events carry none
    raw: bytes | None = None  # the JSON text ``original`` was decoded from, when the pipeline kept it


def _text(value: object, field: str, limit: int = 256) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        if len(value) > limit:
            raise Rejection(reasons.BAD_VALUE, f"{field} is longer than {limit} characters")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Rejection(reasons.WRONG_TYPE, f"{field} must be a string, got {type(value).__name__}")


def _dedup_key(event_type: str, event_id: str, publisher: str, original: dict[str, Any]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    if event_id:
        digest.update(b"id\x00" + event_type.encode() + b"\x00" + event_id.encode())
    else:
        digest.update(b"content\x00" + publisher.encode() + b"\x00" + _encoder.encode(original))
    return digest.digest()


def normalise(obj: object, *, publisher: str, now: datetime, max_future: timedelta) -> Event:
    """Validate one decoded event and return it normalised, or raise :class:`Rejection`."""
    if not isinstance(obj, dict):
        raise Rejection(reasons.NOT_AN_OBJECT, f"an event must be a JSON object, got {type(obj).__name__}")
    if obj.get("schema_version") is not None or "event_type" in obj:
        event = _naap_v1(obj, publisher)
    else:
        event = _livepeer(obj, publisher)
    if event.event_time - now > max_future:
        raise Rejection(
            reasons.FUTURE_TIMESTAMP,
            f"timestamp {event.event_time.isoformat()} is more than {int(max_future.total_seconds())} s ahead",
        )
    check = CHECKS.get(event.event_type)
    if check is not None:
        check(event)
    return event


def _livepeer(obj: dict[str, Any], publisher: str) -> Event:
    event_type = obj.get("type")
    if event_type is None:
        raise Rejection(reasons.MISSING_FIELD, "type is required")
    if not isinstance(event_type, str) or not event_type:
        raise Rejection(reasons.WRONG_TYPE, "type must be a non-empty string")
    if "timestamp" not in obj:
        raise Rejection(reasons.MISSING_FIELD, "timestamp is required")
    event_time = parse_timestamp(obj["timestamp"])
    event_id = _text(obj.get("id"), "id", 128)
    body = obj.get("data", obj.get("payload"))
    if body is None:
        body = {}
    if not isinstance(body, dict | list | str):
        raise Rejection(reasons.WRONG_TYPE, "data/payload must be an object, array or string")
    data: dict[str, Any] = body if isinstance(body, dict) else {"value": body}
    orch_info = data.get("orchestrator_info")
    orchestrator = ""
    if isinstance(orch_info, dict):
        orchestrator = normalise_address(orch_info.get("address"), "orchestrator_info.address")
    elif orch_info is not None:
        raise Rejection(reasons.WRONG_TYPE, "orchestrator_info must be an object")
    elif isinstance(data.get("ethAddress"), str):
        orchestrator = normalise_address(data.get("ethAddress"), "ethAddress")
    return Event(
        event_type=event_type,
        known_type=event_type in KNOWN_TYPES,
        event_id=event_id,
        event_time=event_time,
        publisher=publisher,
        gateway=_text(obj.get("gateway"), "gateway"),
        orchestrator=orchestrator,
        stream_id=_text(data.get("stream_id"), "data.stream_id"),
        request_id=_text(data.get("request_id", data.get("requestID")), "data.request_id"),
        pipeline=_text(data.get("pipeline"), "data.pipeline"),
        body=data,
        original=obj,
        dedup_key=_dedup_key(event_type, event_id, publisher, obj),
        naap_v1=False,
    )


_NAAP_REQUIRED_IDS = ("gateway_id", "orchestrator_address", "model_id", "stream_id")
# Event types that describe an orchestrator or the network rather than a stream.
_NAAP_NO_STREAM = frozenset({"orch.health", "orch.assignment", "sla.window.summary", "sla.compliance.score"})


def _naap_v1(obj: dict[str, Any], publisher: str) -> Event:
    if obj.get("schema_version") != "v1":
        raise Rejection(reasons.BAD_VALUE, f"schema_version must be 'v1', got {obj.get('schema_version')!r}")
    event_type = obj.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise Rejection(reasons.MISSING_FIELD, "event_type is required")
    if "timestamp_ms" not in obj:
        raise Rejection(reasons.MISSING_FIELD, "timestamp_ms is required")
    event_time = parse_timestamp(obj["timestamp_ms"], "timestamp_ms")
    ids = obj.get("ids")
    if not isinstance(ids, dict):
        raise Rejection(reasons.MISSING_FIELD, "ids is required and must be an object")
    required = ("orchestrator_address",) if event_type in _NAAP_NO_STREAM else _NAAP_REQUIRED_IDS
    for key in required:
        if not ids.get(key):
            raise Rejection(reasons.MISSING_FIELD, f"ids.{key} is required")
    payload = obj.get("payload", {})
    if not isinstance(payload, dict):
        raise Rejection(reasons.WRONG_TYPE, "payload must be an object")
    pub = obj.get("publisher")
    if pub is not None and not isinstance(pub, dict):
        raise Rejection(reasons.WRONG_TYPE, "publisher must be an object")
    geo = obj.get("geo")
    if geo is not None and not isinstance(geo, dict):
        raise Rejection(reasons.WRONG_TYPE, "geo must be an object")
    region = _text(geo.get("region"), "geo.region", 64) if geo else ""
    event_id = _text(obj.get("event_id", ids.get("trace_id")), "event_id", 128)
    if event_id and ids.get("trace_id") == event_id:
        event_id = f"{event_id}:{event_type}:{obj['timestamp_ms']}"
    return Event(
        event_type=event_type,
        known_type=event_type in KNOWN_TYPES,
        event_id=event_id,
        event_time=event_time,
        publisher=publisher,
        gateway=_text(ids.get("gateway_id"), "ids.gateway_id"),
        orchestrator=normalise_address(ids.get("orchestrator_address"), "ids.orchestrator_address"),
        stream_id=_text(ids.get("stream_id"), "ids.stream_id"),
        request_id=_text(ids.get("request_id"), "ids.request_id"),
        pipeline=_text(ids.get("model_id"), "ids.model_id"),
        body=payload,
        original=obj,
        dedup_key=_dedup_key(event_type, event_id, publisher, obj),
        naap_v1=True,
        region=region,
    )
