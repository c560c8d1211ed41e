"""The network simulator: deterministic, realistic in every listed fact, and truthful about what it emitted."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from sla.sessions.taxonomy import swap_reason
from telemetry.contracts.values import parse_amount, parse_timestamp
from telemetry.simulator import SimConfig, Simulation, truth_path, write_file
from telemetry.simulator.formats import ERROR_MESSAGES, SWAP_REASONS
from telemetry.simulator.output import TokenBucket
from tests.conftest import ANCHOR

ALL_TRACE_TYPES = {
    "gateway_receive_stream_request",
    "gateway_send_first_ingest_segment",
    "gateway_receive_first_processed_segment",
    "gateway_receive_few_processed_segments",
    "gateway_receive_first_data_segment",
    "gateway_no_orchestrators_available",
    "orchestrator_swap",
    "gateway_ingest_stream_closed",
    "runner_receive_first_ingest_segment",
    "runner_send_first_processed_segment",
    "runner_restart",
}
RUNNER_TRACES = {t for t in ALL_TRACE_TYPES if t.startswith("runner_")}
MESSAGE_CLASS = {m: cls for cls, messages in ERROR_MESSAGES.items() for m in messages}


def config(seed: int = 11) -> SimConfig:
    return SimConfig(seed=seed, start=ANCHOR, duration_s=20 * 60, orchestrators=6, streams_per_min=8)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], dict[str, Any]]:
    path = tmp_path_factory.mktemp("sim") / "net.jsonl"
    write_file(Simulation(config()), path)
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return path, events, json.loads(truth_path(path).read_text())


def unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for e in events:
        key = e.get("id") or e.get("event_id")
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("type") == kind]


def traces(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in of_type(events, "stream_trace") if e["data"]["type"] == kind]


def signing_to_chain(events: list[dict[str, Any]]) -> dict[str, str]:
    mapping = {}
    for e in of_type(events, "network_capabilities"):
        for entry in e["payload"]:
            mapping[entry["local_address"].lower()] = entry["address"].lower()
    return mapping


# --- determinism -----------------------------------------------------------------------------------------


def test_the_same_seed_writes_a_byte_identical_file_and_truth(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    short = SimConfig(seed=5, start=ANCHOR, duration_s=300, orchestrators=4)
    write_file(Simulation(short), a)
    write_file(Simulation(short), b)
    write_file(Simulation(SimConfig(seed=6, start=ANCHOR, duration_s=300, orchestrators=4)), c)
    assert a.read_bytes() == b.read_bytes()
    assert truth_path(a).read_bytes() == truth_path(b).read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_the_command_writes_json_lines_and_the_truth_beside_them(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "cmd.jsonl"
    call_command(
        "simulate",
        "--seed",
        "3",
        "--duration",
        "5m",
        "--orchestrators",
        "3",
        "--out",
        str(out),
        "--start",
        ANCHOR.isoformat(),
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lines = out.read_text().splitlines()
    assert summary["lines"] == len(lines) > 100
    truth = json.loads((tmp_path / "cmd.truth.json").read_text())
    assert truth["seed"] == 3 and len(truth["orchestrators"]) == 3


# --- facts of the real network ---------------------------------------------------------------------------


def test_every_trace_subtype_is_emitted(simulated: Any) -> None:
    _, events, _ = simulated
    assert {e["data"]["type"] for e in of_type(events, "stream_trace")} == ALL_TRACE_TYPES


def test_runner_traces_carry_seconds_and_gateway_traces_milliseconds(simulated: Any) -> None:
    _, events, _ = simulated
    for e in of_type(events, "stream_trace"):
        stamp = e["data"]["timestamp"]
        if e["data"]["type"] in RUNNER_TRACES:
            assert isinstance(stamp, float) and 1e9 < stamp < 1e11
        else:
            assert isinstance(stamp, int) and stamp > 1e12


def test_first_traces_have_empty_addresses_and_later_ones_name_the_orchestrator(simulated: Any) -> None:
    _, events, _ = simulated
    requests = traces(events, "gateway_receive_stream_request")
    assert requests and all(t["orchestrator_info"] == {"address": "", "url": ""} for t in requests)
    ingests = traces(events, "gateway_send_first_ingest_segment")
    assert any(t["orchestrator_info"]["address"] == "" and t["orchestrator_info"]["url"] for t in ingests)
    assert any(t["orchestrator_info"]["address"] for t in ingests)


def test_a_swap_happens_inside_one_request_id_with_a_reason(simulated: Any) -> None:
    _, events, _ = simulated
    swaps = traces(events, "orchestrator_swap")
    assert swaps and all(s["reason"] in SWAP_REASONS for s in swaps)
    by_request: dict[str, set[str]] = defaultdict(set)
    for e in of_type(events, "ai_stream_status"):
        by_request[e["data"]["request_id"]].add(e["data"]["orchestrator_info"]["address"])
    swapped = {s["request_id"] for s in swaps}
    assert any(len(by_request[r]) >= 2 for r in swapped)
    # the swap trace names the orchestrator swapped away from: it served that request before the swap
    for s in swaps:
        assert s["orchestrator_info"]["address"] in by_request[s["request_id"]]


def test_signing_addresses_differ_from_on_chain_ones_and_capabilities_map_them(simulated: Any) -> None:
    _, events, truth = simulated
    capabilities = of_type(events, "network_capabilities")
    assert capabilities and all(
        isinstance(e["timestamp"], str) and "T" in e["timestamp"] for e in capabilities
    )
    entries = capabilities[0]["payload"]
    differing = [x for x in entries if x["address"].lower() != x["local_address"].lower()]
    assert differing
    assert all(
        x["hardware"] and x["hardware"][0]["gpu_info"]["0"]["name"].startswith("NVIDIA") for x in entries
    )
    status_addresses = {
        e["data"]["orchestrator_info"]["address"] for e in of_type(events, "ai_stream_status")
    }
    assert {x["local_address"].lower() for x in differing} & status_addresses
    on_chain = {o["address"] for o in truth["orchestrators"]}
    assert {s["orchestrator"] for s in truth["subjects"]} <= on_chain


def test_discovery_results_and_orch_health_with_a_region_for_every_orchestrator(simulated: Any) -> None:
    _, events, truth = simulated
    discovery = of_type(events, "discovery_results")
    assert discovery and all(isinstance(p["latency_ms"], str) for p in discovery[0]["payload"])
    health = [e for e in events if e.get("event_type") == "orch.health"]
    regions = {e["ids"]["orchestrator_address"]: e["geo"]["region"] for e in health}
    assert regions == {o["address"]: o["region"] for o in truth["orchestrators"]}


def test_payments_carry_strings_with_units(simulated: Any) -> None:
    _, events, _ = simulated
    payments = of_type(events, "create_new_payment")
    assert payments
    for p in payments[:50]:
        data = p["data"]
        assert data["faceValue"].endswith(" WEI") and data["price"].endswith(" wei/pixel")
        assert parse_amount(data["faceValue"], "faceValue", "WEI") > 0
        assert Decimal(data["winProb"]) > 0 and data["numTickets"].isdigit()


def test_timestamps_come_as_ms_strings_rfc3339_and_numbers(simulated: Any) -> None:
    _, events, _ = simulated
    stamps = [e["timestamp"] for e in events if "timestamp" in e]
    assert any(isinstance(s, str) and s.isdigit() for s in stamps)
    assert any(isinstance(s, str) and s.endswith("Z") and "T" in s for s in stamps)
    assert any(isinstance(s, int) for s in stamps)
    assert all(parse_timestamp(s) for s in stamps[:500])


def test_status_samples_are_zero_before_first_output_and_ingest_counters_reset(simulated: Any) -> None:
    _, events, _ = simulated
    statuses = sorted(of_type(events, "ai_stream_status"), key=lambda e: e["data"]["timestamp"])
    assert any(e["data"]["inference_status"]["fps"] == 0 for e in statuses)
    assert any(e["data"]["inference_status"]["restart_count"] > 0 for e in statuses)
    metrics = sorted(unique(of_type(events, "stream_ingest_metrics")), key=lambda e: e["data"]["timestamp"])
    last: dict[str, int] = {}
    resets = 0
    for e in metrics:
        key = e["data"]["request_id"]
        got = e["data"]["stats"]["peer_conn_stats"]["BytesReceived"]
        resets += key in last and got < last[key]
        last[key] = got
        assert e["data"]["stats"]["track_stats"][0]["rtt"] > 1_000_000  # nanoseconds
    assert resets > 0


def test_errors_of_each_class_are_emitted(simulated: Any) -> None:
    _, events, _ = simulated
    messages = {e["data"]["message"] for e in of_type(events, "ai_stream_events")}
    assert "whip disconnected" in messages
    assert {MESSAGE_CLASS[m] for m in messages} == {"orchestrator", "network", "client"}


def test_delivery_is_out_of_order_duplicated_and_sometimes_hours_late(simulated: Any) -> None:
    _, events, truth = simulated
    times = [parse_timestamp(e.get("timestamp", e.get("timestamp_ms"))) for e in events]
    assert any(b < a for a, b in zip(times, times[1:], strict=False))
    ids = Counter(e.get("id") or e.get("event_id") for e in events)
    assert sum(n - 1 for n in ids.values()) == truth["delivery"]["duplicates_delivered"] > 0
    latest = times[0]
    hours_late = 0
    for t in times:
        hours_late += (latest - t).total_seconds() > 2 * 3600
        latest = max(latest, t)
    assert hours_late == truth["delivery"]["hours_late_events"] > 0


# --- truth consistency -----------------------------------------------------------------------------------


def test_truth_counts_match_the_events_emitted(simulated: Any) -> None:
    path, events, truth = simulated
    assert truth["delivery"]["lines"] == len(path.read_text().splitlines())
    distinct = unique(events)
    kinds = Counter(e.get("type") or e.get("event_type") for e in distinct)
    assert dict(kinds) == truth["delivery"]["events_by_type"]
    trace_kinds = Counter(e["data"]["type"] for e in of_type(distinct, "stream_trace"))
    assert dict(trace_kinds) == truth["delivery"]["trace_types"]
    network = truth["network"]
    assert network["sessions"] == trace_kinds["gateway_receive_stream_request"]
    assert network["missing_capacity"] == trace_kinds["gateway_no_orchestrators_available"]
    assert network["swaps_in_session"] == trace_kinds["orchestrator_swap"]
    assert network["swaps"] == network["swaps_in_session"] + network["retry_swaps"]
    streams = {t["stream_id"] for t in traces(distinct, "gateway_receive_stream_request")}
    assert network["streams"] == len(streams) < network["sessions"]  # some streams retried


def retry_swaps(
    distinct: list[dict[str, Any]], chain: dict[str, str]
) -> tuple[Counter[tuple[str, str]], dict[tuple[str, str], Counter[str]]]:
    """Swaps between sessions, recounted from the events: a stream's next session that some orchestrator
    served, served by another one than the last orchestrator of the session before (a retry after a
    failure), charged to that last orchestrator with the taxonomy reason of the earlier session's error."""
    sessions: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in distinct:
        if e.get("type") not in ("stream_trace", "ai_stream_status", "ai_stream_events"):
            continue
        d = e["data"]
        one = sessions[d["stream_id"]].setdefault(
            d["request_id"], {"start": math.inf, "served": [], "pipeline": "", "error": ""}
        )
        one["pipeline"] = d.get("pipeline") or one["pipeline"]
        if e["type"] == "ai_stream_events":
            one["error"] = d["message"]
            continue
        stamp = float(d["timestamp"])
        ms = stamp * 1000 if stamp < 1e11 else stamp  # runner traces are in seconds
        one["start"] = min(one["start"], ms)
        if d["orchestrator_info"]["address"]:
            one["served"].append((ms, chain[d["orchestrator_info"]["address"]]))
    counts: Counter[tuple[str, str]] = Counter()
    reasons: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for stream in sessions.values():
        served = [x for x in sorted(stream.values(), key=lambda x: x["start"]) if x["served"]]
        for before, after in itertools.pairwise(served):
            last, first = max(before["served"])[1], min(after["served"])[1]
            if last != first:
                key = (last, before["pipeline"])
                counts[key] += 1
                reasons[key][swap_reason(before["error"])] += 1
    return counts, reasons


