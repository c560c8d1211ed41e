"""Per-type payload checks. Each check raises Rejection for a payload that would corrupt a metric."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from telemetry.contracts import reasons
from telemetry.contracts.errors import Rejection

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


def _require_stream(event: Event) -> None:
    if not event.stream_id:
        raise Rejection(reasons.MISSING_FIELD, f"data.stream_id is required for {event.event_type}")


def _number(body: dict[str, Any], key: str, field: str) -> None:
    value = body.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise Rejection(reasons.WRONG_TYPE, f"{field} must be a number")


def _check_status(event: Event) -> None:
    _require_stream(event)
    for section in ("inference_status", "input_status"):
        part = event.body.get(section)
        if part is None:
            continue
        if not isinstance(part, dict):
            raise Rejection(reasons.WRONG_TYPE, f"data.{section} must be an object")
        _number(part, "fps", f"data.{section}.fps")


def _check_trace(event: Event) -> None:
    _require_stream(event)
    if not isinstance(event.body.get("type"), str) or not event.body["type"]:
        raise Rejection(reasons.MISSING_FIELD, "data.type (the trace subtype) is required")


CHECKS: dict[str, Callable[[Event], None]] = {
    "ai_stream_status": _check_status,
    "stream_trace": _check_trace,
    "stream_ingest_metrics": _require_stream,
    "ai_stream_events": _require_stream,
}
