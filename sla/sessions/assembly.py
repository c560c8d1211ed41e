"""Pure assembly of one stream's sessions from its facts (METRICS.md "Sessions", "Reliability").

The result depends only on the set of facts and the newest event time seen (the silence clock): facts are
sorted by (event time, kind, dedup key) and de-duplicated first, so delivery order and re-delivery never
matter. No Django here; ``derive`` feeds it rows read through ``telemetry.queries``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sla.sessions.identity import IdentityBook
from sla.sessions.rows import MinuteRow, SegmentRow, SessionRow
from sla.sessions.taxonomy import swap_reason
from telemetry.queries import FACT_KIND_ERROR, FACT_KIND_STATUS, FACT_KIND_TRACE, SessionFact

SILENCE = timedelta(minutes=10)
MINUTE = timedelta(minutes=1)

TRACE_REQUEST = "gateway_receive_stream_request"
TRACE_FIRST_INGEST = "gateway_send_first_ingest_segment"
TRACE_RUNNER_IN = "runner_receive_first_ingest_segment"
TRACE_RUNNER_OUT = "runner_send_first_processed_segment"
TRACE_FIRST_FRAME = "gateway_receive_first_processed_segment"
TRACE_CLOSED = "gateway_ingest_stream_closed"
TRACE_NO_ORCHESTRATOR = "gateway_no_orchestrators_available"
TRACE_SWAP = "orchestrator_swap"
_LIFECYCLE = (
    TRACE_REQUEST,
    TRACE_FIRST_INGEST,
    TRACE_RUNNER_IN,
    TRACE_RUNNER_OUT,
    TRACE_FIRST_FRAME,
    TRACE_CLOSED,
    TRACE_NO_ORCHESTRATOR,
)


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def ordered_facts(rows: Iterable[SessionFact]) -> list[SessionFact]:
    """Sorted by (event time, kind, dedup key), each fact once."""
    out: list[SessionFact] = []
    last: tuple[datetime, int, bytes] | None = None
    for row in sorted(rows, key=lambda r: (r.event_time, r.kind, r.dedup_key)):
        ident = (row.event_time, row.kind, row.dedup_key)
        if ident != last:
            out.append(row)
            last = ident
    return out


@dataclass
class _Segment:
    row: SegmentRow
    urls: set[str] = field(default_factory=set)
    facts: list[SessionFact] = field(default_factory=list)
    swap_trace: SessionFact | None = None


def _ms(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None or later < earlier:
        return None
    return (later - earlier).total_seconds() * 1000.0


def _is_output(f: SessionFact) -> bool:
    if f.kind == FACT_KIND_STATUS:
        fps = f.output_fps
        return fps is not None and fps > 0
    return f.kind == FACT_KIND_TRACE and f.sub == TRACE_FIRST_FRAME


def assemble_stream(rows: Iterable[SessionFact], book: IdentityBook, newest: datetime) -> list[SessionRow]:
    """All sessions of one stream, with cross-session swaps charged to the earlier session."""
    by_request: dict[str, list[SessionFact]] = {}
    stream_id = ""
    for row in rows:
        by_request.setdefault(row.request_id, []).append(row)
        stream_id = row.stream_id
    sessions = [
        assemble_session(stream_id, request_id, ordered_facts(facts), book, newest)
        for request_id, facts in by_request.items()
    ]
    sessions.sort(key=lambda s: (s.request_at or s.first_event_at, s.request_id))
    _charge_stream_swaps(sessions)
    return sessions


def _charge_stream_swaps(sessions: Sequence[SessionRow]) -> None:
    """A change of orchestrator between consecutive sessions of a stream is a swap away from the
    earlier session's last orchestrator, unless that session ended for a client-side reason. Sessions no
    orchestrator served (missing capacity) are passed over: the stream's orchestrator is unchanged by them."""
    served = [s for s in sessions if any(g.orchestrator for g in s.segments)]
    for before, after in zip(served, served[1:], strict=False):
        if before.error_class == "client":
            continue
        last = before.segments[-1]
        following = next(s for s in after.segments if s.orchestrator)
        if not last.orchestrator or following.orchestrator == last.orchestrator or last.swapped_away:
            continue
        last.swapped_away = True
        last.ended = True
        last.ended_cleanly = False
        reason = swap_reason(last.error_message, before.error_message)
        if reason == "unknown" and before.close_cause == "silence":
            reason = "timeout"
        last.swap_reason = reason
        before.swap_count += 1