def test_truth_per_orchestrator_matches_an_independent_recount(simulated: Any) -> None:
    _, events, truth = simulated
    distinct = unique(events)
    chain = signing_to_chain(distinct)
    pipeline_of = {
        e["data"]["request_id"]: e["data"]["pipeline"] for e in of_type(distinct, "ai_stream_status")
    }
    fees: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in of_type(distinct, "create_new_payment"):
        d = e["data"]
        fee = int(d["numTickets"]) * parse_amount(d["faceValue"], "f", "WEI") * Decimal(d["winProb"])
        fees[(d["recipient"].lower(), pipeline_of[d["requestID"]])] += fee
    fps: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in of_type(distinct, "ai_stream_status"):
        d = e["data"]
        if d["inference_status"]["fps"] > 0:
            fps[(chain[d["orchestrator_info"]["address"]], d["pipeline"])].append(
                d["inference_status"]["fps"]
            )
    requests = {t["request_id"]: t["timestamp"] for t in traces(distinct, "gateway_receive_stream_request")}
    p2ff: dict[tuple[str, str], list[int]] = defaultdict(list)
    for t in traces(distinct, "gateway_receive_first_processed_segment"):
        key = (chain[t["orchestrator_info"]["address"]], pipeline_of[t["request_id"]])
        p2ff[key].append(t["timestamp"] - requests[t["request_id"]])
    swaps = Counter(
        (chain[t["orchestrator_info"]["address"]], pipeline_of[t["request_id"]])
        for t in traces(distinct, "orchestrator_swap")
    )
    reasons: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for t in traces(distinct, "orchestrator_swap"):
        reasons[(chain[t["orchestrator_info"]["address"]], pipeline_of[t["request_id"]])][t["reason"]] += 1
    retried, retry_reasons = retry_swaps(distinct, chain)
    assert sum(retried.values()) >= 2  # the scenario exercises swaps between sessions
    assert truth["network"]["retry_swaps"] == sum(retried.values())
    assert truth["subjects"]
    for s in truth["subjects"]:
        key = (s["orchestrator"], s["pipeline"])
        assert Decimal(s["fees_wei"]) == fees[key]
        assert s["fps_samples"] == len(fps[key])
        assert s["fps_mean"] == pytest.approx(sum(fps[key]) / len(fps[key]) if fps[key] else None)
        assert s["p2ff_ms"]["values"] == sorted(p2ff[key])
        assert (s["swaps_in_session"], s["retry_swaps"]) == (swaps[key], retried[key])
        assert s["swaps_charged"] == swaps[key] + retried[key]
        assert s["swap_reasons"] == dict(reasons[key] + retry_reasons[key])
        # a retry swap's segment already ended as a failure: only swaps inside a session end a segment
        assert s["ended"] == s["ended_clean"] + sum(s["failures"].values()) + s["swaps_in_session"]
        assert s["segments"] >= s["reached_first_frame"]
    assert Decimal(truth["network"]["fees_wei"]) == sum(fees.values())
    error_classes = Counter(
        MESSAGE_CLASS[e["data"]["message"]] for e in of_type(distinct, "ai_stream_events")
    )
    assert dict(error_classes) == truth["delivery"]["error_classes"]
    bad = [s for s in truth["subjects"] if s["fps_mean"]]
    assert min(s["fps_mean"] for s in bad) < 0.7 * max(s["fps_mean"] for s in bad)  # good and bad nodes


def test_a_token_bucket_holds_the_publish_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(100.0, burst=100.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        bucket.take(100)
    assert now[0] == pytest.approx(9.0, abs=0.05)  # the first 100 were the burst
