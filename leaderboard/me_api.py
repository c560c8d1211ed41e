"""``/v1/me/...``: an orchestrator's own detailed data, read with a private token
(``Authorization: Bearer naap_…``). The token alone decides whose data is read; a revoked or unknown token
gets 401. Responses are private (never cached by a shared cache)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.security import HttpBearer
from pydantic import Field

from leaderboard import personal_views, tokens
from leaderboard.models import ApiToken
from sla import personal

Window = Literal["1h", "24h", "7d"]


class TokenAuth(HttpBearer):
    openapi_description = "A private API token created on the /me page (shown once when created)."

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return tokens.authenticate(token)


router = Router(tags=["me"], auth=TokenAuth())


class Page(Schema):
    window: Window = "24h"
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class WindowOut(Schema):
    name: str
    start: datetime
    end: datetime


class SessionOut(Schema):
    stream_id: str
    request_id: str
    segment: int
    gateway: str
    pipeline: str
    region: str
    gpu_id: str
    gpu_type: str
    request_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str
    reason: str
    swapped_away: bool
    swap_reason: str
    error_class: str
    error_message: str
    p2ff_ms: float | None
    startup_ms: float | None
    e2e_ms: float | None
    output_fps_mean: float | None
    restarts: int


class SessionsOut(Schema):
    orchestrator: str
    window: WindowOut
    total: int
    sessions: list[SessionOut]


class ErrorOut(Schema):
    stream_id: str
    request_id: str
    segment: int
    pipeline: str
    at: datetime | None
    outcome: str
    error_class: str
    error_message: str


class ErrorsOut(Schema):
    orchestrator: str
    window: WindowOut
    total: int
    errors: list[ErrorOut]


class ScoreOut(Schema):
    workflow: str
    period: str
    window_start: datetime
    window_end: datetime
    version: int
    score: float | None
    latency: float | None
    reliability: float | None
    performance: float | None
    sufficient: bool
    sessions: int
    inputs: dict[str, Any]


class ScoresOut(Schema):
    orchestrator: str
    window: WindowOut
    scores: list[ScoreOut]


def _owner(request: HttpRequest) -> str:
    token = request.auth  # type: ignore[attr-defined]
    assert isinstance(token, ApiToken)
    return token.orchestrator


def _window(name: str) -> personal.Window:
    return personal.window_for(name, personal_views.now())


def _window_out(w: personal.Window) -> dict[str, Any]:
    return {"name": w.name, "start": w.start, "end": w.end}


def _private(response: HttpResponse) -> None:
    response["Cache-Control"] = "private, no-store"


def _session(r: personal.SegmentRow) -> dict[str, Any]:
    return {
        "stream_id": r.stream_id,
        "request_id": r.request_id,
        "segment": r.ordinal,
        "gateway": r.gateway,
        "pipeline": r.pipeline,
        "region": r.region,
        "gpu_id": r.gpu_id,
        "gpu_type": r.gpu_type,
        "request_at": r.request_at,
        "started_at": r.started_at,
        "ended_at": r.ended_at,
        "outcome": r.outcome,
        "reason": r.reason,
        "swapped_away": r.swapped_away,
        "swap_reason": r.swap_reason,
        "error_class": r.error_class,
        "error_message": r.error_message,
        "p2ff_ms": r.p2ff_ms,
        "startup_ms": r.startup_ms,
        "e2e_ms": r.e2e_ms,
        "output_fps_mean": r.fps_mean,
        "restarts": r.restart_count,
    }


@router.get("/sessions", response=SessionsOut, summary="My sessions (segments I served), newest first")
def my_sessions(request: HttpRequest, response: HttpResponse, q: Query[Page]) -> dict[str, Any]:
    _private(response)
    owner, window = _owner(request), _window(q.window)
    total, rows = personal.segments(owner, window.start, window.end, q.limit, q.offset)
    return {
        "orchestrator": owner,
        "window": _window_out(window),
        "total": total,
        "sessions": [_session(r) for r in rows],
    }


@router.get("/errors", response=ErrorsOut, summary="My failed or errored sessions, newest first")
def my_errors(request: HttpRequest, response: HttpResponse, q: Query[Page]) -> dict[str, Any]:
    _private(response)
    owner, window = _owner(request), _window(q.window)
    total, rows = personal.error_segments(owner, window.start, window.end, q.limit, q.offset)
    errors = [
        {
            "stream_id": r.stream_id,
            "request_id": r.request_id,
            "segment": r.ordinal,
            "pipeline": r.pipeline,
            "at": r.ended_at or r.request_at,
            "outcome": r.outcome,
            "error_class": r.error_class,
            "error_message": r.error_message,
        }
        for r in rows
    ]
    return {"orchestrator": owner, "window": _window_out(window), "total": total, "errors": errors}


class ScoreQuery(Schema):
    window: Window = "24h"


@router.get("/scores", response=ScoresOut, summary="My stored scores with their inputs, oldest first")
def my_scores(request: HttpRequest, response: HttpResponse, q: Query[ScoreQuery]) -> dict[str, Any]:
    _private(response)
    owner, window = _owner(request), _window(q.window)
    scores = [
        {
            "workflow": s.workflow,
            "period": s.period,
            "window_start": s.window_start,
            "window_end": s.window_end,
            "version": s.version,
            "score": s.score,
            "latency": s.latency,
            "reliability": s.reliability,
            "performance": s.performance,
            "sufficient": s.sufficient,
            "sessions": s.sessions,
            "inputs": s.inputs,
        }
        for s in personal.scores_in(owner, window.start, window.end)
    ]
    return {"orchestrator": owner, "window": _window_out(window), "scores": scores}