def assemble_session(
    stream_id: str,
    request_id: str,
    facts: list[SessionFact],
    book: IdentityBook,
    newest: datetime,
) -> SessionRow:
    """One session from its ordered, de-duplicated facts."""
    s = SessionRow(stream_id=stream_id, request_id=request_id)
    if not facts:
        return s
    s.first_event_at = facts[0].event_time
    s.last_event_at = facts[-1].event_time
    limit = s.last_event_at
    firsts: dict[str, datetime] = {}
    last_output: datetime | None = None
    for f in facts:
        if not s.gateway and f.gateway:
            s.gateway = f.gateway
        if not s.pipeline and f.pipeline:
            s.pipeline = f.pipeline
        if f.kind == FACT_KIND_TRACE and f.sub in _LIFECYCLE and f.sub not in firsts:
            firsts[f.sub] = f.event_time
    s.request_at = firsts.get(TRACE_REQUEST)
    s.first_ingest_at = firsts.get(TRACE_FIRST_INGEST)
    s.runner_in_at = firsts.get(TRACE_RUNNER_IN)
    s.runner_out_at = firsts.get(TRACE_RUNNER_OUT)
    s.first_frame_at = firsts.get(TRACE_FIRST_FRAME)
    s.closed_at = firsts.get(TRACE_CLOSED)
    for f in facts:
        if s.closed_at is not None and f.event_time > s.closed_at:
            break
        if _is_output(f):
            last_output = f.event_time

    # The session's error: the last error after which no output followed (before a close trace).
    terminal: SessionFact | None = None
    for f in facts:
        if f.kind != FACT_KIND_ERROR or (s.closed_at is not None and f.event_time > s.closed_at):
            continue
        if last_output is None or f.event_time >= last_output:
            terminal = f
    no_orchestrator_at = firsts.get(TRACE_NO_ORCHESTRATOR)
    if no_orchestrator_at is not None and any(
        f.event_time >= no_orchestrator_at and (f.orchestrator or f.url) for f in facts
    ):
        no_orchestrator_at = None  # an orchestrator was found after all
    if s.closed_at is not None:
        s.close_cause, s.ended_at = "trace", s.closed_at
    elif terminal is not None:
        s.close_cause, s.ended_at = "error", terminal.event_time
    elif no_orchestrator_at is not None:
        s.close_cause, s.ended_at = "trace", no_orchestrator_at
    elif newest - s.last_event_at >= SILENCE:
        s.close_cause, s.ended_at = "silence", s.last_event_at
    if s.ended_at is not None:
        s.status = "closed"
        s.attribution_final = True
    if terminal is not None:
        s.error_class = terminal.error_class or "unknown"
        s.error_message = terminal.text

    end = s.ended_at
    in_window = facts if end is None else [f for f in facts if f.event_time <= end]
    segments = _split(in_window, book, limit)
    for ordinal, seg in enumerate(segments):
        _fill_segment(seg, ordinal, s, book, limit, end)

    s.p2ff_ms = _ms(s.first_frame_at, s.request_at)
    s.startup_ms = _ms(s.runner_out_at, s.runner_in_at)
    s.e2e_ms = _ms(s.first_frame_at, s.first_ingest_at)
    # P2FF and E2E are the session's (one request, one first frame) and go to the segment that served the
    # first frame; startup is each segment's own: a segment after a swap has its own runner traces.
    serving = _segment_with(segments, TRACE_FIRST_FRAME) or _segment_with(segments, TRACE_RUNNER_OUT)
    if serving is not None:
        serving.row.p2ff_ms, serving.row.e2e_ms = s.p2ff_ms, s.e2e_ms
    for seg in segments:
        seg.row.startup_ms = _ms(_first_trace(seg, TRACE_RUNNER_OUT), _first_trace(seg, TRACE_RUNNER_IN))

    s.segments = [seg.row for seg in segments]
    s.segment_count = len(s.segments)
    attributed = [r for r in s.segments if r.orchestrator]
    chosen = next((r for r in reversed(attributed) if r.started), None) or (
        attributed[-1] if attributed else None
    )
    if chosen is not None:
        s.orchestrator, s.region = chosen.orchestrator, chosen.region
    s.started = s.first_frame_at is not None or last_output is not None
    outputs = [r for r in s.segments if r.first_output_at is not None]
    if outputs:
        s.first_output_at = min(r.first_output_at for r in outputs if r.first_output_at)
        s.last_output_at = max(r.last_output_at for r in outputs if r.last_output_at)
    s.swap_count = sum(1 for r in s.segments if r.swapped_away)
    s.restart_count = sum(r.restart_count for r in s.segments)
    if s.status == "closed":
        if not any(r.orchestrator or r.orchestrator_url for r in s.segments):
            s.outcome = "no_orchestrator"
        elif not s.started:
            s.outcome = "startup_failed"
        elif s.error_class and s.error_class != "client":
            s.outcome = "failed"
        else:
            s.outcome = "ok"
    return s


