"""Streamr node WebSocket plugin consumer.

The node's plugin (``PEERS.md``): subscribe at ``ws://HOST:7170/streams/<URI-encoded id>/subscribe``
with ``?apiKey=`` and ``?partitions=0,2``. Each text frame is one message: the bare content (a JSON
object), or with the node's ``payloadMetadata: true`` an object ``{"content": …, "metadata": {timestamp,
sequenceNumber, publisherId, msgChainId}}``. The metadata travels with the message into the raw log and
feeds gap detection: within one publisher's message chain, ``sequenceNumber`` counts messages that share
a ``timestamp`` (0 for the first), so a number that skips, or a new timestamp that does not start at 0,
means messages were lost on the way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from telemetry.pipeline.ingest import Message
from telemetry.sources.dispatch import Backoff, Dispatcher

log = logging.getLogger(__name__)

METADATA_KEYS = frozenset({"timestamp", "sequenceNumber", "publisherId", "msgChainId"})


def decode_payload(text: str | bytes | bytearray, payload_metadata: bool | None = None) -> Message:
    """One plugin message as a pipeline :class:`Message`.

    ``payload_metadata``: True/False as configured on the node, None to recognise the wrapped form by
    its shape. Text that is not JSON is passed on as a body, so the pipeline rejects it with a reason.
    """
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return Message(body=bytes(text) if isinstance(text, bytearray) else text)
    if payload_metadata is False or not _is_wrapped(value, strict=payload_metadata is None):
        return Message(value=value)
    metadata = value.get("metadata")
    metadata = {k: metadata[k] for k in METADATA_KEYS if k in metadata} if isinstance(metadata, dict) else {}
    publisher = metadata.get("publisherId")
    return Message(
        value=value.get("content"),
        publisher=str(publisher).lower() if isinstance(publisher, str) else "",
        metadata=metadata or None,
    )


def _is_wrapped(value: object, *, strict: bool) -> bool:
    if not isinstance(value, dict) or "content" not in value:
        return False
    if not strict:
        return True
    metadata = value.get("metadata")
    return (
        set(value) == {"content", "metadata"}
        and isinstance(metadata, dict)
        and set(metadata) >= METADATA_KEYS
    )


@dataclass
class GapTracker:
    """Counts lost and out-of-order messages per (publisher, message chain) from Streamr metadata."""

    last: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    gaps: dict[tuple[str, str], int] = field(default_factory=dict)
    out_of_order: int = 0

    def observe(self, metadata: dict[str, Any] | None) -> int:
        """Record one message's metadata; returns how many messages are missing before it."""
        if not metadata:
            return 0
        try:
            ts = int(metadata["timestamp"])
            seq = int(metadata["sequenceNumber"])
        except (KeyError, TypeError, ValueError):
            return 0
        chain = (str(metadata.get("publisherId", "")).lower(), str(metadata.get("msgChainId", "")))
        previous = self.last.get(chain)
        if previous is not None and (ts, seq) <= previous:
            self.out_of_order += 1  # a re-delivery or a reordering: dedup takes care of it
            return 0
        self.last[chain] = (ts, seq)
        if previous is None:
            return 0
        missing = seq - previous[1] - 1 if ts == previous[0] else seq
        if missing > 0:
            self.gaps[chain] = self.gaps.get(chain, 0) + missing
        return max(missing, 0)

    @property
    def total_gaps(self) -> int:
        return sum(self.gaps.values())


def subscribe_url(base_url: str, stream_id: str, partitions: list[int] | None, api_key: str) -> str:
    query: dict[str, str] = {}
    if api_key:
        query["apiKey"] = api_key
    if partitions:
        query["partitions"] = ",".join(str(p) for p in partitions)
    url = f"{base_url.rstrip('/')}/streams/{quote(stream_id, safe='')}/subscribe"
    return f"{url}?{urlencode(query)}" if query else url


@dataclass
class _Subscription:
    stream_id: str
    partitions: list[int] | None
    ws: ClientConnection | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 30.0))
    retry_at: float = 0.0
    last_heard: float = 0.0
    ping_sent_at: float | None = None
    connects: int = 0


