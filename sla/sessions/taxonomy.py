"""Swap reasons (METRICS.md "Reliability"): map a swap trace's detail or the error before a swap onto
timeout | model_error | runner_disconnect | capacity | gateway_reset | orchestrator_reset | unknown."""

from __future__ import annotations

SWAP_REASONS = (
    "timeout",
    "model_error",
    "runner_disconnect",
    "capacity",
    "gateway_reset",
    "orchestrator_reset",
    "unknown",
)

# First match wins; checked against the lower-cased text. Order matters: "no orchestrators available" is
# capacity even though it names the orchestrator, and a gateway restart is not an orchestrator restart.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("gateway_reset", ("gateway restart", "gateway reset", "gateway shutdown", "gateway_reset")),
    (
        "orchestrator_reset",
        ("orchestrator restart", "orchestrator reset", "orchestrator shutdown", "orchestrator_reset"),
    ),
    (
        "capacity",
        (
            "capacity",
            "no orchestrators",
            "insufficient",
            "too many",
            "busy",
            "max sessions",
            "no slots",
            "overloaded",
        ),
    ),
    ("timeout", ("timeout", "timed out", "deadline exceeded", "no output", "stalled", "not responding")),
    (
        "runner_disconnect",
        (
            "runner_disconnect",
            "disconnect",
            "connection reset",
            "connection refused",
            "broken pipe",
            "eof",
            "websocket",
            "control channel",
            "stream closed",
        ),
    ),
    (
        "model_error",
        (
            "model",
            "inference",
            "pipeline",
            "cuda",
            "out of memory",
            "oom",
            "runner error",
            "crash",
            "panic",
            "segfault",
            "restart limit",
            "restart failed",
            "exceeded max",
        ),
    ),
)


def swap_reason(*texts: str) -> str:
    """The reason of the first text (in the order given) that matches a rule; "unknown" otherwise.

    A text that is already a taxonomy value (a NaaP v1 ``gateway.swap`` reason) is taken as is.
    """
    for text in texts:
        lowered = text.strip().lower()
        if not lowered:
            continue
        if lowered in SWAP_REASONS:
            return lowered
        for reason, needles in _RULES:
            if any(n in lowered for n in needles):
                return reason
    return "unknown"
