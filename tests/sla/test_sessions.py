"""Session assembly scenarios with hand-computed values: lifecycle latencies, performance samples,
segment-minutes, closing (trace, error, silence) and outcomes."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from sla.models import DeriveCursor, DirtyRange, Segment, SegmentMinute, Session
from sla.sessions.derive import derive
from tests.conftest import ANCHOR
from tests.sla.factories import (
    ONCHAIN_B,
    ORCH_C,
    SIGNING_A,
    URL_B,
    URL_C,
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


def session(stream: str = "s1", request: str = "r1") -> Session:
    return Session.objects.get(stream_id=stream, request_id=request)


def test_lifecycle_latencies_are_computed_from_traces_and_charged_to_the_serving_segment() -> None:
    insert(healthy_session(), RECEIVED)
    derive(now=RECEIVED)
    s = session()
    assert (s.request_at, s.first_ingest_at, s.first_frame_at, s.closed_at) == (
        at(0),
        at(0.5),
        at(3.8),
        at(90),
    )
    assert s.p2ff_ms == pytest.approx(3800.0)  # first_frame − request
    assert s.startup_ms == pytest.approx(2000.0)  # runner_out − runner_in
    assert s.e2e_ms == pytest.approx(3300.0)  # first_frame − first_ingest
    assert (s.status, s.close_cause, s.outcome, s.started, s.attribution_final) == (
        "closed",
        "trace",
        "ok",
        True,
        True,
    )
    (segment,) = Segment.objects.filter(session=s)
    assert (segment.p2ff_ms, segment.startup_ms, segment.e2e_ms) == (s.p2ff_ms, s.startup_ms, s.e2e_ms)
    assert segment.request_at == at(0)
    assert segment.ended_cleanly and not segment.swapped_away


def test_a_segment_after_a_swap_gets_its_own_startup_time_from_its_own_runner_traces() -> None:
    facts = [
        trace(0, "gateway_receive_stream_request"),
        trace(0.5, "gateway_send_first_ingest_segment", url=URL_B),
        trace(1.0, "runner_receive_first_ingest_segment", orch=SIGNING_A, url=URL_B),
        trace(3.0, "runner_send_first_processed_segment", orch=SIGNING_A, url=URL_B),
        trace(3.8, "gateway_receive_first_processed_segment", orch=SIGNING_A, url=URL_B),
        status(10, 20.0, orch=SIGNING_A, url=URL_B),
        trace(26, "orchestrator_swap", orch=SIGNING_A, url=URL_B, detail="timeout"),
        trace(26.4, "runner_receive_first_ingest_segment", orch=ORCH_C, url=URL_C),
        trace(27.65, "runner_send_first_processed_segment", orch=ORCH_C, url=URL_C),
        status(30, 20.0, orch=ORCH_C, url=URL_C),
        status(40, 20.0, orch=ORCH_C, url=URL_C),
        trace(50, "gateway_ingest_stream_closed"),
    ]
    insert(facts, RECEIVED)
    derive(now=RECEIVED)
    s = session()
    first, second = Segment.objects.filter(session=s).order_by("ordinal")
    assert (first.orchestrator, first.swapped_away, first.swap_reason) == (SIGNING_A, True, "timeout")
    # the first segment: its runner traces (3.0 − 1.0 s), and the session's first frame
    assert (first.startup_ms, first.p2ff_ms, first.e2e_ms) == (
        pytest.approx(2000.0),
        pytest.approx(3800.0),
        pytest.approx(3300.0),
    )
    # after the swap: the new orchestrator's own cold start, 27.65 − 26.4 s; no first frame of its own
    assert (second.orchestrator, second.started_at) == (ORCH_C, at(26.4))
    assert (second.startup_ms, second.p2ff_ms, second.e2e_ms) == (pytest.approx(1250.0), None, None)
    assert s.startup_ms == pytest.approx(2000.0)  # the session's: its first runner traces


def test_a_segment_without_both_runner_traces_has_no_startup_time() -> None:
    facts = [
        trace(0, "gateway_receive_stream_request"),
        trace(1.0, "runner_receive_first_ingest_segment", orch=SIGNING_A, url=URL_B),
        trace(3.0, "runner_send_first_processed_segment", orch=SIGNING_A, url=URL_B),
        status(10, 20.0, orch=SIGNING_A, url=URL_B),
        trace(26, "orchestrator_swap", orch=SIGNING_A, url=URL_B),
        trace(26.4, "runner_receive_first_ingest_segment", orch=ORCH_C, url=URL_C),
        status(30, 0.0, orch=ORCH_C, url=URL_C),
        trace(50, "gateway_ingest_stream_closed"),
    ]
    insert(facts, RECEIVED)
    derive(now=RECEIVED)
    first, second = Segment.objects.filter(session=session()).order_by("ordinal")
    assert first.startup_ms == pytest.approx(2000.0)
    assert (second.orchestrator, second.started, second.startup_ms) == (ORCH_C, False, None)


def test_samples_before_first_output_and_after_close_are_not_performance_samples() -> None:
    facts = [
        trace(0, "gateway_receive_stream_request"),
        status(2, 0.0, in_fps=30.0, restarts=0),  # loading: before the first output
        trace(3.8, "gateway_receive_first_processed_segment", orch=SIGNING_A, url=URL_B),
        status(10, 20.0, in_fps=30.0, restarts=0),
        status(20, 22.0, in_fps=30.0, restarts=0),
        status(30, 18.0, in_fps=30.0, restarts=1),
        status(40, 20.0, in_fps=30.0, restarts=1),
        status(50, 20.0, in_fps=28.0, restarts=1),
        status(70, 10.0, in_fps=30.0, restarts=2),
        status(80, 10.0, in_fps=30.0, restarts=2),
        trace(90, "gateway_ingest_stream_closed"),
        status(100, 5.0, in_fps=30.0, restarts=2),  # after the close
    ]
    insert(facts, RECEIVED)
    derive(now=RECEIVED)
    segment = Segment.objects.get(session=session())
    assert (segment.first_output_at, segment.last_output_at) == (at(3.8), at(80))
    assert (segment.fps_samples, segment.fps_sum, segment.restart_count) == (7, 120.0, 2)
    first, second = SegmentMinute.objects.filter(segment=segment).order_by("bucket")
    assert first.bucket == ANCHOR and second.bucket == ANCHOR + timedelta(minutes=1)
    assert (first.samples, first.fps_sum, first.fps_min, first.fps_max) == (5, 100.0, 18.0, 22.0)
    assert first.fps_sumsq == pytest.approx(400 + 484 + 324 + 400 + 400)
    assert (first.in_fps_sum, first.in_fps_samples) == (148.0, 5)
    # population σ of 20, 22, 18, 20, 20 is sqrt(8/5); μ = 20
    assert first.jitter == pytest.approx(math.sqrt(1.6) / 20)
    assert first.output_seconds == pytest.approx(60 - 3.8)
    assert first.restarts == 1
    assert (second.samples, second.jitter, second.output_seconds, second.restarts) == (2, None, 20.0, 1)


def test_signing_address_is_published_under_its_on_chain_address_with_gpu_and_region() -> None:
    insert(
        [
            capability(
                -60, ONCHAIN_B, local_address=SIGNING_A, url=URL_B, gpu_id="GPU-1", gpu_type="RTX 4090"
            ),
            capability(-30, ONCHAIN_B, origin="naap", pipeline="", model_id="", region="eu-west"),
            *healthy_session(),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    s = session()
    segment = Segment.objects.get(session=s)
    assert (s.orchestrator, s.region) == (ONCHAIN_B, "eu-west")
    assert (segment.orchestrator, segment.signing_address, segment.orchestrator_url) == (
        ONCHAIN_B,
        SIGNING_A,
        URL_B,
    )
    assert (segment.gpu_id, segment.gpu_type, segment.region) == ("GPU-1", "RTX 4090", "eu-west")
    minute = SegmentMinute.objects.filter(segment=segment).first()
    assert minute is not None
    assert (minute.orchestrator, minute.gpu_type, minute.region) == (ONCHAIN_B, "RTX 4090", "eu-west")


def test_a_session_is_closed_by_ten_minutes_of_silence_on_the_event_clock() -> None:
    facts = [f for f in healthy_session() if "closed" not in str(f.values)]
    insert(facts, RECEIVED)
    insert([status(50 + 599, 20.0, stream="other")], RECEIVED)
    derive(now=RECEIVED)
    assert (session().status, session().outcome) == ("open", "")
    assert session().attribution_final is False
    later = RECEIVED + timedelta(minutes=1)
    insert([status(50 + 600, 20.0, stream="other")], later)
    derive(now=later)
    s = session()
    assert (s.status, s.close_cause, s.ended_at, s.outcome, s.attribution_final) == (
        "closed",
        "silence",
        at(50),
        "ok",
        True,
    )


def test_a_late_event_reopens_its_closed_session() -> None:
    facts = [f for f in healthy_session() if "closed" not in str(f.values)]
    insert([*facts, status(700, 20.0, stream="other")], RECEIVED)
    derive(now=RECEIVED)
    assert session().close_cause == "silence"
    late = RECEIVED + timedelta(hours=3)
    insert([status(100, 19.0), status(110, 21.0)], late)
    derive(now=late)
    s = session()
    assert (s.status, s.last_event_at) == ("open", at(110))  # 700 − 110 < 600 s
    assert Segment.objects.get(session=s).fps_samples == 7


def test_a_client_error_ends_the_session_without_counting_against_the_orchestrator() -> None:
    base = [f for f in healthy_session() if "closed" not in str(f.values)]
    insert([*base, error(55, "whip disconnected by client", "client")], RECEIVED)
    derive(now=RECEIVED)
    s = session()
    assert (s.status, s.close_cause, s.outcome, s.error_class) == ("closed", "error", "ok", "client")
    segment = Segment.objects.get(session=s)
    assert (segment.error_class, segment.ended_cleanly) == ("client", True)


def test_an_orchestrator_error_after_the_last_output_fails_the_session() -> None:
    base = [f for f in healthy_session() if "closed" not in str(f.values)]
    insert([*base, error(55, "inference error: CUDA out of memory", "orchestrator")], RECEIVED)
    derive(now=RECEIVED)
    s = session()
    assert (s.close_cause, s.ended_at, s.outcome, s.error_class) == (
        "error",
        at(55),
        "failed",
        "orchestrator",
    )
    segment = Segment.objects.get(session=s)
    assert (segment.error_class, segment.ended, segment.ended_cleanly) == ("orchestrator", True, False)


def test_an_error_followed_by_output_is_not_fatal() -> None:
    insert([*healthy_session(), error(15, "runner restarted", "orchestrator")], RECEIVED)
    derive(now=RECEIVED)
    s = session()
    assert (s.close_cause, s.outcome, s.error_class) == ("trace", "ok", "")


def test_a_request_that_found_no_orchestrator_is_missing_capacity() -> None:
    insert(
        [
            trace(0, "gateway_receive_stream_request"),
            trace(1, "gateway_no_orchestrators_available"),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    s = session()
    assert (s.status, s.close_cause, s.outcome, s.orchestrator, s.segment_count) == (
        "closed",
        "trace",
        "no_orchestrator",
        "",
        0,
    )


def test_a_session_without_first_frame_failed_at_startup() -> None:
    insert(
        [
            trace(0, "gateway_receive_stream_request"),
            trace(1, "runner_receive_first_ingest_segment", orch=SIGNING_A, url=URL_B),
            status(4, 0.0),
            error(5, "model failed to load", "orchestrator"),
            trace(6, "gateway_ingest_stream_closed"),
        ],
        RECEIVED,
    )
    derive(now=RECEIVED)
    s = session()
    assert (s.outcome, s.started, s.orchestrator, s.p2ff_ms) == ("startup_failed", False, SIGNING_A, None)
    segment = Segment.objects.get(session=s)
    assert (segment.started, segment.ended_cleanly, segment.fps_samples) == (False, False, 0)


def test_derive_is_incremental_and_records_the_rewritten_range() -> None:
    insert(healthy_session(), RECEIVED)
    first = derive(now=RECEIVED)
    assert (first.streams, first.sessions, first.segments) == (1, 1, 1)
    assert DirtyRange.objects.count() == 1
    dirty = DirtyRange.objects.get()
    assert (dirty.kind, dirty.start, dirty.end) == ("sessions", ANCHOR, ANCHOR + timedelta(minutes=2))
    cursor = DeriveCursor.objects.get(name="sessions")
    assert (cursor.position, cursor.newest_event_at) == (RECEIVED, at(90))

    later = RECEIVED + timedelta(minutes=5)
    insert(healthy_session(stream="s2", start=600), later)
    second = derive(now=later)
    assert (second.streams, second.sessions) == (1, 1)  # s1 is not re-derived
    assert Session.objects.count() == 2
    assert Session.objects.get(stream_id="s1").updated_at == RECEIVED
    nothing = derive(now=later + timedelta(minutes=5))
    assert nothing.streams == 0
    assert Session.objects.count() == 2


def test_the_sla_derive_command_rebuilds_and_reports_a_json_summary() -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    insert(healthy_session(), RECEIVED)
    derive(now=RECEIVED)
    before = list(Session.objects.values_list("stream_id", "request_id", "p2ff_ms", "outcome"))
    out, err = StringIO(), StringIO()
    call_command("sla_derive", "--rebuild", "--chunk", "10", stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert (summary["streams"], summary["sessions"], summary["segments"], summary["facts"]) == (1, 1, 1, 11)
    assert "sla_derive: 1/1 streams" in err.getvalue()
    assert list(Session.objects.values_list("stream_id", "request_id", "p2ff_ms", "outcome")) == before