def _first_trace(seg: _Segment, trace_type: str) -> datetime | None:
    return next((f.event_time for f in seg.facts if f.kind == FACT_KIND_TRACE and f.sub == trace_type), None)


def _segment_with(segments: list[_Segment], trace_type: str) -> _Segment | None:
    for seg in segments:
        if any(f.kind == FACT_KIND_TRACE and f.sub == trace_type for f in seg.facts):
            return seg
    return None


def _split(facts: list[SessionFact], book: IdentityBook, limit: datetime) -> list[_Segment]:
    """Cut the session into orchestrator segments: a new segment starts at a change of orchestrator
    (on-chain address, or URL when the address is unknown) or at the next identified event after an
    ``orchestrator_swap`` trace."""
    segments: list[_Segment] = []
    pending: list[SessionFact] = []  # facts before the first identified one
    current: _Segment | None = None
    swap: SessionFact | None = None
    for f in facts:
        ident: tuple[str, str, str] | None = None
        if f.kind != FACT_KIND_ERROR and (f.orchestrator or f.url):
            if f.orchestrator:
                ident = (book.on_chain(f.orchestrator, f.event_time, limit), f.orchestrator, f.url)
            else:
                ident = (book.by_url(f.url, f.event_time, limit), "", f.url)
        is_swap = f.kind == FACT_KIND_TRACE and f.sub == TRACE_SWAP
        if is_swap and current is not None:
            if ident is not None and not _same(current, ident):
                current.swap_trace = f
                current = _open(segments, ident, f)
                current.facts.append(f)
            else:
                current.facts.append(f)
                swap = f
            continue
        if ident is not None:
            if current is None:
                current = _open(segments, ident, f)
                current.facts.extend(pending)
                pending = []
            elif swap is not None or not _same(current, ident):
                current.swap_trace = swap
                current = _open(segments, ident, f)
                swap = None
            else:
                _absorb(current, ident)
        if current is None:
            pending.append(f)
        else:
            current.facts.append(f)
    if swap is not None and current is not None:  # swapped away, the next orchestrator never reported
        current.swap_trace = swap
        current.row.swapped_away = True
    return segments


def _same(seg: _Segment, ident: tuple[str, str, str]) -> bool:
    on_chain, _, url = ident
    if on_chain and seg.row.orchestrator:
        return on_chain == seg.row.orchestrator
    if url and seg.urls:
        return url in seg.urls
    return True


def _absorb(seg: _Segment, ident: tuple[str, str, str]) -> None:
    on_chain, signing, url = ident
    row = seg.row
    if on_chain and not row.orchestrator:
        row.orchestrator = on_chain
    if signing and not row.signing_address:
        row.signing_address = signing
    if url:
        if not row.orchestrator_url:
            row.orchestrator_url = url
        seg.urls.add(url)


def _open(segments: list[_Segment], ident: tuple[str, str, str], f: SessionFact) -> _Segment:
    seg = _Segment(row=SegmentRow(ordinal=len(segments), started_at=f.event_time))
    if segments:
        segments[-1].row.swapped_away = True
    _absorb(seg, ident)
    segments.append(seg)
    return seg


