"""Event bodies in the exact formats go-livepeer sends (seed 003 §13, seed 001's samples) and NaaP v1."""

from __future__ import annotations

import time
from typing import Any

from telemetry.simulator.network import Gateway, Orchestrator

# Error messages by class; the simulator's ground truth records the class it chose.
ERROR_MESSAGES: dict[str, tuple[str, ...]] = {
    "orchestrator": (
        "runner error: CUDA out of memory",
        "inference pipeline crashed: model error",
        "orchestrator error: runner restart failed",
    ),
    "network": (
        "trickle subscribe error: connection reset by peer",
        "context deadline exceeded while waiting for segment",
    ),
    "client": ("whip disconnected", "client closed the stream"),
}
# The swap reason (METRICS.md taxonomy) of each orchestrator or network error message: a failed session
# retried on another orchestrator is a swap away from the failed one, for the reason its error gives.
# (Client errors are never retried, so they never make a swap.)
ERROR_SWAP_REASON: dict[str, str] = {
    "runner error: CUDA out of memory": "model_error",
    "inference pipeline crashed: model error": "model_error",
    "orchestrator error: runner restart failed": "model_error",
    "trickle subscribe error: connection reset by peer": "runner_disconnect",
    "context deadline exceeded while waiting for segment": "timeout",
}
SWAP_REASONS: tuple[str, ...] = (
    "timeout",
    "model_error",
    "runner_disconnect",
    "capacity",
    "gateway_reset",
    "orchestrator_reset",
)


def rfc3339(t_ms: int) -> str:
    """RFC 3339 with nanoseconds, as Go prints it (the sub-ms digits are derived from the time)."""
    seconds, millis = divmod(t_ms, 1000)
    nanos = (t_ms * 7919) % 1_000_000
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}{nanos:06d}Z"


def envelope_time(style: str, t_ms: int) -> str | int:
    if style == "rfc3339":
        return rfc3339(t_ms)
    if style == "ms_number":
        return t_ms
    return str(t_ms)


def orch_info(address: str, url: str) -> dict[str, str]:
    return {"address": address, "url": url}


def trace(
    stream_id: str, request_id: str, kind: str, t: int | float, address: str, url: str
) -> dict[str, Any]:
    return {
        "stream_id": stream_id,
        "request_id": request_id,
        "pipeline_id": "",
        "type": kind,
        "timestamp": t,
        "orchestrator_info": {"address": address, "url": url},
    }


def capabilities_entry(o: Orchestrator) -> dict[str, Any]:
    return {
        "address": o.checksum_address,
        "local_address": o.checksum_signing_address,
        "orch_uri": o.url,
        "capabilities": {
            "bitstring": [94422687743],
            "capacities": {"35": o.capacity},
            "version": o.version,
            "constraints": {"minVersion": "0.8.3"},
        },
        "capabilities_prices": [
            {
                "pipeline": p,
                "model_id": p,
                "pricePerUnit": int(float(o.price_wei_per_pixel)),
                "pixelsPerUnit": 1,
            }
            for p in o.pipelines
        ],
        "hardware": [
            {
                "pipeline": "live-video-to-video",
                "model_id": p,
                "gpu_info": {
                    str(i): {
                        "id": g.gpu_id,
                        "name": g.name,
                        "memory_free": g.memory_total // 3,
                        "memory_total": g.memory_total,
                        "major": g.major,
                        "minor": g.minor,
                    }
                    for i, g in enumerate(o.gpus)
                },
            }
            for p in o.pipelines
        ],
    }


def orch_health(o: Orchestrator, t_ms: int, event_id: str, active: int) -> dict[str, Any]:
    """NaaP v1 envelope (seed 002 §3.2) ``orch.health`` carrying the orchestrator's region."""
    return {
        "schema_version": "v1",
        "event_type": "orch.health",
        "event_id": event_id,
        "timestamp_ms": t_ms,
        "source_type": "orchestrator",
        "publisher": {"eth_address": o.address, "software": "go-livepeer", "version": o.version},
        "ids": {"orchestrator_address": o.address},
        "geo": {"region": o.region, "country": o.country},
        "payload": {
            "active_runners": len(o.gpus),
            "queue_depth": max(0, active - o.capacity),
            "capacity_estimate": max(0, o.capacity - active),
            "gpus": [{"id": g.gpu_id, "name": g.name} for g in o.gpus],
        },
    }


def payment(
    gw: Gateway, o: Orchestrator, request_id: str, session_id: str, manifest_id: str, tickets: int
) -> dict[str, Any]:
    return {
        "orchestrator": o.url,
        "recipient": o.checksum_address,
        "sender": gw.sender,
        "sessionID": session_id,
        "manifestID": manifest_id,
        "requestID": request_id,
        "numTickets": str(tickets),
        "faceValue": f"{o.face_value_wei} WEI",
        "winProb": o.win_prob,
        "price": f"{o.price_wei_per_pixel} wei/pixel",
        "capability": "",
        "clientIP": "",
    }
