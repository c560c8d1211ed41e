"""Scoring version 1 of METRICS.md, as data. The migration that seeds it holds a frozen copy; a test keeps
the two equal. ``sla.scores.active_config`` re-creates it when the table is empty (a flushed database)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

VERSION_1: dict[str, Any] = {
    "version": 1,
    "active": True,
    "weights": {"latency": 0.3, "reliability": 0.4, "performance": 0.3},
    "thresholds": {"latency_zero_multiple": 3.0, "jitter_free": 0.1, "jitter_span": 0.4},
    "default_targets": {"fps": 20.0, "p2ff_ms": 3000.0},
    "workflow_targets": {
        "streamdiffusion": {"fps": 20.0, "p2ff_ms": 3000.0},
        "streamdiffusion-sdxl": {"fps": 15.0, "p2ff_ms": 4000.0},
        "streamdiffusion-sdxl-faceid": {"fps": 15.0, "p2ff_ms": 5000.0},
        "comfyui": {"fps": 15.0, "p2ff_ms": 5000.0},
    },
    "min_sessions": 5,
    "note": "METRICS.md scoring version 1",
    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
}
