"""The simulator's ground truth equals what the public API reports, end to end.

A small simulated network (fixed seed) is written by ``manage.py simulate``, replayed with ``manage.py
ingest_file``, taken through the whole pipeline (sessions → rollups → scores) and read back over HTTP from
``/v1/sla/gpu/metrics``, ``/v1/sla/orchestrators/{address}`` and ``/v1/sla/network/demand``. Counts, means and
fees must be exact; percentiles within the latency histogram's bucket error. The same file delivered
shuffled, partly duplicated and in several batches (with derivations in between) must give the very same
API answers.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import random
import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from naap_site.timeseries import forget_partitions
from sla.sessions.derive import derive
from sla.tasks import run_pipeline
from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.simulator import truth_path
from tests.conftest import ANCHOR

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

SEED = 20260109
MINUTES = 40
ORCHESTRATORS = 10
# The whole simulated range (hours-late sessions start up to 5 h before ANCHOR; sessions last ≤ 40 min).
DAY_START = "2026-01-09T00:00:00Z"
DAY_END = "2026-01-10T00:00:00Z"
PIPELINE_NOW = ANCHOR + timedelta(days=1)
# Log-spaced latency buckets: a bucket's representative value is within 5 % of any value in it.
HIST_RELATIVE_ERROR = 0.05


@pytest.fixture(autouse=True)
def _uncached_api(settings: Any) -> None:
    """Every request reaches the database: a shared response cache would hide a difference."""
    settings.NAAP_API_RESPONSE_CACHE_S = 0
    settings.NAAP_API_RATE_LIMIT = 1_000_000
    settings.NAAP_API_CACHE_NAMESPACE = f"t{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("truth") / "network.jsonl"
    call_command(
        "simulate",
        "--seed",
        str(SEED),
        "--duration",
        f"{MINUTES}m",
        "--orchestrators",
        str(ORCHESTRATORS),
        "--start",
        ANCHOR.isoformat(),
        "--out",
        str(path),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    return path, json.loads(truth_path(path).read_text())


# --- reading the API -------------------------------------------------------------------------------------


def get(path: str) -> Any:
    response = Client().get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return response.json()


def all_pages(path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        body = get(f"{path}&limit=500&offset={offset}")
        rows.extend(body["data"])
        offset += 500
        if body["page"]["next"] is None:
            return rows


def api_answers(truth: dict[str, Any]) -> dict[str, Any]:
    """Everything the comparisons read, as the API serialised it."""
    window = f"from={DAY_START}&to={DAY_END}"
    return {
        "gpu_1d": all_pages(f"/v1/sla/gpu/metrics?interval=1d&{window}"),
        "gpu_1h": all_pages(f"/v1/sla/gpu/metrics?interval=1h&{window}"),
        "demand_1h": all_pages(f"/v1/sla/network/demand?interval=1h&{window}"),
        "orchestrators": {
            o["address"]: get(f"/v1/sla/orchestrators/{o['address']}?window=24h&to={DAY_END}")
            for o in truth["orchestrators"]
        },
    }


# --- delivering the file ---------------------------------------------------------------------------------


def ingest_in_order(path: Path) -> None:
    call_command("ingest_file", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    run_pipeline(now=PIPELINE_NOW)


def ingest_shuffled(path: Path, seed: int, batches: int = 4) -> None:
    """Shuffle the lines, repeat a fifth of them, deliver in batches with a derivation after each."""
    rng = random.Random(seed)
    lines = [line for line in path.read_text().splitlines() if line]
    lines += rng.sample(lines, len(lines) // 5)
    rng.shuffle(lines)
    size = math.ceil(len(lines) / batches)
    for i in range(batches):
        chunk = lines[i * size : (i + 1) * size]
        ingest_messages([Message(body="\n".join(chunk))], source="shuffled")
        derive()
    run_pipeline(now=PIPELINE_NOW)


# --- comparisons -----------------------------------------------------------------------------------------


def by_subject(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Sum the per-GPU (and per-region) rows of each orchestrator × workflow."""
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "segments": 0,
            "segments_ended": 0,
            "started": 0,
            "startup_denominator": 0,
            "swaps": 0,
            "swaps_by_reason": defaultdict(int),
            "failures_by_class": defaultdict(int),
            "fps_samples": 0,
            "fps_sum": 0.0,
        }
    )
    for row in rows:
        m, s = row["metrics"], row["samples"]
        acc = out[(row["o_wallet"], row["workflow"])]
        acc["segments"] += s["segments"]
        acc["segments_ended"] += s["segments_ended"]
        acc["started"] += m["startup_success"]["numerator"]
        acc["startup_denominator"] += m["startup_success"]["denominator"]
        acc["swaps"] += s["swaps"]
        for reason, n in m["swaps_by_reason"].items():
            acc["swaps_by_reason"][reason] += n
        for cls, n in m["failures_by_class"].items():
            acc["failures_by_class"][cls] += n
        if s["fps_samples"]:
            acc["fps_samples"] += s["fps_samples"]
            acc["fps_sum"] += m["output_fps"] * s["fps_samples"]
    return out


