"""Fixtures for page, embed and live tests: stored scores built with explicit times, a clean live registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings

from leaderboard.tasks import _redis
from sla.scoring_models import Score
from tests.conftest import ANCHOR

WORKFLOW = "streamdiffusion-sdxl"


def address(n: int) -> str:
    return "0x" + f"{n:040x}"


@pytest.fixture
def make_score() -> Callable[..., Score]:
    def make(
        orchestrator: str,
        score: float | None,
        *,
        workflow: str = WORKFLOW,
        window: str = "24h",
        window_end: datetime = ANCHOR,
        sessions: int = 20,
        started: int = 20,
        effective_ok: int = 19,
        swaps: int = 1,
        streams: int = 20,
        p2ff_p95_ms: float | None = 1500.0,
        fps: float | None = 24.0,
        jitter: float | None = 0.05,
        sufficient: bool = True,
        version: int = 1,
        subscores: tuple[float, float, float] = (90.0, 80.0, 70.0),
    ) -> Score:
        inputs: dict[str, Any] = {
            "sessions": sessions,
            "started": started,
            "effective_ok": effective_ok,
            "swaps": swaps,
            "streams": streams,
            "p2ff_p95_ms": p2ff_p95_ms,
            "output_fps_mean": fps,
            "jitter_mean": jitter,
        }
        length = timedelta(hours=24) if window == "24h" else timedelta(hours=1)
        return Score.objects.create(
            orchestrator=orchestrator,
            workflow=workflow,
            window=window,
            window_start=window_end - length,
            window_end=window_end,
            version=version,
            score=score,
            latency=subscores[0],
            reliability=subscores[1],
            performance=subscores[2],
            sufficient=sufficient,
            sessions=sessions,
            inputs=inputs,
            computed_at=window_end,
        )

    return make


@pytest.fixture(autouse=True)
def _clean_live_registry() -> Iterator[None]:
    """Live subscriptions and snapshots live in Redis under this process's test prefix: start empty."""

    def wipe() -> None:
        client = _redis()
        prefix = settings.CACHES["default"]["KEY_PREFIX"]
        keys = list(client.scan_iter(f"{prefix}:live:*"))
        if keys:
            client.delete(*keys)

    wipe()
    yield
    wipe()
