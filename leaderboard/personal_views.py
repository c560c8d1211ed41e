"""The signed-in operator's pages: ``/me`` (why my score is what it is, my failed and swapped sessions with
their timelines, my place among the network's percentiles, my GPUs), alerts, private API tokens and exports.

Whose data a page shows is decided in one place, ``operator_of``: the signed-in address when it is an
orchestrator, else the orchestrator it holds a valid delegation from. Every read below takes that address;
nothing here accepts an orchestrator address from the request. CSRF: Django's middleware, never exempted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from leaderboard import alerts, figures, tokens
from leaderboard.signin_views import signed_in_identity
from sla import personal

NEW_TOKEN_KEY = "me_new_token"  # noqa: S105 - a session key name
FLASH_KEY = "me_flash"
PROBLEMS_SHOWN = 25


def now() -> datetime:
    """The clock of the personal pages (tests replace it)."""
    return timezone.now()


@dataclass(frozen=True)
class Operator:
    address: str  # who signed in (lower-case)
    orchestrator: str  # whose data the pages show ("" when none)
    via_delegation: bool


def orchestrator_for(address: str, is_orchestrator: bool, at: datetime) -> tuple[str, bool]:
    """(orchestrator address, whether through a delegation); ("", False) for someone with no standing.

    A hot signing address that holds a valid delegation from an on-chain orchestrator sees that
    orchestrator's pages (``telemetry.queries.orchestrator_for_delegate``).
    """
    if is_orchestrator:
        return address, False
    from telemetry.queries import orchestrator_for_delegate

    delegator = orchestrator_for_delegate(address, at)
    return (delegator.lower(), True) if delegator else ("", False)


def operator_of(request: HttpRequest) -> Operator | None:
    identity = signed_in_identity(request)
    if identity is None or not isinstance(identity.get("address"), str):
        return None
    address = str(identity["address"]).lower()
    orchestrator, delegated = orchestrator_for(address, bool(identity.get("is_orchestrator")), now())
    return Operator(address, orchestrator, delegated)


def _login_redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect(f"{reverse('signin-page')}?next={reverse('me')}")


def _refused(request: HttpRequest, op: Operator) -> HttpResponse:
    return render(request, "leaderboard/me_refused.html", {"op": op, "nav": "me"}, status=403)


def _window(request: HttpRequest) -> str:
    name = request.GET.get("window", "24h")
    return name if name in personal.WINDOWS else "24h"


# ---------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------


def _figures(orchestrator: str, window: personal.Window) -> dict[str, figures.Figure]:
    buckets = personal.metric_buckets(orchestrator, window.interval, window.start, window.end, ("pipeline",))
    by_workflow: dict[str, list[personal.MetricBucket]] = {}
    for b in buckets:
        by_workflow.setdefault(b.pipeline, []).append(b)

    def lines(fn: Any) -> list[tuple[str, list[figures.Point]]]:
        return [(wf, [(b.bucket, fn(b)) for b in pts]) for wf, pts in sorted(by_workflow.items())]

    period = personal.SCORE_PERIOD[window.name]
    history: dict[str, list[figures.Point]] = {}
    for s in personal.score_history(orchestrator, period, window.start, window.end):
        history.setdefault(s.workflow, []).append((s.window_end, s.score))
    return {
        "fig-me-score": figures.time_series(
            f"My SLA score ({period} windows)", "score (0–100)", sorted(history.items())
        ),
        "fig-me-fps": figures.time_series(
            "My output FPS", "fps", lines(lambda b: b.perf.output_fps if b.perf else None), "fps"
        ),
        "fig-me-p2ff": figures.time_series(
            "My prompt-to-first-frame p95", "ms", lines(lambda b: b.rel.p2ff_ms.p95 if b.rel else None), "ms"
        ),
        "fig-me-success": figures.time_series(
            "My effective success",
            "ratio",
            lines(lambda b: b.rel.effective_success.value if b.rel else None),
        ),
    }


def page_context(op: Operator, window_name: str) -> dict[str, Any]:
    """Everything ``/me`` shows, for one operator and window."""
    from leaderboard.consumers import orchestrator_stream

    o = op.orchestrator
    window = personal.window_for(window_name, now())
    problem_total, problems = personal.problem_segments(o, window.start, window.end, PROBLEMS_SHOWN)
    session_total, _ = personal.segments(o, window.start, window.end, limit=0)
    figs = _figures(o, window)
    return {
        "nav": "me",
        "op": op,
        "window": window,
        "windows": list(personal.WINDOWS),
        "score_period": personal.SCORE_PERIOD[window.name],
        "explanations": personal.score_explanations(o, personal.SCORE_PERIOD[window.name]),
        "problems": [(row, personal.timeline(o, row)) for row in problems],
        "problem_total": problem_total,
        "session_total": session_total,
        "comparisons": personal.network_comparison(o, window.start, window.end),
        "gpus": personal.gpu_breakdown(o, window.start, window.end),
        "alerts": alerts.alerts_of(o),
        "alert_metrics": alerts.METRICS,
        "alert_periods": alerts.PERIODS,
        "deliveries": alerts.deliveries_of(o),
        "tokens": tokens.tokens_of(o),
        "figures": figs,
        "figure_ids": list(figs),
        "live_streams": [orchestrator_stream(o)],
    }


def _render_page(request: HttpRequest, op: Operator, status: int = 200, **extra: Any) -> HttpResponse:
    context = page_context(op, _window(request))
    context["new_token"] = request.session.pop(NEW_TOKEN_KEY, None)
    context["flash"] = request.session.pop(FLASH_KEY, None)
    context.update(extra)
    return render(request, "leaderboard/me.html", context, status=status)


@require_GET
@never_cache
def me(request: HttpRequest) -> HttpResponse:
    op = operator_of(request)
    if op is None:
        return _login_redirect(request)
    if not op.orchestrator:
        return _refused(request, op)
    return _render_page(request, op)


def _operator_or_response(request: HttpRequest) -> Operator | HttpResponse:
    op = operator_of(request)
    if op is None:
        return _login_redirect(request)
    if not op.orchestrator:
        return _refused(request, op)
    return op


def _back(fragment: str) -> HttpResponse:
    response = HttpResponseRedirect(f"{reverse('me')}#{fragment}")
    response.status_code = 303
    return response


# ---------------------------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------------------------


@require_POST
def alert_create(request: HttpRequest) -> HttpResponse:
    op = _operator_or_response(request)
    if isinstance(op, HttpResponse):
        return op
    try:
        spec = alerts.parse_alert(request.POST.dict())
        alerts.create_alert(op.orchestrator, op.address, spec)
    except alerts.AlertError as err:
        return _render_page(request, op, status=400, alert_error=str(err), alert_form=request.POST.dict())
    request.session[FLASH_KEY] = "Alert saved."
    return _back("alerts")


def _own_alert(op: Operator, alert_id: int) -> Any:
    alert = alerts.alert_of(op.orchestrator, alert_id)
    if alert is None:
        raise Http404("no such alert")
    return alert


@require_POST
def alert_test(request: HttpRequest, alert_id: int) -> HttpResponse:
    op = _operator_or_response(request)
    if isinstance(op, HttpResponse):
        return op
    made = alerts.send_test(_own_alert(op, alert_id))
    request.session[FLASH_KEY] = f"Test sent on {len(made)} channel(s): see the delivery log."
    return _back("deliveries")


@require_POST
def alert_delete(request: HttpRequest, alert_id: int) -> HttpResponse:
    op = _operator_or_response(request)
    if isinstance(op, HttpResponse):
        return op
    _own_alert(op, alert_id).delete()
    request.session[FLASH_KEY] = "Alert deleted."
    return _back("alerts")


# ---------------------------------------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------------------------------------


@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    op = _operator_or_response(request)
    if isinstance(op, HttpResponse):
        return op
    try:
        new = tokens.create_token(op.orchestrator, op.address, request.POST.get("name", ""))
    except tokens.TokenError as err:
        return _render_page(request, op, status=400, token_error=str(err))
    # Shown once: kept in the session only until the next page view pops it.
    request.session[NEW_TOKEN_KEY] = {"name": new.token.name, "secret": new.secret}
    return _back("tokens")


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    op = _operator_or_response(request)
    if isinstance(op, HttpResponse):
        return op
    if not tokens.revoke_token(op.orchestrator, token_id):
        raise Http404("no such active token")
    request.session[FLASH_KEY] = "Token revoked: requests with it now get 401."
    return _back("tokens")
