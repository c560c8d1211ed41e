"""Per-type payload checks. Each check raises Rejection for a payload that would corrupt a metric.

Strict on what the facts use — required ids, the JSON type of numbers, units of amounts, timestamps and
addresses — and silent about everything else: unknown fields are kept in the raw log untouched. The
example payloads in ``telemetry/contracts/examples/`` (one file per event type, from the seeds' real
payloads) pass these checks; the tests hold them to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from telemetry.contracts import reasons
from telemetry.contracts.errors import Rejection
from telemetry.contracts.values import normalise_address, parse_amount, parse_timestamp

if TYPE_CHECKING:
    from telemetry.contracts.envelope import Event

LIVEPEER_TYPES = frozenset(
    {
        "ai_stream_status",
        "stream_ingest_metrics",
        "stream_trace",
        "ai_stream_events",
        "create_new_payment",
        "network_capabilities",
        "discovery_results",
        "node_trace",
        "worker-connected",
        "worker-disconnected",
        "job-processed",
    }
)
NAAP_V1_TYPES = frozenset(
    {
        "gateway.request.start",
        "gateway.request.first_frame",
        "gateway.request.end",
        "gateway.swap",
        "orch.assignment",
        "orch.health",
        "runner.metrics.sample",
        "runner.inference.summary",
        "sla.window.summary",
        "sla.compliance.score",
    }
)
KNOWN_TYPES = LIVEPEER_TYPES | NAAP_V1_TYPES

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
# Amounts beyond 10^40 wei (far above all ETH in existence) or below 10^-40 are not real payments, and
# PostgreSQL numeric would refuse an exponent of thousands.
_MAX_EXPONENT = 40


def _require_stream(event: Event) -> None:
    if not event.stream_id:
        raise Rejection(reasons.MISSING_FIELD, f"data.stream_id is required for {event.event_type}")


def _object(body: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be an object")
    return value


def _number(body: dict[str, Any], key: str, field: str, *, minimum: float | None = None) -> None:
    """A JSON number (not a bool, not a string), finite, and not below ``minimum`` when given."""
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejection(reasons.BAD_VALUE, f"{field} must be finite")
    if isinstance(value, int) and abs(value) > _INT64:
        raise Rejection(reasons.BAD_VALUE, f"{field} is out of range")
    if minimum is not None and value < minimum:
        raise Rejection(reasons.BAD_VALUE, f"{field} must be at least {minimum}")


def _counter(body: dict[str, Any], key: str, field: str, limit: int = _INT64) -> None:
    """A non-negative whole number (JSON integer, or a float with no fraction)."""
    value = body.get(key)
    if value is None:
        return
    _number(body, key, field, minimum=0)
    if isinstance(value, float) and not value.is_integer():
        raise Rejection(reasons.BAD_VALUE, f"{field} must be a whole number")
    if value > limit:
        raise Rejection(reasons.BAD_VALUE, f"{field} is out of range")


def _numeric(body: dict[str, Any], key: str, field: str) -> None:
    """A number or a numeric string (go-livepeer sends some numbers as strings, e.g. latency_ms)."""
    value = body.get(key)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise Rejection(reasons.BAD_VALUE, f"{field} {value[:30]!r} is not a number") from None
        if not math.isfinite(number):
            raise Rejection(reasons.BAD_VALUE, f"{field} must be finite")
        return
    _number(body, key, field)


def _string(body: dict[str, Any], key: str, field: str) -> None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a string")


def _timestamp(body: dict[str, Any], key: str, field: str) -> None:
    value = body.get(key)
    if value is not None:
        parse_timestamp(value, field)


def _address(body: dict[str, Any], key: str, field: str, *, required: bool = False) -> None:
    value = body.get(key)
    if required and not value:
        raise Rejection(reasons.MISSING_FIELD, f"{field} is required")
    normalise_address(value, field)


def _amount(
    body: dict[str, Any], key: str, field: str, unit: str | None, *, required: bool
) -> Decimal | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise Rejection(reasons.MISSING_FIELD, f"{field} is required")
        return None
    amount = parse_amount(value, field, unit)
    if amount < 0:
        raise Rejection(reasons.BAD_VALUE, f"{field} must not be negative")
    if amount != 0 and abs(amount.adjusted()) > _MAX_EXPONENT:
        raise Rejection(reasons.BAD_VALUE, f"{field} is out of range")
    return amount


def _entries(event: Event, what: str) -> list[dict[str, Any]]:
    """A list payload arrives wrapped as ``{"value": [...]}``; a single object is one entry."""
    body = event.body
    if set(body) == {"value"}:
        value = body["value"]
        if not isinstance(value, list):
            raise Rejection(reasons.WRONG_TYPE, f"{event.event_type} payload must be a list of {what}")
        entries = value
    else:
        entries = [body]
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Rejection(reasons.WRONG_TYPE, f"{event.event_type} entry {index} must be an object")
    return entries


# ---- go-livepeer types ------------------------------------------------------------------------------


def _check_status(event: Event) -> None:
    _require_stream(event)
    _string(event.body, "state", "data.state")
    inference = _object(event.body, "inference_status", "data.inference_status")
    _number(inference, "fps", "data.inference_status.fps", minimum=0)
    _counter(inference, "restart_count", "data.inference_status.restart_count", _INT32)
    _timestamp(inference, "last_output_time", "data.inference_status.last_output_time")
    _number(
        _object(event.body, "input_status", "data.input_status"), "fps", "data.input_status.fps", minimum=0
    )
    _string(
        _object(event.body, "orchestrator_info", "data.orchestrator_info"), "url", "orchestrator_info.url"
    )


def _check_trace(event: Event) -> None:
    _require_stream(event)
    if not isinstance(event.body.get("type"), str) or not event.body["type"]:
        raise Rejection(reasons.MISSING_FIELD, "data.type (the trace subtype) is required")
    _timestamp(event.body, "timestamp", "data.timestamp")


def _check_ingest(event: Event) -> None:
    _require_stream(event)
    stats = _object(event.body, "stats", "data.stats")
    _string(stats, "conn_quality", "data.stats.conn_quality")
    peer = _object(stats, "peer_conn_stats", "data.stats.peer_conn_stats")
    _counter(peer, "BytesReceived", "peer_conn_stats.BytesReceived")
    _counter(peer, "BytesSent", "peer_conn_stats.BytesSent")
    tracks = stats.get("track_stats")
    if tracks is None:
        return
    if not isinstance(tracks, list):
        raise Rejection(reasons.WRONG_TYPE, "data.stats.track_stats must be a list")
    for index, track in enumerate(tracks):
        if not isinstance(track, dict):
            raise Rejection(reasons.WRONG_TYPE, f"track_stats[{index}] must be an object")
        _string(track, "type", _track_field(index, "type"))
        for key in ("packets_received", "packets_lost"):
            _counter(track, key, _track_field(index, key))
        for key in ("jitter", "rtt"):
            _number(track, key, _track_field(index, key), minimum=0)


@lru_cache(maxsize=64)
def _track_field(index: int, key: str) -> str:
    """Field names of the track checks, formatted once (every ingest sample has a few tracks)."""
    return f"track_stats[{index}].{key}"


def _check_stream_event(event: Event) -> None:
    _require_stream(event)
    _string(event.body, "type", "data.type")


def _check_payment(event: Event) -> None:
    body = event.body
    _amount(body, "faceValue", "faceValue", "WEI", required=True)
    win_prob = _amount(body, "winProb", "winProb", None, required=True)
    if win_prob is not None and win_prob > 1:
        raise Rejection(reasons.BAD_VALUE, "winProb must be between 0 and 1")
    _amount(body, "price", "price", "wei/pixel", required=False)
    tickets = body.get("numTickets")
    if isinstance(tickets, str) and tickets.strip().isdigit():
        tickets = int(tickets.strip())
    if isinstance(tickets, bool) or not isinstance(tickets, int) or not 0 <= tickets <= _INT64:
        raise Rejection(reasons.BAD_VALUE, "numTickets must be a non-negative whole number")
    _address(body, "recipient", "recipient")
    _address(body, "sender", "sender")
    for key in ("orchestrator", "sessionID", "manifestID", "requestID"):
        _string(body, key, key)


def _check_capabilities(event: Event) -> None:
    for entry in _entries(event, "orchestrators"):
        _address(entry, "address", "address", required=True)
        _address(entry, "local_address", "local_address")
        _string(entry, "orch_uri", "orch_uri")
        caps = _object(entry, "capabilities", "capabilities")
        _string(caps, "version", "capabilities.version")
        capacities = _object(caps, "capacities", "capabilities.capacities")
        for key in capacities:
            _counter(capacities, key, f"capabilities.capacities[{key[:10]}]", _INT32)
        hardware = entry.get("hardware")
        if hardware is None:
            continue
        if not isinstance(hardware, list):
            raise Rejection(reasons.WRONG_TYPE, "hardware must be a list")
        for hw in hardware:
            if not isinstance(hw, dict):
                raise Rejection(reasons.WRONG_TYPE, "hardware entries must be objects")
            _string(hw, "pipeline", "hardware.pipeline")
            _string(hw, "model_id", "hardware.model_id")
            for gpu in _object(hw, "gpu_info", "hardware.gpu_info").values():
                if not isinstance(gpu, dict):
                    raise Rejection(reasons.WRONG_TYPE, "hardware.gpu_info entries must be objects")
                _string(gpu, "id", "gpu_info.id")
                _string(gpu, "name", "gpu_info.name")


def _check_discovery(event: Event) -> None:
    for entry in _entries(event, "orchestrators"):
        _address(entry, "address", "address")
        _string(entry, "url", "url")
        _numeric(entry, "latency_ms", "latency_ms")


def _check_worker(event: Event) -> None:
    _address(event.body, "ethAddress", "ethAddress", required=True)


def _check_job(event: Event) -> None:
    body = event.body
    _address(body, "ethAddress", "ethAddress", required=True)
    for key in ("duration", "responseTime", "realTimeRatio", "pricePerComputeUnit"):
        _number(body, key, key, minimum=0)
    _counter(body, "computeUnits", "computeUnits")
    _counter(body, "fees", "fees")


def _check_node_trace(event: Event) -> None:
    value = event.body.get("value") if set(event.body) == {"value"} else None
    if value is not None and not isinstance(value, str):
        raise Rejection(reasons.WRONG_TYPE, "node_trace payload must be a string")


# ---- NaaP v1 types ----------------------------------------------------------------------------------


def _check_request_end(event: Event) -> None:
    status = event.body.get("status")
    if status is not None and status not in ("success", "failure"):
        raise Rejection(reasons.BAD_VALUE, "payload.status must be 'success' or 'failure'")
    _string(event.body, "failure_reason", "payload.failure_reason")
    _number(event.body, "duration_ms", "payload.duration_ms", minimum=0)


def _check_first_frame(event: Event) -> None:
    _number(event.body, "first_frame_ms", "payload.first_frame_ms", minimum=0)


def _check_swap(event: Event) -> None:
    _string(event.body, "reason", "payload.reason")
    _address(event.body, "from_orch", "payload.from_orch")
    _address(event.body, "to_orch", "payload.to_orch")


def _check_runner_sample(event: Event) -> None:
    for key in ("fps", "output_fps", "input_fps"):
        _number(event.body, key, f"payload.{key}", minimum=0)
    _counter(event.body, "restart_count", "payload.restart_count", _INT32)


def _check_health(event: Event) -> None:
    for key in ("capacity", "capacity_estimate", "active_runners", "queue_depth"):
        _counter(event.body, key, f"payload.{key}", _INT32)
    gpus = event.body.get("gpus")
    if gpus is not None and not (isinstance(gpus, list) and all(isinstance(g, dict) for g in gpus)):
        raise Rejection(reasons.WRONG_TYPE, "payload.gpus must be a list of objects")


CHECKS: dict[str, Callable[[Event], None]] = {
    "ai_stream_status": _check_status,
    "stream_trace": _check_trace,
    "stream_ingest_metrics": _check_ingest,
    "ai_stream_events": _check_stream_event,
    "create_new_payment": _check_payment,
    "network_capabilities": _check_capabilities,
    "discovery_results": _check_discovery,
    "worker-connected": _check_worker,
    "worker-disconnected": _check_worker,
    "job-processed": _check_job,
    "node_trace": _check_node_trace,
    "gateway.request.end": _check_request_end,
    "gateway.request.first_frame": _check_first_frame,
    "gateway.swap": _check_swap,
    "runner.metrics.sample": _check_runner_sample,
    "orch.health": _check_health,
}
