"""Kafka consumer for the network's go-livepeer topics (aiokafka, one consumer group).

Offsets are committed by hand, and only up to the last message whose batch is committed in PostgreSQL:
after a crash or a rebalance, whatever was read but not stored is read again (and de-duplicated).

aiokafka is asynchronous; its event loop runs in a thread of its own so that heartbeats continue while
this thread waits for a batch to commit. :meth:`KafkaConsumer.step` is synchronous.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from telemetry.pipeline.ingest import Message
from telemetry.sources.dispatch import Backoff, Dispatcher

log = logging.getLogger(__name__)

KafkaToken = tuple[str, int, int]  # topic, partition, offset
R = TypeVar("R")


@dataclass
class KafkaConsumer:
    dispatcher: Dispatcher[KafkaToken]
    topics: list[str]
    bootstrap: str
    group_id: str = "naap-analytics"
    client_id: str = "naap-analytics"
    max_records: int = 500
    auto_offset_reset: str = "earliest"
    # a Kafka group (re)join waits for members during part of the session timeout: short on a test broker
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 30.0))
    commits: int = 0
    commit_errors: int = 0
    committed: dict[tuple[str, int], int] = field(default_factory=dict)  # next offset to read, committed

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka-consumer", daemon=True)
        self._thread.start()
        self._consumer: AIOKafkaConsumer | None = None
        self._retry_at = 0.0
        self._to_commit: dict[tuple[str, int], int] = {}
        self._paused = False

    def _run(self, coro: Coroutine[Any, Any, R], timeout_s: float = 60.0) -> R:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    @property
    def started(self) -> bool:
        return self._consumer is not None

    def _start(self) -> None:
        if self._consumer is not None or time.monotonic() < self._retry_at:
            return

        async def create() -> AIOKafkaConsumer:
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                client_id=self.client_id,
                enable_auto_commit=False,
                auto_offset_reset=self.auto_offset_reset,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=self.heartbeat_interval_ms,
                request_timeout_ms=40_000,
                retry_backoff_ms=200,
            )
            try:
                await consumer.start()
            except BaseException:
                await consumer.stop()
                raise
            return consumer

        try:
            self._consumer = self._run(create())
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka: cannot start the consumer: %r", exc)
            self._retry_at = time.monotonic() + self.backoff.next_delay()
            return
        self.backoff.reset()
        log.info("kafka: consuming %s as group %s", ",".join(self.topics), self.group_id)

    def step(self, timeout_s: float = 0.5) -> int:
        """Fetch for up to ``timeout_s``, move batches along, commit offsets of committed messages."""
        self._start()
        read = 0
        if self._consumer is None:
            time.sleep(min(timeout_s, 0.1))
        else:
            self._backpressure()
            if not self._paused:
                batches = self._fetch(timeout_s)
                for tp, records in batches.items():
                    for record in records:
                        value = record.value if record.value is not None else b""
                        self.dispatcher.add(Message(body=value), (tp.topic, tp.partition, record.offset))
                        read += 1
        self._mark(self.dispatcher.pump())
        self._commit()
        return read

    def _fetch(self, timeout_s: float) -> dict[TopicPartition, list[Any]]:
        assert self._consumer is not None
        consumer = self._consumer
        try:
            return self._run(
                consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=self.max_records),
                timeout_s + 30,
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka: fetch failed: %r", exc)
            return {}

    def _backpressure(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        if self.dispatcher.full and not self._paused:
            self._loop.call_soon_threadsafe(lambda: consumer.pause(*consumer.assignment()))
            self._paused = True
        elif self._paused and not self.dispatcher.full:
            self._loop.call_soon_threadsafe(lambda: consumer.resume(*consumer.paused()))
            self._paused = False

    def _mark(self, tokens: list[KafkaToken]) -> None:
        for topic, partition, offset in tokens:
            key = (topic, partition)
            self._to_commit[key] = max(self._to_commit.get(key, 0), offset + 1)

    def _commit(self) -> None:
        if not self._to_commit or self._consumer is None:
            return
        offsets = {TopicPartition(t, p): o for (t, p), o in self._to_commit.items()}
        try:
            self._run(self._consumer.commit(offsets), 60)
        except (KafkaError, OSError, TimeoutError) as exc:
            # a rebalance took the partition away or the broker is down: the new owner re-reads
            # from the last committed offset, and dedup makes the re-read harmless
            self.commit_errors += 1
            log.warning("kafka: commit failed, retrying next step: %r", exc)
            return
        self.commits += 1
        self.committed.update(self._to_commit)
        self._to_commit.clear()

    def close(self, flush_timeout_s: float = 30.0) -> None:
        """Commit what was read, commit its offsets, leave the group."""
        self._mark(self.dispatcher.flush(flush_timeout_s))
        self._commit()
        self.abort()

    def abort(self) -> None:
        """Leave without committing anything more (what a crash looks like, minus the session timeout)."""
        if self._consumer is not None:
            try:
                self._run(self._consumer.stop(), 30)
            except Exception:
                log.debug("kafka: stop failed", exc_info=True)
            self._consumer = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def progress(self) -> dict[str, int]:
        return {
            **self.dispatcher.stats.as_dict(),
            "started": int(self.started),
            "commits": self.commits,
            "commit_errors": self.commit_errors,
        }
