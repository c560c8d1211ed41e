"""The simulation loop: stream arrivals, periodic network events, and a delivery stage that reorders,
duplicates and delays events the way real producers and relays do. Everything streams: memory holds only
the sessions in flight, never the whole output.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telemetry.simulator import formats as F
from telemetry.simulator.network import Gateway, Network, build_network, randbelow, randint, random_uuid
from telemetry.simulator.sessions import Retry, SessionBuilder, Timed
from telemetry.simulator.truth import Truth

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int
    start: datetime
    duration_s: float
    orchestrators: int = 12
    gateways: int = 3
    streams_per_min: float | None = None  # default: 0.6 per orchestrator
    reorder_window: int = 24
    p_duplicate: float = 0.01
    p_late: float = 0.002
    hours_late_sessions: int | None = None  # default: one per five orchestrators, at least two

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        if math.isinf(self.duration_s):
            return 2**62
        return self.start_ms + int(self.duration_s * 1000)

    @property
    def horizon_ms(self) -> int:
        """The span over which hours-late replays are released (the run, or its first hour if endless)."""
        return int((3600 if math.isinf(self.duration_s) else self.duration_s) * 1000)


@dataclass(frozen=True, slots=True)
class Delivered:
    at_ms: int  # when the event reaches the consumer (simulated clock)
    event: dict[str, Any]
    duplicate: bool


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.network: Network = build_network(self.rng, config.orchestrators, config.gateways)
        self.truth = Truth()
        self.sessions = SessionBuilder(self.rng, self.network, self.truth)
        self._heap: list[tuple[int, int, Any]] = []
        self._late: list[tuple[int, int, dict[str, Any]]] = []
        self._seq = itertools.count()

    # --- scheduling --------------------------------------------------------------------------------------
    def _push(self, t: int, item: dict[str, Any] | Callable[[int], None]) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), item))

    def _push_events(self, events: list[Timed]) -> None:
        for t, event in events:
            self._push(t, event)

    def _gateway(self) -> Gateway:
        gws = self.network.gateways
        # the first gateway carries most traffic
        return gws[0] if self.rng.random() < 0.5 else gws[randbelow(self.rng, len(gws))]

    def _arrival(self, t: int) -> None:
        cfg = self.config
        if t >= cfg.end_ms:
            return
        pipelines = self.sessions.pipelines
        pipeline = pipelines[randbelow(self.rng, len(pipelines))]
        self.truth.streams += 1
        self._session(t, self.sessions.new_stream_id(), self._gateway(), pipeline)
        rate = cfg.streams_per_min or 0.6 * cfg.orchestrators
        gap = int(self.rng.expovariate(rate / 60_000)) + 1
        self._push(t + gap, self._arrival)

    def _session(
        self, t: int, stream_id: str, gw: Gateway, pipeline: str, retry_of: Retry | None = None
    ) -> None:
        events, retry = self.sessions.build(t, stream_id, gw, pipeline, retry_of=retry_of)
        self._push_events(events)
        if retry is not None:
            self._push(retry.at_ms, self._retry_callback(retry))

    def _retry_callback(self, retry: Retry) -> Callable[[int], None]:
        def run(t: int) -> None:
            self._session(t, retry.stream_id, retry.gateway, retry.pipeline, retry_of=retry)

        return run

    def _ticker(self, every_ms: int, make: Callable[[int], dict[str, Any]]) -> Callable[[int], None]:
        def tick(t: int) -> None:
            if t >= self.config.end_ms:
                return
            self._push(t, make(t))
            self._push(t + every_ms + randint(self.rng, -500, 500), tick)

        return tick

    def _capabilities(self, t: int) -> dict[str, Any]:
        return {
            "id": random_uuid(self.rng),
            "type": "network_capabilities",
            "timestamp": F.rfc3339(t),
            "payload": [F.capabilities_entry(o) for o in self.network.orchestrators],
        }

    def _discovery(self, gw: Gateway) -> Callable[[int], dict[str, Any]]:
        def make(t: int) -> dict[str, Any]:
            return {
                "id": random_uuid(self.rng),
                "type": "discovery_results",
                "timestamp": F.rfc3339(t),
                "gateway": gw.name,
                "payload": [
                    {
                        "address": o.signing_address,
                        "latency_ms": str(int(o.rtt_ms * self.rng.uniform(0.7, 1.5))),
                        "url": o.url,
                    }
                    for o in self.network.orchestrators
                ],
            }

        return make

    def _health(self, index: int) -> Callable[[int], dict[str, Any]]:
        o = self.network.orchestrators[index]

        def make(t: int) -> dict[str, Any]:
            active = sum(1 for end in o.active_until if end > t)
            return F.orch_health(o, t, random_uuid(self.rng), active)

        return make

    def _setup(self) -> None:
        cfg = self.config
        t0 = cfg.start_ms
        # Capabilities first (the mapping local_address → on-chain address), then the periodic events.
        self._push(t0, self._ticker(300_000, self._capabilities))
        for gw in self.network.gateways:
            self._push(t0 + 1000 + gw.index * 137, self._ticker(60_000, self._discovery(gw)))
        for o in self.network.orchestrators:
            self._push(t0 + 2000 + o.index * 211, self._ticker(60_000, self._health(o.index)))
        self._push(t0 + 3000, self._arrival)
        # Sessions from hours ago that a relay replays late (after its outage), mid-run.
        count = cfg.hours_late_sessions
        if count is None:
            count = max(2, cfg.orchestrators // 5)
        pipelines = self.sessions.pipelines
        for _ in range(count):
            t = t0 - int(self.rng.uniform(2, 5) * HOUR_MS)
            release = t0 + int(cfg.horizon_ms * self.rng.uniform(0.2, 0.8))
            self.truth.streams += 1
            pipeline = pipelines[randbelow(self.rng, len(pipelines))]
            events, _ = self.sessions.build(
                t, self.sessions.new_stream_id(), self._gateway(), pipeline, allow_retry=False
            )
            for _t, event in events:
                heapq.heappush(self._late, (release, next(self._seq), event))
                self.truth.hours_late_events += 1
        for o in self.network.orchestrators:
            o.active_until.clear()

    # --- delivery ------------------------------------------------------------------------------------------
    def run(self) -> Iterator[Delivered]:
        """Yield events in delivery order; truth is complete when the iterator is exhausted."""
        self._setup()
        cfg = self.config
        rng = self.rng
        heap = self._heap
        late = self._late
        buffer: list[tuple[dict[str, Any], bool]] = []
        window = max(1, cfg.reorder_window)
        truth = self.truth
        now = cfg.start_ms
        while heap:
            t, _, item = heapq.heappop(heap)
            now = t
            if callable(item):
                item(t)
                continue
            while late and late[0][0] <= t:
                yield self._count(Delivered(t, heapq.heappop(late)[2], False))
            if rng.random() < cfg.p_late:
                truth.late_events += 1
                heapq.heappush(late, (t + randint(rng, 120_000, 1_200_000), next(self._seq), item))
                continue
            buffer.append((item, False))
            if rng.random() < cfg.p_duplicate:
                buffer.append((item, True))
            while len(buffer) > window:
                idx = randbelow(rng, len(buffer))
                buffer[idx], buffer[-1] = buffer[-1], buffer[idx]
                event, dup = buffer.pop()
                yield self._count(Delivered(t, event, dup))
        for event, dup in buffer:
            yield self._count(Delivered(now, event, dup))
        while late:
            release, _, event = heapq.heappop(late)
            yield self._count(Delivered(max(release, now), event, False))

    def _count(self, delivered: Delivered) -> Delivered:
        truth = self.truth
        truth.lines += 1
        if delivered.duplicate:
            truth.duplicates_delivered += 1
            return delivered
        event = delivered.event
        kind = event.get("type") or event.get("event_type") or ""
        truth.events_by_type[kind] += 1
        if kind == "stream_trace":
            truth.trace_types[event["data"]["type"]] += 1
        return delivered

    def truth_document(self) -> dict[str, Any]:
        cfg = self.config
        return self.truth.as_dict(
            {
                "seed": cfg.seed,
                "start": cfg.start.isoformat(),
                "duration_s": cfg.duration_s,
                "orchestrators": [
                    {
                        "address": o.address,
                        "signing_address": o.signing_address,
                        "url": o.url,
                        "region": o.region,
                        "tier": o.quality.tier,
                        "pipelines": list(o.pipelines),
                        "gpus": [{"id": g.gpu_id, "type": g.name} for g in o.gpus],
                    }
                    for o in self.network.orchestrators
                ],
                "gateways": [
                    {"name": g.name, "timestamp_style": g.timestamp_style} for g in self.network.gateways
                ],
            }
        )


def parse_duration(text: str) -> float:
    """``30m``, ``2h``, ``90s``, ``1d`` or plain seconds; ``inf`` runs until stopped."""
    value = text.strip().lower()
    if value in {"inf", "forever"}:
        return math.inf
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units:
        return float(value[:-1]) * units[value[-1]]
    return float(value)