def _fill_segment(
    seg: _Segment,
    ordinal: int,
    s: SessionRow,
    book: IdentityBook,
    limit: datetime,
    end: datetime | None,
) -> None:
    row = seg.row
    row.ordinal = ordinal
    row.pipeline, row.gateway = s.pipeline, s.gateway
    row.request_at = s.request_at or s.first_event_at
    row.ended_at = seg.facts[-1].event_time
    if row.orchestrator and row.started_at is not None:
        hw = book.hardware_of(row.orchestrator, s.pipeline, row.started_at, limit)
        row.gpu_id, row.gpu_type, row.region = hw.gpu_id, hw.gpu_type, hw.region
    if not row.region:  # NaaP v1 runner samples carry the region of the orchestrator that sent them
        row.region = next((f.region for f in seg.facts if f.region and f.kind == FACT_KIND_STATUS), "")
    outputs = [f.event_time for f in seg.facts if _is_output(f)]
    if outputs:
        row.first_output_at, row.last_output_at = outputs[0], outputs[-1]
        row.started = True
    # The segment's error: its last error after which it produced no output.
    for f in seg.facts:
        if f.kind == FACT_KIND_ERROR and (row.last_output_at is None or f.event_time >= row.last_output_at):
            row.error_class, row.error_message = f.error_class or "unknown", f.text
    if row.swapped_away:
        last_status_error = next(
            (f.text for f in reversed(seg.facts) if f.kind == FACT_KIND_STATUS and f.text), ""
        )
        detail = seg.swap_trace.text if seg.swap_trace is not None else ""
        row.swap_reason = swap_reason(detail, row.error_message, last_status_error)
    row.ended = row.swapped_away or s.status == "closed"
    row.ended_cleanly = (
        row.ended and row.started and not row.swapped_away and row.error_class in ("", "client")
    )
    _fill_minutes(seg, end)


@dataclass(slots=True)
class _MinuteAcc:
    fps: list[float] = field(default_factory=list)
    in_fps: list[float] = field(default_factory=list)
    restarts: int = 0
    output_seconds: float = 0.0


def _fill_minutes(seg: _Segment, end: datetime | None) -> None:
    row = seg.row
    acc: dict[datetime, _MinuteAcc] = {}
    previous_restarts = 0
    first_output = row.first_output_at
    bucket_start = bucket_end = None  # the minute of the previous sample, reused while it lasts
    current: _MinuteAcc | None = None
    for f in seg.facts:
        if f.kind != FACT_KIND_STATUS:
            continue
        t = f.event_time
        if bucket_start is None or bucket_end is None or not bucket_start <= t < bucket_end:
            bucket_start = minute_of(t)
            bucket_end = bucket_start + MINUTE
            current = None
        if f.restart_count is not None:
            count = f.restart_count
            delta = count - previous_restarts if count >= previous_restarts else count  # a drop is a reset
            previous_restarts = count
            if delta > 0:
                current = current or acc.setdefault(bucket_start, _MinuteAcc())
                current.restarts += delta
                row.restart_count += delta
        if first_output is None or t < first_output or (end is not None and t > end):
            continue  # not a performance sample
        if f.output_fps is not None:
            current = current or acc.setdefault(bucket_start, _MinuteAcc())
            current.fps.append(f.output_fps)
        if f.input_fps is not None:
            current = current or acc.setdefault(bucket_start, _MinuteAcc())
            current.in_fps.append(f.input_fps)
    if row.first_output_at is not None and row.last_output_at is not None:
        bucket = minute_of(row.first_output_at)
        while bucket <= row.last_output_at:
            lo = max(bucket, row.first_output_at)
            hi = min(bucket + MINUTE, row.last_output_at)
            if hi > lo:
                acc.setdefault(bucket, _MinuteAcc()).output_seconds = (hi - lo).total_seconds()
            bucket += MINUTE
    for bucket in sorted(acc):
        a = acc[bucket]
        m = MinuteRow(
            bucket=bucket,
            orchestrator=row.orchestrator,
            pipeline=row.pipeline,
            region=row.region,
            gpu_id=row.gpu_id,
            gpu_type=row.gpu_type,
            gateway=row.gateway,
            samples=len(a.fps),
            fps_sum=math.fsum(a.fps),
            fps_sumsq=math.fsum(x * x for x in a.fps),
            fps_min=min(a.fps) if a.fps else None,
            fps_max=max(a.fps) if a.fps else None,
            in_fps_sum=math.fsum(a.in_fps),
            in_fps_samples=len(a.in_fps),
            jitter=jitter(a.fps),
            output_seconds=a.output_seconds,
            restarts=a.restarts,
        )
        row.fps_samples += m.samples
        row.minutes.append(m)
    row.fps_sum = math.fsum(x for m in row.minutes for x in acc[m.bucket].fps)


def jitter(samples: Sequence[float]) -> float | None:
    """Population σ/μ of one segment-minute's output-fps samples; None below 3 samples or at μ = 0."""
    n = len(samples)
    if n < 3:
        return None
    mean = math.fsum(samples) / n
    if mean <= 0:
        return None
    variance = math.fsum((x - mean) ** 2 for x in samples) / n
    return math.sqrt(variance) / mean
