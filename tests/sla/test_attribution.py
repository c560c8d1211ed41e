"""Attribution: which orchestrator served a session, how swaps split it into segments and who is charged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sla.models import Segment, Session
from sla.sessions.derive import derive
from sla.sessions.taxonomy import swap_reason
from tests.conftest import ANCHOR
from tests.sla.factories import (
    ONCHAIN_B,
    ORCH_C,
    ORCH_D,
    SIGNING_A,
    URL_B,
    URL_C,
    URL_D,
    Fact,
    at,
    capability,
    error,
    healthy_session,
    insert,
    status,
    trace,
)

pytestmark = pytest.mark.django_db

RECEIVED = ANCHOR + timedelta(hours=1)


def segments(stream: str = "s1", request: str = "r1") -> list[Segment]:
    return list(
        Segment.objects.filter(session__stream_id=stream, session__request_id=request).order_by("ordinal")
    )


def test_a_swap_trace_splits_the_session_and_is_charged_to_the_orchestrator_swapped_away_from() -> None:
    insert(
        [
            trace(0, "gateway_receive_stream_request"),
            trace(2, "gateway_receive_first_processed_segment", orch=ORCH_C, url=URL_C),
            status(10, 15.0, orch=ORCH_C, url=URL_C),
            status(20, 15.0, orch=ORCH_C, url=URL_C),
            error(25, "inference error: CUDA out of memory", "orchestrator"),
            trace(26, "orchestrator_swap"),
            status(40, 20.0, orch=ORCH_D, url=URL_D),
            status(50, 20.0, orch=ORCH_D, url=URL_D),
            trace(70, "gateway_ingest_stream_closed"),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    first, second = segments()
    assert (first.orchestrator, first.swapped_away, first.swap_reason, first.error_class) == (
        ORCH_C,
        True,
        "model_error",
        "orchestrator",
    )
    assert (first.started_at, first.ended_at, first.ended_cleanly) == (
        ANCHOR + timedelta(seconds=2),
        ANCHOR + timedelta(seconds=26),
        False,
    )
    assert first.p2ff_ms == pytest.approx(2000.0) and second.p2ff_ms is None
    assert (second.orchestrator, second.swapped_away, second.swap_reason, second.ended_cleanly) == (
        ORCH_D,
        False,
        "",
        True,
    )
    s = Session.objects.get()
    # the orchestrator that produced output last wins; the recovered error does not fail the session
    assert (s.orchestrator, s.swap_count, s.segment_count, s.outcome) == (ORCH_D, 1, 2, "ok")


def test_a_change_of_address_in_status_events_is_a_swap_even_without_a_trace() -> None:
    insert(
        [
            status(10, 15.0, orch=ORCH_C, url=URL_C),
            status(20, 15.0, orch=ORCH_C, url=URL_C, last_error="timed out waiting for frames"),
            status(30, 20.0, orch=ORCH_D, url=URL_D),
            trace(40, "gateway_ingest_stream_closed"),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    first, second = segments()
    assert (first.orchestrator, first.swapped_away, first.swap_reason) == (ORCH_C, True, "timeout")
    assert (second.orchestrator, second.swapped_away) == (ORCH_D, False)


def test_a_swap_trace_naming_the_new_orchestrator_starts_its_segment() -> None:
    insert(
        [
            status(10, 15.0, orch=ORCH_C, url=URL_C),
            trace(15, "orchestrator_swap", orch=ORCH_D, url=URL_D, detail="orchestrator at capacity"),
            status(30, 20.0, orch=ORCH_D, url=URL_D),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    first, second = segments()
    assert (first.orchestrator, first.swap_reason, first.ended_at) == (
        ORCH_C,
        "capacity",
        ANCHOR + timedelta(seconds=10),
    )
    assert (second.orchestrator, second.started_at) == (ORCH_D, ANCHOR + timedelta(seconds=15))


def test_signing_addresses_map_to_the_on_chain_address_valid_at_the_event() -> None:
    insert(
        [
            capability(-10, ONCHAIN_B, local_address=SIGNING_A, url=URL_B),
            capability(300, ORCH_C, local_address=SIGNING_A, url=URL_B),  # the key moved to another node
            *healthy_session(request="r1", start=0),
            *healthy_session(request="r2", start=400),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (before,) = segments(request="r1")
    (after,) = segments(request="r2")
    assert (before.orchestrator, before.signing_address) == (ONCHAIN_B, SIGNING_A)
    assert (after.orchestrator, after.signing_address) == (ORCH_C, SIGNING_A)


def test_an_empty_address_in_the_first_traces_is_resolved_through_the_url() -> None:
    insert(
        [
            capability(-5, ONCHAIN_B, url=URL_B, origin="discovery_results", pipeline="", model_id=""),
            trace(0, "gateway_receive_stream_request"),
            trace(1, "runner_receive_first_ingest_segment", orch="", url=URL_B),
            trace(3, "runner_send_first_processed_segment", orch="", url=URL_B),
            trace(4, "gateway_receive_first_processed_segment", orch="", url=URL_B),
            status(10, 20.0, orch=ONCHAIN_B, url=URL_B),
            trace(20, "gateway_ingest_stream_closed"),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (only,) = segments()
    assert (only.orchestrator, only.orchestrator_url, only.started_at) == (
        ONCHAIN_B,
        URL_B,
        ANCHOR + timedelta(seconds=1),
    )
    assert only.startup_ms == pytest.approx(2000.0)


def rekeyed_session(stream: str, start: float) -> list[Fact]:
    """A session of the node signing with SIGNING_A at URL_B whose first-ingest trace names only the URL."""
    keys = {"stream": stream, "request": "r1"}
    return [
        trace(start, "gateway_receive_stream_request", **keys),
        trace(start + 0.5, "gateway_send_first_ingest_segment", orch="", url=URL_B, **keys),
        trace(start + 1, "runner_receive_first_ingest_segment", orch=SIGNING_A, url=URL_B, **keys),
        trace(start + 3, "runner_send_first_processed_segment", orch=SIGNING_A, url=URL_B, **keys),
        trace(start + 4, "gateway_receive_first_processed_segment", orch=SIGNING_A, url=URL_B, **keys),
        status(start + 10, 20.0, orch=SIGNING_A, url=URL_B, **keys),
        trace(start + 20, "gateway_ingest_stream_closed", **keys),
    ]


def test_a_url_only_trace_of_a_node_with_a_separate_signing_key_opens_no_phantom_segment() -> None:
    """discovery_results name the node's signing address at its URL: the URL maps to the on-chain address."""
    insert(
        [
            capability(-10, ONCHAIN_B, local_address=SIGNING_A, url=URL_B),
            capability(-5, SIGNING_A, url=URL_B, origin="discovery_results", pipeline="", model_id=""),
            *rekeyed_session("s1", 0),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (only,) = segments()
    assert (only.orchestrator, only.signing_address, only.orchestrator_url) == (ONCHAIN_B, SIGNING_A, URL_B)
    assert (only.started_at, only.swapped_away, only.ended_cleanly) == (at(0.5), False, True)
    s = Session.objects.get()
    assert (s.orchestrator, s.segment_count, s.swap_count, s.outcome) == (ONCHAIN_B, 1, 0, "ok")


def test_a_discovery_row_resolves_through_the_signing_mapping_valid_at_its_time() -> None:
    insert(
        [
            capability(-10, ONCHAIN_B, local_address=SIGNING_A, url=URL_B),
            capability(-5, SIGNING_A, url=URL_B, origin="discovery_results", pipeline="", model_id=""),
            capability(300, ORCH_C, local_address=SIGNING_A, url=URL_B),  # the key moved to another node
            capability(305, SIGNING_A, url=URL_B, origin="discovery_results", pipeline="", model_id=""),
            *rekeyed_session("s1", 0),
            *rekeyed_session("s2", 400),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (before,) = segments(stream="s1")
    (after,) = segments(stream="s2")
    assert (before.orchestrator, before.started_at) == (ONCHAIN_B, at(0.5))
    assert (after.orchestrator, after.started_at) == (ORCH_C, at(400.5))


def test_an_unresolvable_url_and_the_signing_address_of_the_same_node_stay_one_segment() -> None:
    insert(
        [
            trace(1, "runner_receive_first_ingest_segment", orch="", url=URL_B),
            status(10, 20.0, orch=SIGNING_A, url=URL_B),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (only,) = segments()
    assert (only.orchestrator, only.orchestrator_url) == (SIGNING_A, URL_B)


def test_a_capability_arriving_late_re_attributes_the_sessions_it_concerns() -> None:
    insert(healthy_session(), RECEIVED)
    derive(now=RECEIVED)
    assert Session.objects.get().orchestrator == SIGNING_A
    later = RECEIVED + timedelta(hours=2)
    insert([capability(-10, ONCHAIN_B, local_address=SIGNING_A, url=URL_B, gpu_id="GPU-9")], later)
    stats = derive(now=later)
    assert stats.streams == 1
    (only,) = segments()
    assert (only.orchestrator, only.gpu_id) == (ONCHAIN_B, "GPU-9")


def test_a_change_of_orchestrator_between_sessions_of_a_stream_is_charged_to_the_earlier_one() -> None:
    insert(
        [
            trace(0, "gateway_receive_stream_request", request="r1"),
            status(10, 20.0, request="r1", orch=ORCH_C, url=URL_C),
            error(20, "timeout waiting for output", "network", request="r1"),
            *healthy_session(request="r2", start=30, orch=ORCH_D, url=URL_D),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (earlier,) = segments(request="r1")
    (later,) = segments(request="r2")
    assert (earlier.orchestrator, earlier.swapped_away, earlier.swap_reason) == (ORCH_C, True, "timeout")
    assert (later.orchestrator, later.swapped_away) == (ORCH_D, False)
    assert Session.objects.get(request_id="r1").swap_count == 1


def test_a_retry_that_found_no_orchestrator_does_not_hide_the_swap_to_the_next_one() -> None:
    insert(
        [
            trace(0, "gateway_receive_stream_request", request="r1"),
            status(10, 20.0, request="r1", orch=ORCH_C, url=URL_C),
            error(20, "trickle subscribe error: connection reset by peer", "network", request="r1"),
            trace(25, "gateway_receive_stream_request", request="r2"),
            trace(25.2, "gateway_no_orchestrators_available", request="r2"),
            *healthy_session(request="r3", start=30, orch=ORCH_D, url=URL_D),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (earlier,) = segments(request="r1")
    assert (earlier.orchestrator, earlier.swapped_away, earlier.swap_reason) == (
        ORCH_C,
        True,
        "runner_disconnect",
    )
    assert (earlier.error_class, earlier.ended_cleanly) == ("network", False)
    assert segments(request="r2") == []
    assert Session.objects.get(request_id="r2").outcome == "no_orchestrator"
    (later,) = segments(request="r3")
    assert (later.orchestrator, later.swapped_away) == (ORCH_D, False)
    assert [s.swap_count for s in Session.objects.order_by("request_id")] == [1, 0, 0]


def test_a_client_ended_session_followed_by_another_orchestrator_is_not_a_swap() -> None:
    insert(
        [
            status(10, 20.0, request="r1", orch=ORCH_C, url=URL_C),
            error(20, "whep connection closed by client", "client", request="r1"),
            *healthy_session(request="r2", start=30, orch=ORCH_D, url=URL_D),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    (earlier,) = segments(request="r1")
    assert (earlier.swapped_away, earlier.ended_cleanly) == (False, True)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no orchestrators available", "capacity"),
        ("context deadline exceeded", "timeout"),
        ("runner disconnected", "runner_disconnect"),
        ("gateway restart", "gateway_reset"),
        ("orchestrator restart", "orchestrator_reset"),
        ("model load failed", "model_error"),
        ("orchestrator error: runner restart failed", "model_error"),
        ("gateway_reset", "gateway_reset"),
        ("something odd", "unknown"),
        ("", "unknown"),
    ],
)
def test_swap_reasons_follow_the_taxonomy(text: str, reason: str) -> None:
    assert swap_reason(text) == reason


def test_a_runner_sample_region_is_used_when_capabilities_name_none() -> None:
    insert([status(10, 20.0, orch=ORCH_C, url=URL_C, region="us-west")], RECEIVED)
    derive(now=RECEIVED)
    (only,) = segments()
    assert (only.orchestrator, only.region) == (ORCH_C, "us-west")
    assert Session.objects.get().region == "us-west"
