"""Where simulated events go: a JSON-lines file (with its ground truth), HTTP ingest, or an MQTT topic."""

from __future__ import annotations

import abc
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import msgspec

from telemetry.simulator.engine import Delivered, Simulation

_encoder = msgspec.json.Encoder()
CHUNK = 2000


def _chunks(items: Iterable[Delivered], size: int) -> Iterator[list[Delivered]]:
    chunk: list[Delivered] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Progress:
    def __init__(self, label: str, stream: IO[str] | None = None, every_s: float = 2.0) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.every_s = every_s
        self.started = time.monotonic()
        self.last = self.started
        self.count = 0

    def add(self, n: int, force: bool = False) -> None:
        self.count += n
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            self.last = now
            rate = self.count / max(now - self.started, 1e-9)
            self.stream.write(f"{self.label}: {self.count} events ({rate:,.0f}/s)\n")
            self.stream.flush()


def truth_path(path: Path) -> Path:
    name = path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else path.stem
    return path.with_name(stem + ".truth.json")


def write_file(sim: Simulation, path: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Write events as JSON lines and the ground truth beside them; returns the truth document."""
    with path.open("wb", buffering=1 << 20) as handle:
        for chunk in _chunks(sim.run(), CHUNK):
            handle.write(_encoder.encode_lines([d.event for d in chunk]))
            if progress is not None:
                progress.add(len(chunk))
    document = sim.truth_document()
    truth_path(path).write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    if progress is not None:
        progress.add(0, force=True)
    return document


class TokenBucket:
    """At most ``rate`` tokens per second with bursts of ``burst``; ``rate <= 0`` means unlimited."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.burst
        self.clock = clock
        self.sleep = sleep
        self.stamp = clock()

    def take(self, n: float) -> None:
        if self.rate <= 0:
            return
        while True:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= n or (n > self.burst and self.tokens >= self.burst):
                self.tokens -= n
                return
            self.sleep(min(1.0, (min(n, self.burst) - self.tokens) / self.rate))


class Sink(abc.ABC):
    @abc.abstractmethod
    def send(self, events: list[dict[str, Any]]) -> None: ...

    def close(self) -> None:
        return None


class HttpSink(Sink):
    """POST batches as NDJSON to ``/v1/ingest`` with the publisher's API key; retries with backoff."""

    def __init__(self, url: str, api_key: str, timeout: float = 30.0, attempts: int = 8) -> None:
        import httpx

        self.url = url
        self.attempts = attempts
        self.client = httpx.Client(
            timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/x-ndjson"},
        )
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    def send(self, events: list[dict[str, Any]]) -> None:
        import httpx

        body = _encoder.encode_lines(events)
        delay = 0.5
        for attempt in range(self.attempts):
            try:
                response = self.client.post(self.url, content=body)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    counts = response.json()
                    self.accepted += int(counts.get("accepted", 0))
                    self.duplicates += int(counts.get("duplicates", 0))
                    self.rejected += int(counts.get("rejected", 0))
                    return
                if response.status_code < 500:
                    raise RuntimeError(f"ingest answered {response.status_code}: {response.text[:300]}")
                error = f"HTTP {response.status_code}"
            if attempt == self.attempts - 1:
                raise RuntimeError(f"ingest at {self.url} failed after {self.attempts} attempts: {error}")
            sys.stderr.write(f"publish: {error}; retrying in {delay:.1f} s\n")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def close(self) -> None:
        self.client.close()


class MqttSink(Sink):
    """Publish each event as one JSON object message (Streamr's MQTT plugin refuses arrays)."""

    def __init__(self, url: str, api_key: str = "") -> None:
        import paho.mqtt.client as mqtt

        parsed = urlparse(url)
        self.topic = parsed.path.lstrip("/") or "naap/telemetry"
        if parsed.query:
            self.topic += "?" + parsed.query
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"naap-sim-{id(self):x}")
        if api_key or parsed.username:
            self.client.username_pw_set(parsed.username or "naap", api_key or parsed.password or "")
        self.client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.client.loop_start()

    def send(self, events: list[dict[str, Any]]) -> None:
        infos = [self.client.publish(self.topic, _encoder.encode(e), qos=1) for e in events]
        for info in infos:
            info.wait_for_publish(timeout=30)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def make_sink(target: str, api_key: str) -> Sink:
    scheme = urlparse(target).scheme
    if scheme in {"http", "https"}:
        if not api_key:
            raise ValueError("--api-key is required to publish over HTTP")
        return HttpSink(target, api_key)
    if scheme == "mqtt":
        return MqttSink(target, api_key)
    raise ValueError(f"cannot publish to {target!r}: use http(s)://HOST/v1/ingest or mqtt://HOST:1883/TOPIC")


def publish(
    sim: Simulation,
    sink: Sink,
    *,
    rate: float,
    batch: int = 500,
    realtime: bool = False,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send events in delivery order, at most ``rate`` per second; with ``realtime`` also wait until the
    simulated delivery time has come on the wall clock (for ``--start now``). Returns events sent."""
    bucket = TokenBucket(rate, burst=max(rate, batch), sleep=sleep)
    sent = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal sent, pending
        if pending:
            bucket.take(len(pending))
            sink.send(pending)
            sent += len(pending)
            if progress is not None:
                progress.add(len(pending))
            pending = []

    try:
        last_flush = clock()
        for delivered in sim.run():
            if should_stop():
                break
            if realtime:
                wait = delivered.at_ms / 1000 - clock()
                if wait > 0:
                    flush()
                    while wait > 0 and not should_stop():
                        sleep(min(wait, 0.5))
                        wait = delivered.at_ms / 1000 - clock()
            pending.append(delivered.event)
            if len(pending) >= batch or (realtime and clock() - last_flush >= 1.0):
                flush()
                last_flush = clock()
        if not should_stop():
            flush()
    finally:
        sink.close()
    return sent
