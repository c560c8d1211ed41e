"""Ground truth of a simulated run, defined as ``/work/shared/METRICS.md`` defines each metric.

Subjects are orchestrator *segments* (session × orchestrator): a swap inside one ``request_id`` ends the
segment of the orchestrator swapped away from (the swap is charged to it) and starts one for the next.

Per on-chain orchestrator address × workflow (pipeline):

* ``segments`` — orchestrator segments attributed to it.
* ``reached_first_frame`` — segments that produced output (the gateway's first processed segment for the
  first segment of a session; fps > 0 for a segment after a swap).
* ``ended_clean`` — segments that ended with ``gateway_ingest_stream_closed`` and no error.
* ``failures`` — segments ended by an ``ai_stream_events`` error, by class (orchestrator, network, client).
* ``swaps_charged`` / ``swap_reasons`` — swaps away from it: ``swaps_in_session`` (segments ended by an
  ``orchestrator_swap`` away from it) plus ``retry_swaps`` (failed sessions whose retry — the stream's next
  session served by anyone — was served by another orchestrator; METRICS.md counts a change of
  orchestrator between consecutive sessions of a stream as a swap). A retry swap's reason is its error's.
* ``ended`` — segments that ended: clean, failed (a retry swap's segment already counts as a failure) or
  swapped away inside the session.
* ``fps_mean`` — mean ``inference_status.fps`` over performance samples (from the segment's first output to
  its end; samples before first output carry fps 0 and are excluded).
* ``p2ff_ms`` — first_frame − request; ``e2e_ms`` — first_frame − first_ingest (first segment of a session);
  ``startup_ms`` — runner_out − runner_in (every segment that produced output; runner clocks in seconds).
* ``fees_wei`` — Σ numTickets × faceValue × winProb of ``create_new_payment`` (exact decimal).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def wei_text(amount: Decimal) -> str:
    """An exact decimal amount of wei without exponent or trailing zeros."""
    text = format(amount.normalize(), "f")
    return text if text != "-0" else "0"


def percentile(values: list[int], q: float) -> int | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class SubjectTruth:
    segments: int = 0
    reached_first_frame: int = 0
    ended_clean: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    swaps_in_session: int = 0
    retry_swaps: int = 0
    swap_reasons: Counter[str] = field(default_factory=Counter)
    restarts: int = 0
    fps_sum: float = 0.0
    fps_count: int = 0
    zero_fps_samples: int = 0
    p2ff_ms: list[int] = field(default_factory=list)
    startup_ms: list[int] = field(default_factory=list)
    e2e_ms: list[int] = field(default_factory=list)
    payments: int = 0
    fees_wei: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        def stats(values: list[int]) -> dict[str, Any]:
            return {
                "count": len(values),
                "p50": percentile(values, 50),
                "p95": percentile(values, 95),
                "mean": round(sum(values) / len(values), 3) if values else None,
                "values": sorted(values),
            }

        return {
            "segments": self.segments,
            "reached_first_frame": self.reached_first_frame,
            "ended": self.ended_clean + sum(self.failures.values()) + self.swaps_in_session,
            "ended_clean": self.ended_clean,
            "failures": {k: self.failures.get(k, 0) for k in ("orchestrator", "network", "client")},
            "swaps_charged": self.swaps_in_session + self.retry_swaps,
            "swaps_in_session": self.swaps_in_session,
            "retry_swaps": self.retry_swaps,
            "swap_reasons": dict(sorted(self.swap_reasons.items())),
            "restarts": self.restarts,
            "fps_samples": self.fps_count,
            "fps_sum": self.fps_sum,
            "fps_mean": self.fps_sum / self.fps_count if self.fps_count else None,
            "zero_fps_samples_before_output": self.zero_fps_samples,
            "p2ff_ms": stats(self.p2ff_ms),
            "startup_ms": stats(self.startup_ms),
            "e2e_ms": stats(self.e2e_ms),
            "payments": self.payments,
            "fees_wei": wei_text(self.fees_wei),
        }


@dataclass(slots=True)
class Truth:
    subjects: dict[tuple[str, str], SubjectTruth] = field(default_factory=dict)
    streams: int = 0
    sessions: int = 0
    missing_capacity: int = 0
    swaps_in_session: int = 0
    retry_swaps: int = 0
    fees_wei: Decimal = Decimal(0)
    events_by_type: Counter[str] = field(default_factory=Counter)
    trace_types: Counter[str] = field(default_factory=Counter)
    error_classes: Counter[str] = field(default_factory=Counter)
    duplicates_delivered: int = 0
    late_events: int = 0
    hours_late_events: int = 0
    lines: int = 0

    def subject(self, address: str, pipeline: str) -> SubjectTruth:
        key = (address, pipeline)
        found = self.subjects.get(key)
        if found is None:
            found = self.subjects[key] = SubjectTruth()
        return found

    def as_dict(self, header: dict[str, Any]) -> dict[str, Any]:
        return {
            **header,
            "definitions": "telemetry/simulator/truth.py (METRICS.md definition version 1)",
            "network": {
                "streams": self.streams,
                "sessions": self.sessions,
                "missing_capacity": self.missing_capacity,
                "swaps": self.swaps_in_session + self.retry_swaps,
                "swaps_in_session": self.swaps_in_session,
                "retry_swaps": self.retry_swaps,
                "fees_wei": wei_text(self.fees_wei),
            },
            "delivery": {
                "lines": self.lines,
                "unique_events": sum(self.events_by_type.values()),
                "duplicates_delivered": self.duplicates_delivered,
                "late_events": self.late_events,
                "hours_late_events": self.hours_late_events,
                "events_by_type": dict(sorted(self.events_by_type.items())),
                "trace_types": dict(sorted(self.trace_types.items())),
                "error_classes": dict(sorted(self.error_classes.items())),
            },
            "subjects": [
                {"orchestrator": address, "pipeline": pipeline, **subject.as_dict()}
                for (address, pipeline), subject in sorted(self.subjects.items())
            ],
        }
