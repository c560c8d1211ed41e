from __future__ import annotations


class Rejection(Exception):
    """An event that cannot be accepted. ``reason`` is one of ``telemetry.contracts.reasons``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
