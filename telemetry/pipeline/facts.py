"""Fact extraction: one normalised event → rows of the typed fact tables (``telemetry/tables.py``).

Every row starts with (event_time, dedup_key, received_at) and follows its table's column order. The
per-type checks of ``telemetry.contracts.types`` ran before this, so ids, numbers and units are of the
right type; extraction is still tolerant (a value it cannot use becomes NULL/empty, never an exception),
because the same code re-derives facts from old raw rows in ``rebuild``.

Mapping (event type → table):

* ``ai_stream_status``, NaaP ``runner.metrics.sample`` → status samples;
* ``stream_trace`` (event time = ``data.timestamp`` when present: runner traces send seconds, gateway
  traces milliseconds), NaaP ``gateway.request.start/first_frame/end`` and ``gateway.swap`` → traces,
  mapped onto ``gateway_receive_stream_request``, ``gateway_receive_first_processed_segment``,
  ``gateway_ingest_stream_closed`` and ``orchestrator_swap``;
* ``stream_ingest_metrics`` → ingest samples (RTT nanoseconds → milliseconds);
* ``ai_stream_events`` → errors, classified by ``telemetry.pipeline.classify``;
* ``create_new_payment`` → payments, exact decimals; expected value = tickets × face value × win prob;
* ``network_capabilities``, ``discovery_results``, NaaP ``orch.health`` → capability rows;
* ``job-processed``, ``worker-connected``, ``worker-disconnected`` → job rows.

Capacity of a ``network_capabilities`` row: go-livepeer advertises ``capabilities.capacities`` as
capability id → free slots. A hardware row for a pipeline whose capability id is known takes that
pipeline's number; otherwise the orchestrator's capacity is the **largest** slot count over the AI
capability ids (≥ 27, go-livepeer's text-to-image onwards), or over all ids when it advertises no AI
capability. The largest, not the sum: the AI capabilities share the same GPUs, so a sum would count one
slot once per pipeline.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from telemetry.contracts import Event, Rejection
from telemetry.contracts.values import normalise_address, parse_amount, parse_timestamp
from telemetry.pipeline.classify import classify_error
from telemetry.tables import (
    FACT_CAPABILITY,
    FACT_ERROR,
    FACT_INGEST,
    FACT_JOB,
    FACT_PAYMENT,
    FACT_STATUS,
    FACT_TRACE,
    TimeTable,
)

Row = tuple[Any, ...]
Facts = list[tuple[TimeTable, Row]]

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_TEXT_LIMIT = 2000
# go-livepeer capability ids of the AI pipelines (core/capabilities.go).
PIPELINE_CAPABILITY_IDS = {
    "text-to-image": 27,
    "image-to-image": 28,
    "image-to-video": 29,
    "upscale": 31,
    "audio-to-text": 32,
    "segment-anything-2": 33,
    "llm": 34,
    "image-to-text": 35,
    "live-video-to-video": 36,
    "text-to-speech": 37,
}
_FIRST_AI_CAPABILITY = 27
NAAP_TRACE_TYPES = {
    "gateway.request.start": "gateway_receive_stream_request",
    "gateway.request.first_frame": "gateway_receive_first_processed_segment",
    "gateway.request.end": "gateway_ingest_stream_closed",
    "gateway.swap": "orchestrator_swap",
}
_json = msgspec.json.Encoder()
_exact = decimal.Context(prec=80)


# ---- tolerant value helpers -------------------------------------------------------------------------


def _float(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _int(value: object, limit: int = _INT64) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        return None
    return number if -limit <= number <= limit else None


def _str(value: object, limit: int = 256) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:limit]
    return ""


def _text(value: object) -> str | None:
    """Free text (error messages): strings as sent, other JSON as JSON, bounded."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:_TEXT_LIMIT]
    return _json.encode(value).decode()[:_TEXT_LIMIT]


def _address(value: object) -> str:
    try:
        return normalise_address(value)
    except Rejection:
        return ""


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except Rejection:
        return None


def _amount(value: object, unit: str | None = None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return parse_amount(value, "amount", unit)
    except Rejection:
        return None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(event: Event) -> list[dict[str, Any]]:
    """The entries of a list payload (wrapped by the envelope as ``{"value": [...]}``) or a single one."""
    body = event.body
    value = body.get("value") if len(body) == 1 else None
    entries = value if isinstance(value, list) else [body]
    return [entry for entry in entries if isinstance(entry, dict)]


# ---- per type ---------------------------------------------------------------------------------------


def _status(event: Event, received: datetime) -> Facts:
    data = event.body
    inference = _dict(data.get("inference_status"))
    orch = _dict(data.get("orchestrator_info"))
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.gateway,
        event.stream_id,
        event.request_id,
        event.pipeline,
        event.orchestrator,
        _str(orch.get("url")),
        _str(data.get("state"), 64),
        _float(inference.get("fps")),
        _float(_dict(data.get("input_status")).get("fps")),
        _int(inference.get("restart_count"), _INT32),
        _text(inference.get("last_error")),
        _time(inference.get("last_output_time")),
        event.region,
    )
    return [(FACT_STATUS, row)]


