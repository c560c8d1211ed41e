"""One stream request attempt (a session) → its events in time order, recording the ground truth.

Timeline of a served session (gateway clock in ms, runner clock in seconds):
request → first ingest → runner in → runner out → first frame → few segments (→ first data segment),
status samples every ~10 s (fps 0 until the segment's first output), ingest metrics every ~10 s,
payments while output flows, then one end: clean close, an error of one class, or a swap to another
orchestrator inside the same ``request_id`` (which starts a new segment).

A failed session may be retried as a new session of the same stream; when another orchestrator serves the
retry, that is a swap away from the failed session's last orchestrator (METRICS.md "swap rate"), charged to
it with the reason of its error. A retry that finds no orchestrator passes the charge on to its own retry.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from telemetry.simulator import formats as F
from telemetry.simulator.network import (
    PIPELINES,
    Gateway,
    Network,
    Orchestrator,
    randbelow,
    randint,
    random_uuid,
)
from telemetry.simulator.truth import Truth

STATUS_EVERY_MS = 10_000
P_NO_CAPACITY = 0.015  # the gateway finds no orchestrator even when slots look free (price, selection)
P_NETWORK_ERROR = 0.02
P_CLIENT_ERROR = 0.08
P_RECONNECT = 0.12
P_RETRY = 0.5

TARGET_FPS = {name: fps for name, fps, _ in PIPELINES}
HAS_DATA = {name for name, _, data in PIPELINES if data}

Timed = tuple[int, dict[str, Any]]


@dataclass(slots=True)
class Retry:
    at_ms: int
    stream_id: str
    gateway: Gateway
    pipeline: str
    # The orchestrator that last served the stream (a failed session), and the swap reason of its error:
    # charged with a swap when another orchestrator serves the retry.
    previous: Orchestrator | None = None
    reason: str = ""


class SessionBuilder:
    def __init__(self, rng: random.Random, network: Network, truth: Truth) -> None:
        self.rng = rng
        self.network = network
        self.truth = truth
        self.pipelines = [p for p, _, _ in PIPELINES if network.serving(p)]

    # --- envelopes -------------------------------------------------------------------------------------
    def event(self, gw: Gateway, kind: str, t_ms: int, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": random_uuid(self.rng),
            "type": kind,
            "timestamp": F.envelope_time(gw.timestamp_style, t_ms),
            "gateway": gw.name,
            "data": data,
        }

    def new_stream_id(self) -> str:
        r = self.rng.getrandbits(64)
        alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
        chars = []
        for _ in range(14):
            r, d = divmod(r, 36)
            chars.append(alphabet[d])
        return f"stream-{''.join(chars[:6])}-{''.join(chars[6:])}"

    # --- orchestrator choice -----------------------------------------------------------------------------
    def _free(self, o: Orchestrator, t: int) -> bool:
        o.active_until[:] = [end for end in o.active_until if end > t]
        return len(o.active_until) < o.capacity

    def choose(self, pipeline: str, t: int, exclude: Orchestrator | None = None) -> Orchestrator | None:
        candidates = [o for o in self.network.serving(pipeline) if o is not exclude and self._free(o, t)]
        if not candidates:
            return None
        return candidates[randbelow(self.rng, len(candidates))]

    # --- one session -------------------------------------------------------------------------------------
    def build(
        self,
        t0: int,
        stream_id: str,
        gw: Gateway,
        pipeline: str,
        allow_retry: bool = True,
        retry_of: Retry | None = None,
    ) -> tuple[list[Timed], Retry | None]:
        rng = self.rng
        truth = self.truth
        request_id = f"{rng.getrandbits(32):08x}"
        out: list[Timed] = []

        def add(t: int, kind: str, data: dict[str, Any]) -> None:
            out.append((t, self.event(gw, kind, t, data)))

        def add_trace(t: int, kind: str, address: str, url: str, runner: bool = False) -> None:
            stamp: int | float = round(t / 1000, 3) if runner else t
            add(t, "stream_trace", F.trace(stream_id, request_id, kind, stamp, address, url))

        truth.sessions += 1
        add_trace(t0, "gateway_receive_stream_request", "", "")
        orch = None if rng.random() < P_NO_CAPACITY else self.choose(pipeline, t0)
        if orch is None:
            add_trace(t0 + randint(rng, 15, 250), "gateway_no_orchestrators_available", "", "")
            truth.missing_capacity += 1
            retry = None
            if allow_retry and rng.random() < P_RETRY:
                retry = Retry(t0 + randint(rng, 2000, 8000), stream_id, gw, pipeline)
                if retry_of is not None:  # no orchestrator in between: the stream's last one stays
                    retry.previous, retry.reason = retry_of.previous, retry_of.reason
            out.sort(key=_first)
            return out, retry
        if retry_of is not None and retry_of.previous is not None and retry_of.previous is not orch:
            # the stream moved away from the orchestrator whose session failed
            before = truth.subject(retry_of.previous.address, pipeline)
            before.retry_swaps += 1
            before.swap_reasons[retry_of.reason] += 1
            truth.retry_swaps += 1

        target = TARGET_FPS[pipeline]
        length = int(min(40 * 60_000, max(20_000, rng.lognormvariate(math.log(150_000), 0.8))))
        t_end = t0 + length
        t_fi = t0 + randint(rng, 120, 600)
        first_address = "" if gw.empty_first_ingest_address else orch.signing_address
        add_trace(t_fi, "gateway_send_first_ingest_segment", first_address, orch.url)

        status_t = t0 + randint(rng, 400, 1500)
        start_time = status_t - randint(rng, 5, 50)
        metrics_t = t_fi + randint(rng, 5, 60)
        ingest = _IngestCounters(rng)
        reconnect_at = (
            t0 + randint(rng, 20_000, length) if rng.random() < P_RECONNECT and length > 20_000 else -1
        )
        manifest_id = f"{rng.getrandbits(32):08x}"
        restart_count = 0
        last_restart: int | None = None

        cur = orch
        first_segment = True
        runner_in = t_fi + randint(rng, 20, 150)
        failed_class = ""
        while True:
            subject = truth.subject(cur.address, pipeline)
            subject.segments += 1
            q = cur.quality
            cur.active_until.append(t_end)
            add_trace(runner_in, "runner_receive_first_ingest_segment", cur.signing_address, cur.url, True)
            startup = int(rng.lognormvariate(math.log(q.startup_ms), 0.35))
            runner_out = runner_in + startup
            out_t = runner_out + randint(rng, 40, 250)
            # ---- what ends this segment
            swap_to: Orchestrator | None = None
            swap_reason = ""
            if rng.random() < q.p_fail_start or out_t + 1000 >= t_end:
                if out_t + 1000 >= t_end:  # the user leaves before any output
                    seg_end, end_kind = t_end, "client"
                else:
                    seg_end, end_kind = runner_in + randint(rng, 300, max(301, startup)), "orchestrator"
                produced = False
            else:
                produced = True
                r = rng.random()
                room = t_end - out_t
                if r < q.p_swap and room > 12_000:
                    swap_to = self.choose(pipeline, out_t, exclude=cur)
                if swap_to is not None:
                    seg_end, end_kind = out_t + randint(rng, 5_000, room - 5_000), "swap"
                    swap_reason = F.SWAP_REASONS[randbelow(rng, len(F.SWAP_REASONS))]
                elif r < q.p_swap + q.p_fail_run and room > 4_000:
                    seg_end, end_kind = out_t + randint(rng, 2_000, room - 1_000), "orchestrator"
                elif r < q.p_swap + q.p_fail_run + P_NETWORK_ERROR and room > 4_000:
                    seg_end, end_kind = out_t + randint(rng, 2_000, room - 1_000), "network"
                elif r < q.p_swap + q.p_fail_run + P_NETWORK_ERROR + P_CLIENT_ERROR and room > 4_000:
                    seg_end, end_kind = out_t + randint(rng, 2_000, room - 1_000), "client"
                else:
                    seg_end, end_kind = t_end, "clean"
            # ---- lifecycle traces
            if produced:
                add_trace(
                    runner_out, "runner_send_first_processed_segment", cur.signing_address, cur.url, True
                )
                subject.reached_first_frame += 1
                subject.startup_ms.append(runner_out - runner_in)
                if first_segment:
                    add_trace(out_t, "gateway_receive_first_processed_segment", cur.signing_address, cur.url)
                    subject.p2ff_ms.append(out_t - t0)
                    subject.e2e_ms.append(out_t - t_fi)
                    few = out_t + randint(rng, 800, 3000)
                    if few < seg_end:
                        add_trace(few, "gateway_receive_few_processed_segments", cur.signing_address, cur.url)
                    if pipeline in HAS_DATA:
                        data_t = out_t + randint(rng, 100, 1500)
                        if data_t < seg_end:
                            add_trace(
                                data_t, "gateway_receive_first_data_segment", cur.signing_address, cur.url
                            )
                # runner restarts while streaming
                if rng.random() < q.p_restart and seg_end - out_t > 25_000:
                    restart_t = out_t + randint(rng, 10_000, seg_end - out_t - 10_000)
                    add_trace(restart_t, "runner_restart", cur.signing_address, cur.url, True)
                    subject.restarts += 1
                else:
                    restart_t = -1
                # payments
                pay_t = out_t + randint(rng, 2_000, 8_000)
                while pay_t < seg_end:
                    tickets = 1 + randbelow(rng, 2)
                    add(
                        pay_t,
                        "create_new_payment",
                        F.payment(gw, cur, request_id, f"{rng.getrandbits(32):08x}", manifest_id, tickets),
                    )
                    fee = tickets * cur.face_value_wei * Decimal(cur.win_prob)
                    subject.payments += 1
                    subject.fees_wei += fee
                    truth.fees_wei += fee
                    pay_t += randint(rng, 8_000, 20_000)
            else:
                restart_t = -1
            # ---- status samples of this segment (strictly before its end)
            fps_mean = target * q.fps_factor
            fps_sigma = target * q.fps_jitter
            while status_t < seg_end:
                if (
                    restart_t >= 0
                    and status_t >= restart_t
                    and (last_restart is None or last_restart < restart_t)
                ):
                    restart_count += 1
                    last_restart = restart_t
                if produced and status_t >= out_t:
                    fps = max(0.5, rng.gauss(fps_mean, fps_sigma))
                    subject.fps_sum += fps
                    subject.fps_count += 1
                    state = "ONLINE" if fps >= 0.5 * target else "DEGRADED_INFERENCE"
                    last_output: int | None = status_t - randint(rng, 1, 60)
                else:
                    fps = 0.0
                    subject.zero_fps_samples += 1
                    state = "LOADING"
                    last_output = None
                add(
                    status_t,
                    "ai_stream_status",
                    self._status(
                        stream_id,
                        request_id,
                        pipeline,
                        cur,
                        status_t,
                        start_time,
                        state,
                        fps,
                        last_output,
                        restart_count,
                        last_restart,
                        target,
                    ),
                )
                status_t += STATUS_EVERY_MS + randint(rng, -250, 250)
            if end_kind != "swap":
                break
            # ---- swap inside the same request_id
            add_trace(seg_end, "orchestrator_swap", cur.signing_address, cur.url)
            out[-1][1]["data"]["reason"] = swap_reason
            subject.swaps_in_session += 1
            subject.swap_reasons[swap_reason] += 1
            truth.swaps_in_session += 1
            assert swap_to is not None
            cur = swap_to
            first_segment = False
            runner_in = seg_end + randint(rng, 150, 800)
        # ---- end of the session: error event (if any) and the close trace
        subject = truth.subject(cur.address, pipeline)
        message = ""
        if end_kind == "clean":
            subject.ended_clean += 1
            t_close = seg_end
        else:
            failed_class = end_kind
            messages = F.ERROR_MESSAGES[end_kind]
            message = messages[randbelow(rng, len(messages))]
            add(
                seg_end,
                "ai_stream_events",
                {
                    "stream_id": stream_id,
                    "request_id": request_id,
                    "pipeline": pipeline,
                    "pipeline_id": "",
                    "capability": "",
                    "type": "error",
                    "message": message,
                },
            )
            subject.failures[end_kind] += 1
            truth.error_classes[end_kind] += 1
            t_close = seg_end + randint(rng, 20, 400)
        add_trace(t_close, "gateway_ingest_stream_closed", cur.signing_address, cur.url)
        # ---- ingest metrics of the whole session (gateway ↔ client connection)
        while metrics_t < t_close:
            if 0 <= reconnect_at <= metrics_t:
                ingest.reset()
                reconnect_at = -1
            ingest.advance(rng)
            add(
                metrics_t,
                "stream_ingest_metrics",
                ingest.data(stream_id, request_id, metrics_t, orch.rtt_ms, rng),
            )
            metrics_t += STATUS_EVERY_MS + randint(rng, -200, 200)
        retry = None
        if allow_retry and failed_class in ("orchestrator", "network") and rng.random() < P_RETRY:
            retry = Retry(
                t_close + randint(rng, 1000, 5000),
                stream_id,
                gw,
                pipeline,
                previous=cur,
                reason=F.ERROR_SWAP_REASON[message],
            )
        out.sort(key=_first)
        return out, retry

    def _status(
        self,
        stream_id: str,
        request_id: str,
        pipeline: str,
        o: Orchestrator,
        t: int,
        start_time: int,
        state: str,
        fps: float,
        last_output: int | None,
        restarts: int,
        last_restart: int | None,
        target: float,
    ) -> dict[str, Any]:
        rng = self.rng
        return {
            "stream_id": stream_id,
            "request_id": request_id,
            "pipeline": pipeline,
            "pipeline_id": "",
            "state": state,
            "start_time": start_time,
            "last_state_update_time": start_time + 700,
            "last_status_timestamp": t,
            "timestamp": t,
            "orchestrator_info": {"address": o.signing_address, "url": o.url},
            "inference_status": {
                "fps": fps,
                "last_output_time": last_output,
                "last_error": None,
                "last_error_time": None,
                "restart_count": restarts,
                "last_restart_time": last_restart,
                "last_restart_logs": None,
                "last_params_update_time": start_time + 300,
                "last_params_hash": "8c85e134607acd293c9efae72ce6ebe9",
                "last_params": {"width": 512, "height": 512, "prompt": "spiderman with a business suit"},
            },
            "input_status": {
                "fps": max(0.0, rng.gauss(target + 0.1, 0.3)),
                "last_input_time": t - randint(rng, 1, 40),
            },
        }


def _first(item: Timed) -> int:
    return item[0]


class _IngestCounters:
    """Cumulative WebRTC counters of one gateway ↔ client connection; a reconnect starts them again."""

    __slots__ = ("audio", "bytes_in", "bytes_out", "lost", "video")

    def __init__(self, rng: random.Random) -> None:
        self.bytes_in = self.bytes_out = self.video = self.audio = self.lost = 0

    def reset(self) -> None:
        self.bytes_in = self.bytes_out = self.video = self.audio = self.lost = 0

    def advance(self, rng: random.Random) -> None:
        self.bytes_in += randint(rng, 2_000_000, 3_500_000)
        self.bytes_out += randint(rng, 6_000, 9_000)
        self.video += randint(rng, 1_700, 1_900)
        self.audio += 500
        if rng.random() < 0.2:
            self.lost += randint(rng, 1, 12)

    def data(
        self, stream_id: str, request_id: str, t: int, rtt_ms: float, rng: random.Random
    ) -> dict[str, Any]:
        loss = 100 * self.lost / (self.video + self.lost) if self.video else 0
        rtt_ns = int(rtt_ms * rng.uniform(0.8, 1.3) * 1_000_000)
        quality = "good" if loss < 0.5 else ("fair" if loss < 2 else "poor")
        return {
            "stream_id": stream_id,
            "request_id": request_id,
            "pipeline_id": "",
            "timestamp": t,
            "stats": {
                "conn_quality": quality,
                "peer_conn_stats": {
                    "ID": "iceTransport",
                    "BytesReceived": self.bytes_in,
                    "BytesSent": self.bytes_out,
                },
                "track_stats": [
                    {
                        "type": "video",
                        "packets_received": self.video,
                        "packets_lost": self.lost,
                        "packet_loss_pct": loss,
                        "jitter": rng.uniform(2, 12),
                        "latency": 0,
                        "rtt": rtt_ns,
                        "last_input_ts": (t % 1_000_000) / 1000,
                        "last_output_ts": 0,
                    },
                    {
                        "type": "audio",
                        "packets_received": self.audio,
                        "packets_lost": 0,
                        "packet_loss_pct": 0,
                        "jitter": rng.uniform(10, 30),
                        "latency": 0,
                        "rtt": rtt_ns,
                        "last_input_ts": (t % 1_000_000) / 1000,
                        "last_output_ts": 0,
                    },
                ],
            },
        }