@dataclass
class StreamrConsumer:
    """Subscribes to Streamr streams through a node's WebSocket plugin and feeds a :class:`Dispatcher`.

    The plugin has no acknowledgements: a message lost while we were disconnected is counted as a gap
    when the metadata shows it, and a re-delivered one is de-duplicated by the raw log.
    """

    dispatcher: Dispatcher[None]
    streams: list[str]
    base_url: str = "ws://127.0.0.1:7170"
    api_key: str = ""
    partitions: list[int] | None = None
    payload_metadata: bool | None = None
    idle_ping_s: float = 10.0  # send "ping" after this much silence
    liveness_timeout_s: float = 15.0  # reconnect when nothing (not even "pong") arrives for this long
    connect_timeout_s: float = 5.0
    max_frame_bytes: int = 1024 * 1024
    clock: Callable[[], float] = time.monotonic
    gaps: GapTracker = field(default_factory=GapTracker)
    reconnects: int = 0
    pongs: int = 0

    def __post_init__(self) -> None:
        self._subs = [_Subscription(s, self.partitions) for s in self.streams]

    @property
    def connected(self) -> int:
        return sum(1 for s in self._subs if s.ws is not None)

    def step(self, timeout_s: float = 0.5) -> int:
        """Read for up to ``timeout_s``, then move batches along; returns the number of messages read."""
        deadline = self.clock() + timeout_s
        read = 0
        for sub in self._subs:
            if sub.ws is None:
                self._connect(sub)
        while self.clock() < deadline and not self.dispatcher.full:
            live = [s for s in self._subs if s.ws is not None]
            if not live:
                time.sleep(min(0.05, max(0.0, deadline - self.clock())))
                self._reconnect_due()
                continue
            slice_s = max(0.01, min(0.1, deadline - self.clock()) / len(live))
            got = 0
            for sub in live:
                got += self._read(sub, slice_s)
            read += got
            self._liveness()
            self._reconnect_due()
            self.dispatcher.pump()
        self.dispatcher.pump()
        return read

    def _reconnect_due(self) -> None:
        for sub in self._subs:
            if sub.ws is None and self.clock() >= sub.retry_at:
                self._connect(sub)

    def _connect(self, sub: _Subscription) -> None:
        if self.clock() < sub.retry_at:
            return
        url = subscribe_url(self.base_url, sub.stream_id, sub.partitions, self.api_key)
        try:
            sub.ws = connect(
                url,
                open_timeout=self.connect_timeout_s,
                ping_interval=self.idle_ping_s,
                ping_timeout=self.liveness_timeout_s,
                close_timeout=2,
                max_size=self.max_frame_bytes,
                proxy=None,
                compression=None,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            log.error("streamr %s: node refused the subscription (HTTP %s)", sub.stream_id, status)
            self._schedule_retry(sub)
            return
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            log.warning("streamr %s: cannot connect: %s", sub.stream_id, exc)
            self._schedule_retry(sub)
            return
        if sub.connects:
            self.reconnects += 1
        sub.connects += 1
        sub.backoff.reset()
        sub.last_heard = self.clock()
        sub.ping_sent_at = None
        log.info("streamr %s: subscribed", sub.stream_id)

    def _schedule_retry(self, sub: _Subscription) -> None:
        sub.ws = None
        sub.retry_at = self.clock() + sub.backoff.next_delay()

    def _drop(self, sub: _Subscription, why: str) -> None:
        log.warning("streamr %s: connection lost (%s), reconnecting", sub.stream_id, why)
        if sub.ws is not None:
            try:
                sub.ws.close()
            except Exception:  # already broken
                log.debug("close failed", exc_info=True)
        self._schedule_retry(sub)

    def _read(self, sub: _Subscription, timeout_s: float) -> int:
        assert sub.ws is not None
        got = 0
        wait: float = timeout_s
        while not self.dispatcher.full:
            try:
                frame = sub.ws.recv(timeout=wait)
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                self._drop(sub, f"closed {exc.rcvd.code if exc.rcvd else 'abruptly'}")
                break
            except Exception as exc:  # a protocol error from a broken node: reconnect, never crash
                self._drop(sub, repr(exc))
                break
            sub.last_heard = self.clock()
            sub.ping_sent_at = None
            if frame == "pong":
                self.pongs += 1
                continue
            message = decode_payload(frame, self.payload_metadata)
            self.gaps.observe(message.metadata)
            self.dispatcher.add(message, None)
            got += 1
            wait = 0  # drain what is already here, then return to the others
        return got

    def _liveness(self) -> None:
        """Send ``"ping"`` after silence; reconnect when even that gets no answer."""
        now = self.clock()
        for sub in self._subs:
            if sub.ws is None:
                continue
            if sub.ping_sent_at is not None and now - sub.ping_sent_at > self.liveness_timeout_s:
                self._drop(sub, "no pong")
            elif sub.ping_sent_at is None and now - sub.last_heard > self.idle_ping_s:
                try:
                    sub.ws.send("ping")
                    sub.ping_sent_at = now
                except Exception as exc:
                    self._drop(sub, repr(exc))

    def close(self, flush_timeout_s: float = 30.0) -> None:
        """Commit what was read, then disconnect."""
        self.dispatcher.flush(flush_timeout_s)
        for sub in self._subs:
            if sub.ws is not None:
                try:
                    sub.ws.close()
                except Exception:
                    log.debug("close failed", exc_info=True)
                sub.ws = None

    def progress(self) -> dict[str, int]:
        return {
            **self.dispatcher.stats.as_dict(),
            "connected": self.connected,
            "reconnects": self.reconnects,
            "gaps": self.gaps.total_gaps,
            "out_of_order": self.gaps.out_of_order,
        }