def within_histogram_error(reported: float | None, exact: int | None) -> bool:
    if exact is None:
        return reported is None
    return reported is not None and abs(reported - exact) <= HIST_RELATIVE_ERROR * exact


def subjects(truth: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["orchestrator"], s["pipeline"]): s for s in truth["subjects"]}


def rekeyed(truth: dict[str, Any]) -> set[str]:
    """Both addresses of orchestrators whose node signs with a key other than their on-chain address."""
    pairs = [(o["address"], o["signing_address"]) for o in truth["orchestrators"]]
    return {a for pair in pairs if pair[0] != pair[1] for a in pair}


def retry_swaps(path: Path, truth: dict[str, Any]) -> dict[tuple[str, str], int]:
    """Swaps between sessions (METRICS.md): a stream's next session (a retry after a failure) served by
    another orchestrator is a swap away from the earlier one. Read from the events, independently of the
    truth's own ``retry_swaps``."""
    on_chain = {o["signing_address"]: o["address"] for o in truth["orchestrators"]}
    seen: set[str] = set()
    sessions: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") not in ("stream_trace", "ai_stream_status") or event["id"] in seen:
            continue
        seen.add(event["id"])
        data = event["data"]
        stamp = float(data["timestamp"])
        ms = stamp * 1000 if stamp < 1e11 else stamp  # runner traces are in seconds
        one = sessions[data["stream_id"]].setdefault(
            data["request_id"], {"first": math.inf, "served": [], "pipeline": ""}
        )
        one["first"] = min(one["first"], ms)
        one["pipeline"] = data.get("pipeline") or one["pipeline"]
        address = data["orchestrator_info"]["address"]
        if address:
            one["served"].append((ms, on_chain[address]))
    out: dict[tuple[str, str], int] = defaultdict(int)
    for stream in sessions.values():
        served = [s for s in sorted(stream.values(), key=lambda s: s["first"]) if s["served"]]
        for before, after in itertools.pairwise(served):
            last, first = max(before["served"])[1], min(after["served"])[1]
            if last != first:
                out[(last, before["pipeline"])] += 1
    return out