def _runner_sample(event: Event, received: datetime) -> Facts:
    data = event.body
    output_fps = data.get("fps", data.get("output_fps"))
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.gateway,
        event.stream_id,
        event.request_id,
        event.pipeline,
        event.orchestrator,
        _str(data.get("orchestrator_url")),
        _str(data.get("state"), 64),
        _float(output_fps),
        _float(data.get("input_fps")),
        _int(data.get("restart_count"), _INT32),
        _text(data.get("last_error")),
        _time(data.get("last_output_time")),
        event.region,
    )
    return [(FACT_STATUS, row)]


def _trace_row(event: Event, received: datetime, when: datetime, kind: str, url: str, detail: str) -> Row:
    return (
        when,
        event.dedup_key,
        received,
        event.gateway,
        event.stream_id,
        event.request_id,
        event.pipeline,
        kind,
        event.orchestrator,
        url,
        detail,
        event.region,
    )


def _trace(event: Event, received: datetime) -> Facts:
    data = event.body
    when = _time(data.get("timestamp")) or event.event_time
    detail = data.get("reason", data.get("message", data.get("error")))
    url = _str(_dict(data.get("orchestrator_info")).get("url"))
    row = _trace_row(event, received, when, _str(data.get("type"), 128), url, _str(detail, 500))
    return [(FACT_TRACE, row)]


def _naap_trace(event: Event, received: datetime) -> Facts:
    data = event.body
    detail = _str(data.get("reason", data.get("failure_reason")), 500)
    if not detail and event.event_type == "gateway.request.end" and data.get("status") == "failure":
        detail = "failure"
    url = _str(data.get("orchestrator_url", data.get("to_orch_url")))
    kind = NAAP_TRACE_TYPES[event.event_type]
    return [(FACT_TRACE, _trace_row(event, received, event.event_time, kind, url, detail))]


def _ingest(event: Event, received: datetime) -> Facts:
    stats = _dict(event.body.get("stats"))
    peer = _dict(stats.get("peer_conn_stats"))
    tracks: dict[str, dict[str, Any]] = {}
    for track in stats.get("track_stats") or ():
        if isinstance(track, dict) and isinstance(track.get("type"), str):
            tracks.setdefault(track["type"], track)
    video = tracks.get("video", {})
    audio = tracks.get("audio", {})
    rtt_ns = _float(video.get("rtt"))
    if rtt_ns is None:
        rtt_ns = _float(audio.get("rtt"))
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.gateway,
        event.stream_id,
        event.request_id,
        _str(stats.get("conn_quality"), 64),
        _int(peer.get("BytesReceived")),
        _int(peer.get("BytesSent")),
        _int(video.get("packets_received")),
        _int(video.get("packets_lost")),
        _int(audio.get("packets_received")),
        _int(audio.get("packets_lost")),
        _float(video.get("jitter")),
        rtt_ns / 1e6 if rtt_ns is not None else None,
    )
    return [(FACT_INGEST, row)]


def _error(event: Event, received: datetime) -> Facts:
    data = event.body
    kind = _str(data.get("type"), 64)
    message = _text(data.get("message")) or ""
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.gateway,
        event.stream_id,
        event.request_id,
        event.pipeline,
        kind,
        message,
        classify_error(message, kind),
    )
    return [(FACT_ERROR, row)]


def _payment(event: Event, received: datetime) -> Facts:
    data = event.body
    tickets = _int(data.get("numTickets")) or 0
    face_value = _amount(data.get("faceValue"), "WEI") or Decimal(0)
    win_prob = _amount(data.get("winProb")) or Decimal(0)
    expected = _exact.multiply(_exact.multiply(Decimal(tickets), face_value), win_prob)
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.gateway,
        _str(data.get("orchestrator")),
        _address(data.get("recipient")),
        _address(data.get("sender")),
        event.request_id,
        _str(data.get("sessionID")),
        _str(data.get("manifestID")),
        tickets,
        face_value,
        win_prob,
        _amount(data.get("price"), "wei/pixel"),
        expected,
    )
    return [(FACT_PAYMENT, row)]


def _max_capacity(capacities: dict[str, Any]) -> int | None:
    ai: list[int] = []
    other: list[int] = []
    for key, value in capacities.items():
        slots = _int(value, _INT32)
        capability = _int(key)
        if slots is None or capability is None:
            continue
        (ai if capability >= _FIRST_AI_CAPABILITY else other).append(slots)
    return max(ai or other) if (ai or other) else None


