"""From transport messages to committed batches: buffer, cut, submit, wait for the commit, then ack.

A source adapter hands every transport message to :meth:`Dispatcher.add` together with an *ack token*
(a Kafka offset, an MQTT packet id, or nothing for sources without acks). :meth:`Dispatcher.pump` cuts
batches by size or age, submits them to the Celery ingest task (or, in-process, calls the pipeline
directly), waits for their commit and returns the tokens whose messages are committed, in the order the
messages arrived. The adapter acknowledges exactly those tokens, so a source never forgets a message that
is not in PostgreSQL. A batch that fails, times out or cannot be submitted is retried with exponential
backoff until it commits; since ingest is idempotent, running a batch twice stores it once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from django.conf import settings
from django.db import close_old_connections

from telemetry.pipeline.ingest import IngestResult, Message, ingest_messages

log = logging.getLogger(__name__)

T = TypeVar("T")
Mode = Literal["celery", "inprocess", "auto"]


@dataclass
class Backoff:
    """Exponential backoff: ``initial_s``, doubled per consecutive failure, capped at ``max_s``."""

    initial_s: float = 0.2
    max_s: float = 10.0
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.initial_s * (2**self.failures))
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass
class DispatchStats:
    """Progress counters of one dispatcher (all monotonically increasing except the gauges)."""

    received: int = 0
    batches_submitted: int = 0
    batches_committed: int = 0
    acked: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    submit_errors: int = 0
    batch_failures: int = 0
    resubmits: int = 0
    result_polls: int = 0  # rounds of asking the result backend about in-flight batches
    buffered: int = 0  # gauge
    in_flight: int = 0  # gauge: messages in submitted, not yet acked batches

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items())


@dataclass
class _Batch(Generic[T]):
    messages: list[Message]
    tokens: list[T]
    received_ms: int
    task_id: str | None = None
    submitted_at: float | None = None
    result: dict[str, Any] | None = None
    not_before: float = 0.0


@dataclass
class _Entry(Generic[T]):
    message: Message
    token: T
    at: float


@dataclass
class Dispatcher(Generic[T]):
    """Buffers transport messages and turns them into committed, acknowledged batches.

    ``mode``: ``"celery"`` submits each batch to ``telemetry.tasks.ingest_batch`` and waits for its
    result; ``"inprocess"`` calls :func:`ingest_messages` directly; ``"auto"`` picks Celery when the
    broker answers (and tasks are not eager), else in-process.
    """

    source: str
    mode: Mode = "auto"
    batch_size: int = 500
    max_delay_s: float = 0.25
    max_in_flight: int = 4
    max_buffered: int = 10_000
    result_timeout_s: float = 120.0
    poll_interval_s: float = 0.02
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(tz=UTC))
    stats: DispatchStats = field(default_factory=DispatchStats)

    def __post_init__(self) -> None:
        self._buffer: deque[_Entry[T]] = deque()
        self._in_flight: deque[_Batch[T]] = deque()
        self._not_before = 0.0
        self._polled_at: float | None = None
        if self.mode == "auto":
            self.mode = "celery" if broker_answers() else "inprocess"
            log.info("%s: dispatching batches %s", self.source, self.mode)

    # -- intake -----------------------------------------------------------------------------------
    def add(self, message: Message, token: T) -> None:
        self._buffer.append(_Entry(message, token, self.clock()))
        self.stats.received += 1
        self.stats.buffered = len(self._buffer)

    @property
    def full(self) -> bool:
        """True when the adapter should stop reading until batches commit (backpressure)."""
        return len(self._buffer) >= self.max_buffered

    @property
    def pending(self) -> int:
        """Messages received but not yet acknowledged."""
        return len(self._buffer) + sum(len(b.tokens) for b in self._in_flight)

    # -- progress ---------------------------------------------------------------------------------
    def pump(self, wait_s: float = 0.0, *, force: bool = False) -> list[T]:
        """Cut due batches, submit them, collect commits; returns the newly acknowledged tokens in order.

        Waits up to ``wait_s`` for in-flight batches to commit. ``force`` cuts the buffer even when no
        batch is due (used on shutdown).
        """
        deadline = self.clock() + wait_s
        acked: list[T] = []
        while True:
            self._cut(force)
            self._advance()
            acked.extend(self._collect())
            self._gauges()
            if not self._in_flight and not self._buffer:
                break
            if self.clock() >= deadline:
                break
            time.sleep(self.poll_interval_s)
        return acked

    def flush(self, timeout_s: float) -> list[T]:
        """Commit everything buffered, waiting up to ``timeout_s``; returns the acknowledged tokens."""
        return self.pump(timeout_s, force=True)

    def _gauges(self) -> None:
        self.stats.buffered = len(self._buffer)
        self.stats.in_flight = sum(len(b.tokens) for b in self._in_flight)

    def _cut(self, force: bool) -> None:
        now = self.clock()
        while self._buffer and len(self._in_flight) < self.max_in_flight:
            due = (
                force or len(self._buffer) >= self.batch_size or now - self._buffer[0].at >= self.max_delay_s
            )
            if not due:
                return
            count = min(self.batch_size, len(self._buffer))
            entries = [self._buffer.popleft() for _ in range(count)]
            received_ms = int(self.wall_clock().timestamp() * 1000)
            self._in_flight.append(
                _Batch([e.message for e in entries], [e.token for e in entries], received_ms)
            )

    def _advance(self) -> None:
        """Run or submit every batch that is not yet running, respecting the backoff."""
        for batch in self._in_flight:
            if batch.result is not None or batch.task_id is not None:
                continue
            now = self.clock()
            if now < self._not_before or now < batch.not_before:
                return
            if self.mode == "inprocess":
                self._run_inprocess(batch)
            else:
                self._submit(batch)
            if batch.result is None and batch.task_id is None:
                return  # failed: keep the order, retry after the backoff

    def _run_inprocess(self, batch: _Batch[T]) -> None:
        received = datetime.fromtimestamp(batch.received_ms / 1000, tz=UTC)
        try:
            result = ingest_messages(batch.messages, source=self.source, received_at=received)
        except Exception:
            self.stats.batch_failures += 1
            log.warning("%s: in-process ingest failed, retrying", self.source, exc_info=True)
            close_old_connections()
            self._fail()
            return
        self.stats.batches_submitted += 1
        self.backoff.reset()
        batch.result = result.as_dict()

    def _submit(self, batch: _Batch[T]) -> None:
        from telemetry.tasks import ingest_batch

        payload = [m.to_json() for m in batch.messages]
        try:
            async_result = ingest_batch.apply_async(
                args=(self.source, payload, batch.received_ms), retry=False
            )
        except Exception:
            self.stats.submit_errors += 1
            log.warning("%s: cannot submit a batch, retrying", self.source, exc_info=True)
            self._fail()
            return
        self.stats.batches_submitted += 1
        batch.task_id = async_result.id
        batch.submitted_at = self.clock()

    def _fail(self) -> None:
        self._not_before = self.clock() + self.backoff.next_delay()

    def _poll(self, batch: _Batch[T]) -> None:
        """Ask the result backend about a submitted batch; on failure or timeout, make it resubmit."""
        from celery.result import AsyncResult

        if batch.task_id is None or batch.result is not None:
            return
        async_result: AsyncResult = AsyncResult(batch.task_id)
        try:
            state = async_result.state
            value = async_result.result if state in ("SUCCESS", "FAILURE") else None
        except Exception:
            log.warning("%s: result backend unavailable", self.source, exc_info=True)
            return
        if state == "SUCCESS" and isinstance(value, dict):
            batch.result = value
            self.backoff.reset()
            try:
                async_result.forget()
            except Exception:  # the key expires anyway
                log.debug("could not forget result %s", batch.task_id)
            return
        assert batch.submitted_at is not None
        timed_out = self.clock() - batch.submitted_at > self.result_timeout_s
        if state == "FAILURE" or timed_out:
            if state == "FAILURE":
                self.stats.batch_failures += 1
                log.warning("%s: batch %s failed: %r", self.source, batch.task_id, value)
            else:
                log.warning("%s: batch %s not committed in time", self.source, batch.task_id)
            self.stats.resubmits += 1
            batch.task_id = None
            batch.submitted_at = None
            batch.not_before = self.clock() + self.backoff.next_delay()

    def _collect(self) -> list[T]:
        """Pop committed batches from the head only, so acknowledgements keep the arrival order.

        The result backend is asked at most once per ``poll_interval_s``: an adapter calls :meth:`pump`
        after every few messages it reads, and a round trip per in-flight batch on every call would cost
        more CPU than reading the messages.
        """
        acked: list[T] = []
        now = self.clock()
        due = self._polled_at is None or now - self._polled_at >= self.poll_interval_s
        if self.mode == "celery" and due and any(b.task_id is not None for b in self._in_flight):
            self._polled_at = now
            self.stats.result_polls += 1
            for batch in self._in_flight:
                self._poll(batch)
        while self._in_flight and self._in_flight[0].result is not None:
            batch = self._in_flight.popleft()
            result = batch.result or {}
            self.stats.batches_committed += 1
            self.stats.accepted += int(result.get("accepted", 0))
            self.stats.duplicates += int(result.get("duplicates", 0))
            self.stats.rejected += int(result.get("rejected", 0))
            self.stats.acked += len(batch.tokens)
            acked.extend(batch.tokens)
        return acked


def broker_answers(timeout_s: float = 2.0) -> bool:
    """Whether Celery tasks can run out of process: not eager, and the broker accepts a connection."""
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return False
    from naap_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout_s)
    except Exception:
        return False
    return True


def totals(stats: DispatchStats) -> IngestResult:
    """The dispatcher's counters as an :class:`IngestResult` (for summaries)."""
    return IngestResult(accepted=stats.accepted, duplicates=stats.duplicates, rejected=stats.rejected)