class Mismatches:
    """What the API reported differently from the truth, per orchestrator × workflow and metric group."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], list[str]] = defaultdict(list)

    def check(self, key: tuple[str, str], name: str, reported: object, exact: object) -> None:
        if reported != exact:
            self.found[key].append(f"{name}: API {reported!r}, truth {exact!r}")

    def close(
        self, key: tuple[str, str], name: str, reported: float | None, exact: float | None, abs_: float = 1e-9
    ) -> None:
        if exact is not None and (reported is None or reported != pytest.approx(exact, rel=1e-9, abs=abs_)):
            self.found[key].append(f"{name}: API {reported!r}, truth {exact!r}")

    def of(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
        return {k: v for k, v in sorted(self.found.items()) if k in keys and v}


def compare(answers: dict[str, Any], truth: dict[str, Any], group: str) -> Mismatches:
    """Compare one group of metrics for every orchestrator × workflow of the truth.

    ``counts``: segments, outcomes, fps (from ``/gpu/metrics``, 1 d and 1 h buckets); ``latency``: P2FF and
    E2E distributions (from ``/orchestrators/{address}``, per workflow); ``startup``: startup time; ``swaps``:
    swaps charged and their reasons.
    """
    daily, hourly = by_subject(answers["gpu_1d"]), by_subject(answers["gpu_1h"])
    out = Mismatches()
    for key, want in subjects(truth).items():
        got, hour = daily.get(key), hourly.get(key)
        profile = answers["orchestrators"][key[0]]
        per_workflow = {w["workflow"]: w["metrics"] for w in profile["workflows"]}.get(key[1])
        if got is None or hour is None or per_workflow is None:
            out.found[key].append("not reported by the API")
            continue
        if group == "counts":
            out.check(key, "segments", got["segments"], want["segments"])
            out.check(key, "segments ended", got["segments_ended"], want["ended"])
            out.check(key, "startup successes", got["started"], want["reached_first_frame"])
            out.check(key, "startup success denominator", got["startup_denominator"], want["ended"])
            for cls in ("orchestrator", "network"):
                out.check(key, f"{cls} failures", got["failures_by_class"][cls], want["failures"][cls])
            # docs/metrics.md: a segment swapped away did not end cleanly and has no error class, so it
            # is a failure of class "unknown" (retries after an error keep the error's class)
            out.check(key, "unknown failures", got["failures_by_class"]["unknown"], want["swaps_in_session"])
            out.check(key, "fps samples", got["fps_samples"], want["fps_samples"])
            if got["fps_samples"]:
                out.close(key, "mean fps", got["fps_sum"] / got["fps_samples"], want["fps_mean"])
            # the 1 h buckets merge to the same totals (mergeable state, never averages of averages)
            out.check(key, "segments in 1 h buckets", hour["segments"], want["segments"])
            out.check(key, "fps samples in 1 h buckets", hour["fps_samples"], want["fps_samples"])
            if hour["fps_samples"]:
                out.close(
                    key, "mean fps of 1 h buckets", hour["fps_sum"] / hour["fps_samples"], want["fps_mean"]
                )
            out.close(key, "orchestrator workflow fps", per_workflow["output_fps"], want["fps_mean"])
        elif group in ("latency", "startup"):
            names = ("startup_ms",) if group == "startup" else ("p2ff_ms", "e2e_ms")
            for name in names:
                reported, exact = per_workflow[LATENCIES[name]], want[name]
                out.check(key, f"{name} count", reported["count"], exact["count"])
                # the truth rounds means to 3 decimals
                out.close(key, f"{name} mean", reported["mean"], exact["mean"], abs_=1e-3)
                for q in ("p50", "p95"):
                    if not within_histogram_error(reported[q], exact[q]):
                        out.found[key].append(f"{name} {q}: API {reported[q]}, truth {exact[q]}")
        elif group == "swaps":
            out.check(key, "swaps charged", got["swaps"], want["swaps_charged"])
            reasons = {r: n for r, n in got["swaps_by_reason"].items() if n}
            out.check(key, "swaps by reason", reasons, want["swap_reasons"])
        else:
            raise ValueError(group)
    return out


LATENCIES = {
    "p2ff_ms": "prompt_to_first_frame_latency_ms",
    "startup_ms": "startup_time_ms",
    "e2e_ms": "e2e_latency_ms",
}


# --- tests -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def in_order_answers(
    simulated: tuple[Path, dict[str, Any]], django_db_setup: None, django_db_blocker: Any
) -> dict[str, Any]:
    """API answers after in-order delivery, read once for the module (rolled back afterwards)."""
    path, truth = simulated
    with django_db_blocker.unblock(), transaction.atomic():
        ingest_in_order(path)
        answers = api_answers(truth)
        transaction.set_rollback(True)
    forget_partitions()
    return answers


def plain_subjects(truth: dict[str, Any]) -> set[tuple[str, str]]:
    return {k for k in subjects(truth) if k[0] not in rekeyed(truth)}


def rekeyed_subjects(truth: dict[str, Any]) -> set[tuple[str, str]]:
    return {k for k in subjects(truth) if k[0] in rekeyed(truth)}


def test_the_simulated_network_is_big_enough_to_mean_something(
    simulated: tuple[Path, dict[str, Any]],
) -> None:
    _, truth = simulated
    assert len(plain_subjects(truth)) >= 12 and len(rekeyed_subjects(truth)) >= 5
    assert truth["network"]["swaps"] >= 3 and truth["network"]["missing_capacity"] >= 1
    assert sum(s["p2ff_ms"]["count"] for s in truth["subjects"]) >= 100
    assert truth["delivery"]["duplicates_delivered"] > 0 and truth["delivery"]["hours_late_events"] > 0


def test_segments_outcomes_and_mean_fps_equal_the_ground_truth(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    assert compare(in_order_answers, truth, "counts").of(plain_subjects(truth)) == {}


def test_p2ff_and_e2e_percentiles_equal_the_ground_truth_within_histogram_error(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    assert compare(in_order_answers, truth, "latency").of(plain_subjects(truth)) == {}


def test_swaps_equal_in_session_swaps_plus_retries_served_by_another_orchestrator(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    """METRICS.md: a swap is also a change of orchestrator between consecutive sessions of one stream."""
    path, truth = simulated
    extra = retry_swaps(path, truth)
    assert sum(extra.values()) >= 2  # the scenario exercises it
    reported = by_subject(in_order_answers["gpu_1d"])
    for key in plain_subjects(truth):
        assert reported[key]["swaps"] == subjects(truth)[key]["swaps_in_session"] + extra.get(key, 0), key
        assert subjects(truth)[key]["retry_swaps"] == extra.get(key, 0), key  # the truth counts them too


def test_swaps_charged_equal_the_simulators_ground_truth(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    assert compare(in_order_answers, truth, "swaps").of(plain_subjects(truth)) == {}


def test_startup_time_equals_the_ground_truth_per_segment(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    assert compare(in_order_answers, truth, "startup").of(plain_subjects(truth)) == {}


def test_orchestrators_with_a_separate_signing_key_are_reported_under_their_on_chain_address(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    reported = {row["o_wallet"] for row in in_order_answers["gpu_1d"]}
    assert reported == {o["address"] for o in truth["orchestrators"]}
    assert compare(in_order_answers, truth, "counts").of(rekeyed_subjects(truth)) == {}


def test_network_totals_equal_the_ground_truth(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    _, truth = simulated
    demand = in_order_answers["demand_1h"]
    network = truth["network"]
    assert sum(r["streams"] for r in demand) == network["streams"]
    assert sum(r["sessions"] for r in demand) == network["sessions"]
    assert sum(r["missing_capacity"] for r in demand) == network["missing_capacity"]
    assert sum(Decimal(r["fees_wei"]) for r in demand) == Decimal(network["fees_wei"])
    per_subject_fees = sum(Decimal(s["fees_wei"]) for s in truth["subjects"])
    assert per_subject_fees == Decimal(network["fees_wei"])  # the truth is self-consistent


def rounded(value: Any) -> Any:
    """Floats to 12 significant digits: sums over rows in another order differ in the last bits only."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def test_shuffled_duplicated_batched_delivery_gives_identical_api_answers(
    simulated: tuple[Path, dict[str, Any]], in_order_answers: dict[str, Any]
) -> None:
    path, truth = simulated
    window = f"from={DAY_START}&to={DAY_END}"
    assert get(f"/v1/sla/network/demand?interval=1h&{window}")["data"] == []  # nothing left behind
    ingest_shuffled(path, seed=SEED + 1)
    shuffled = api_answers(truth)
    assert in_order_answers["gpu_1d"] and in_order_answers["demand_1h"]
    assert rounded(shuffled) == rounded(in_order_answers)