def _capabilities(event: Event, received: datetime) -> Facts:
    facts: Facts = []
    head = (event.event_time, event.dedup_key, received)
    for entry in _items(event):
        address = _address(entry.get("address"))
        local = _address(entry.get("local_address"))
        url = _str(entry.get("orch_uri"))
        caps = _dict(entry.get("capabilities"))
        capacities = _dict(caps.get("capacities"))
        version = _str(caps.get("version"), 64)
        capacity = _max_capacity(capacities)
        rows: list[tuple[str, str, str, str, int | None]] = []
        hardware = entry.get("hardware")
        for hw in hardware if isinstance(hardware, list) else ():
            if not isinstance(hw, dict):
                continue
            pipeline = _str(hw.get("pipeline"), 128)
            model = _str(hw.get("model_id"), 256)
            cap_id = PIPELINE_CAPABILITY_IDS.get(pipeline)
            slots = _int(capacities.get(str(cap_id)), _INT32) if cap_id is not None else None
            gpus = _dict(hw.get("gpu_info"))
            for key, gpu in gpus.items() or [("", {})]:
                info = _dict(gpu)
                gpu_id = _str(info.get("id")) or _str(key)
                rows.append(
                    (pipeline, model, gpu_id, _str(info.get("name")), capacity if slots is None else slots)
                )
        if not rows:
            rows.append(("", "", "", "", capacity))
        for pipeline, model, gpu_id, gpu_type, slots in rows:
            facts.append(
                (
                    FACT_CAPABILITY,
                    (
                        *head,
                        len(facts),
                        "network_capabilities",
                        address,
                        local,
                        url,
                        pipeline,
                        model,
                        gpu_id,
                        gpu_type,
                        "",
                        slots,
                        version,
                        None,
                    ),
                )
            )
    return facts


def _discovery(event: Event, received: datetime) -> Facts:
    facts: Facts = []
    head = (event.event_time, event.dedup_key, received)
    for entry in _items(event):
        row = (
            *head,
            len(facts),
            "discovery_results",
            _address(entry.get("address")),
            "",
            _str(entry.get("url")),
            "",
            "",
            "",
            "",
            "",
            None,
            "",
            _float(entry.get("latency_ms")),
        )
        facts.append((FACT_CAPABILITY, row))
    return facts


def _gpus_of(payload: dict[str, Any]) -> list[tuple[str, str]]:
    """GPUs named by an ``orch.health`` payload: ``gpus: [{id, name|type}]``, ``gpu: {...}`` or flat keys."""
    gpus = payload.get("gpus")
    candidates = (
        gpus
        if isinstance(gpus, list)
        else [payload.get("gpu")]
        if isinstance(payload.get("gpu"), dict)
        else []
    )
    found = [
        (_str(gpu.get("id")), _str(gpu.get("name", gpu.get("type"))))
        for gpu in candidates
        if isinstance(gpu, dict)
    ]
    if not found and (payload.get("gpu_id") is not None or payload.get("gpu_type") is not None):
        found.append((_str(payload.get("gpu_id")), _str(payload.get("gpu_type"))))
    return found or [("", "")]


def _orch_health(event: Event, received: datetime) -> Facts:
    payload = event.body
    publisher = _dict(event.original.get("publisher"))
    # The publisher's key is the orchestrator's signing address only when the orchestrator sent the event.
    signer = (
        _address(publisher.get("eth_address")) if event.original.get("source_type") == "orchestrator" else ""
    )
    capacity = _int(payload.get("capacity", payload.get("capacity_estimate")), _INT32)
    facts: Facts = []
    for gpu_id, gpu_type in _gpus_of(payload):
        row = (
            event.event_time,
            event.dedup_key,
            received,
            len(facts),
            "naap",
            event.orchestrator,
            signer,
            _str(payload.get("orchestrator_url")),
            _str(payload.get("pipeline"), 128),
            event.pipeline,
            gpu_id,
            gpu_type,
            event.region,
            capacity,
            _str(publisher.get("version"), 64),
            None,
        )
        facts.append((FACT_CAPABILITY, row))
    return facts


def _job(event: Event, received: datetime) -> Facts:
    data = event.body
    fees = _amount(data.get("fees"))
    row = (
        event.event_time,
        event.dedup_key,
        received,
        event.event_type,
        _address(data.get("ethAddress")),
        _float(data.get("duration")),
        _float(data.get("responseTime")),
        _int(data.get("computeUnits")),
        fees,
        _float(data.get("realTimeRatio")),
    )
    return [(FACT_JOB, row)]


_EXTRACTORS: dict[str, Callable[[Event, datetime], Facts]] = {
    "ai_stream_status": _status,
    "runner.metrics.sample": _runner_sample,
    "stream_trace": _trace,
    **dict.fromkeys(NAAP_TRACE_TYPES, _naap_trace),
    "stream_ingest_metrics": _ingest,
    "ai_stream_events": _error,
    "create_new_payment": _payment,
    "network_capabilities": _capabilities,
    "discovery_results": _discovery,
    "orch.health": _orch_health,
    "job-processed": _job,
    "worker-connected": _job,
    "worker-disconnected": _job,
}


def extract_facts(event: Event, received: datetime) -> Facts:
    """The fact rows of one event; an event type without a fact table gives none (it stays raw only)."""
    extractor = _EXTRACTORS.get(event.event_type)
    if extractor is None or event.naap_v1 != ("." in event.event_type):
        return []
    return extractor(event, received)
