from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from telemetry.contracts import Rejection, normalise
from telemetry.contracts.types import KNOWN_TYPES
from tests.conftest import ANCHOR
from tests.telemetry.examples import all_examples, example_files, examples

FIVE_MINUTES = timedelta(minutes=5)


def check(obj: object) -> Any:
    return normalise(obj, publisher="pub", now=ANCHOR, max_future=FIVE_MINUTES)


def rejected(obj: object) -> str:
    with pytest.raises(Rejection) as info:
        check(obj)
    return info.value.reason


def test_every_known_event_type_has_an_example_file() -> None:
    assert {path.stem for path in example_files()} == KNOWN_TYPES


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_every_example_is_accepted_as_its_known_type(path: Path) -> None:
    for obj in json.loads(path.read_text()):
        event = check(obj)
        assert event.event_type == path.stem
        assert event.known_type


def test_unknown_fields_are_tolerated_and_kept_in_the_original() -> None:
    for obj in all_examples():
        extended = {**obj, "something_new": {"nested": [1, 2]}}
        body_key = "data" if "data" in obj else "payload"
        if isinstance(obj.get(body_key), dict):
            extended[body_key] = {**obj[body_key], "extra_field": "kept"}
        event = check(extended)
        assert event.original["something_new"] == {"nested": [1, 2]}


def mutate(event_type: str, path: tuple[str | int, ...], value: object, index: int = 0) -> dict[str, Any]:
    obj = copy.deepcopy(examples(event_type)[index])
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return obj


DELETE = object()


@pytest.mark.parametrize(
    ("event_type", "path", "value", "reason"),
    [
        ("ai_stream_status", ("data", "stream_id"), DELETE, "missing_field"),
        ("ai_stream_status", ("data", "inference_status", "fps"), "19.9", "wrong_type"),
        ("ai_stream_status", ("data", "inference_status", "fps"), True, "wrong_type"),
        ("ai_stream_status", ("data", "inference_status", "fps"), -1, "bad_value"),
        ("ai_stream_status", ("data", "inference_status", "restart_count"), 1.5, "bad_value"),
        ("ai_stream_status", ("data", "inference_status", "restart_count"), 2**40, "bad_value"),
        ("ai_stream_status", ("data", "inference_status", "last_output_time"), "yesterday", "bad_timestamp"),
        ("ai_stream_status", ("data", "orchestrator_info", "address"), "0x123", "bad_value"),
        (
            "ai_stream_status",
            ("timestamp",),
            str(int(ANCHOR.timestamp() * 1000) + 600_000),
            "future_timestamp",
        ),
        ("stream_trace", ("data", "type"), DELETE, "missing_field"),
        ("stream_trace", ("data", "timestamp"), "soon", "bad_timestamp"),
        (
            "stream_ingest_metrics",
            ("data", "stats", "peer_conn_stats", "BytesReceived"),
            "many",
            "wrong_type",
        ),
        ("stream_ingest_metrics", ("data", "stats", "track_stats"), {"type": "video"}, "wrong_type"),
        ("stream_ingest_metrics", ("data", "stats", "track_stats", 0, "packets_lost"), -3, "bad_value"),
        ("ai_stream_events", ("data", "stream_id"), "", "missing_field"),
        ("create_new_payment", ("data", "faceValue"), "2400000000000000 ETH", "bad_value"),
        ("create_new_payment", ("data", "faceValue"), DELETE, "missing_field"),
        ("create_new_payment", ("data", "faceValue"), "lots WEI", "bad_value"),
        ("create_new_payment", ("data", "faceValue"), "1e999999 WEI", "bad_value"),
        ("create_new_payment", ("data", "winProb"), "1.5", "bad_value"),
        ("create_new_payment", ("data", "price"), "1646.821 wei/byte", "bad_value"),
        ("create_new_payment", ("data", "numTickets"), "two", "bad_value"),
        ("create_new_payment", ("data", "recipient"), "bob", "bad_value"),
        ("network_capabilities", ("payload", 0, "address"), DELETE, "missing_field"),
        ("network_capabilities", ("payload", 0, "capabilities", "capacities", "36"), "two", "wrong_type"),
        ("network_capabilities", ("payload", 0, "hardware"), "RTX", "wrong_type"),
        ("discovery_results", ("payload", 0, "latency_ms"), "fast", "bad_value"),
        ("job-processed", ("payload", "ethAddress"), DELETE, "missing_field"),
        ("job-processed", ("payload", "duration"), "4167", "wrong_type"),
        ("worker-connected", ("payload", "ethAddress"), "", "missing_field"),
        ("gateway.request.start", ("ids", "model_id"), DELETE, "missing_field"),
        ("gateway.request.end", ("payload", "status"), "meh", "bad_value"),
        ("gateway.swap", ("payload", "to_orch"), "nobody", "bad_value"),
        ("runner.metrics.sample", ("payload", "fps"), "23", "wrong_type"),
        ("orch.health", ("ids", "orchestrator_address"), DELETE, "missing_field"),
        ("orch.health", ("geo",), "us-east-1", "wrong_type"),
    ],
)
def test_a_payload_that_would_corrupt_a_metric_is_rejected_with_a_reason(
    event_type: str, path: tuple[str | int, ...], value: object, reason: str
) -> None:
    assert rejected(mutate(event_type, path, value)) == reason


def test_payment_amounts_accept_numbers_and_lower_case_units() -> None:
    obj = mutate("create_new_payment", ("data", "faceValue"), "2400000000000000 wei")
    obj["data"]["numTickets"] = 3
    assert check(obj).body["numTickets"] == 3


def test_naap_v1_events_carry_their_region_and_lower_cased_orchestrator() -> None:
    obj = mutate(
        "gateway.request.start", ("ids", "orchestrator_address"), "0x52CF2968B3DC6016778742D3539449A6597D5954"
    )
    event = check(obj)
    assert (event.region, event.orchestrator) == ("us-east-1", "0x52cf2968b3dc6016778742d3539449a6597d5954")
    assert event.naap_v1
