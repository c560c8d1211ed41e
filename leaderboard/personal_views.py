"""The signed-in operator's pages: ``/me`` (why my score is what it is, my failed and swapped sessions with
their timelines, my place among the network's percentiles, my GPUs), alerts, private API tokens and exports.

Whose data a page shows is decided in one place, ``operator_of``: the signed-in address when it is an
orchestrator, else the orchestrator it holds a valid delegation from. Every read below takes that address;
nothing here accepts an orchestrator address from the request. CSRF: Django's middleware, never exempted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from leaderboard import alerts, figures, tokens
from leaderboard.signin_views import signed_in_identity
from sla import personal
from telemetry.access import eip712
from telemetry.access import services as access

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
        "live": live_summary(o),
        **delegation_context(op),
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


# ---------------------------------------------------------------------------------------------------------
# Live numbers: the same summary the ``orchestrator:<address>`` stream sends (leaderboard.views.live_snapshot)
# ---------------------------------------------------------------------------------------------------------


def live_summary(orchestrator: str) -> dict[str, Any] | None:
    """The busiest workflow's newest score and its numbers, named as the live deltas name them."""
    from leaderboard.views import LIVE_FIELDS, score_row
    from sla import queries as sla_queries

    latest = sla_queries.latest_scores_of(orchestrator, "1h") or sla_queries.latest_scores_of(
        orchestrator, "24h"
    )
    if not latest:
        return None
    best = max((score_row(s, None, None) for s in latest), key=lambda r: r["sessions"])
    return {
        "workflow": best["workflow"],
        "period": latest[0].period,
        **{f: best[f] for f in LIVE_FIELDS if f != "rank"},
    }


# ---------------------------------------------------------------------------------------------------------
# Delegations: the page builds nothing itself; it asks for the typed data, the wallet signs it, and the
# access service verifies and stores it. Only the signed-in on-chain orchestrator (not one of its delegates)
# may authorise or revoke delegates, and only for itself: the orchestrator never comes from the request.
# ---------------------------------------------------------------------------------------------------------

DELEGATIONS_SHOWN = 100
AUDIT_SHOWN = 100


def _can_delegate(op: Operator) -> bool:
    return bool(op.orchestrator) and not op.via_delegation and op.address == op.orchestrator


def delegation_context(op: Operator) -> dict[str, Any]:
    from telemetry.queries import audit_for

    at = now()
    today = at.astimezone(UTC).date()
    return {
        "can_delegate": _can_delegate(op),
        "delegations": access.delegation_views(op.orchestrator, at, DELEGATIONS_SHOWN),
        "audit": audit_for(op.orchestrator, AUDIT_SHOWN),
        "access_chain_id": settings.NAAP_ACCESS_CHAIN_ID,
        "until_min": today.isoformat(),
        "until_max": (today + timedelta(days=settings.NAAP_ACCESS_MAX_DELEGATION_DAYS - 1)).isoformat(),
        "until_default": (today + timedelta(days=30)).isoformat(),
    }


def _json_refusal(reason: str, detail: str, status: int) -> JsonResponse:
    return JsonResponse({"ok": False, "reason": reason, "detail": detail}, status=status)


def _delegating_operator(request: HttpRequest) -> Operator | JsonResponse:
    op = operator_of(request)
    if op is None:
        return _json_refusal("signed_out", "sign in with your orchestrator's wallet first", 401)
    if not _can_delegate(op):
        return _json_refusal(
            "not_orchestrator",
            "only the orchestrator's own on-chain address, signed in, can authorise or revoke its delegates"
            + (f"; you are signed in as {op.address}, a delegate" if op.via_delegation else ""),
            403,
        )
    return op


def valid_until_of(day: str) -> int:
    """A chosen date means "until the end of that day, UTC": the next midnight, in seconds since the epoch."""
    parsed = date.fromisoformat(day)
    return int(datetime.combine(parsed + timedelta(days=1), time(0), tzinfo=UTC).timestamp())


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@require_GET
@never_cache
def delegation_typed_data(request: HttpRequest) -> JsonResponse:
    """The EIP-712 Delegation the wallet is asked to sign (this service's domain, chain id and a fresh nonce)."""
    op = _delegating_operator(request)
    if isinstance(op, JsonResponse):
        return op
    try:
        valid_until = valid_until_of(request.GET.get("until", ""))
    except ValueError:
        return _json_refusal(access.BAD_VALUE, "choose the last day of the delegation (YYYY-MM-DD)", 400)
    try:
        statement = access.prepare_delegation(
            request.GET.get("delegate", ""), op.orchestrator, valid_until, now()
        )
    except access.DelegationRefused as refused:
        return _json_refusal(refused.reason, refused.detail, 400)
    return JsonResponse(
        {"ok": True, "orchestrator": op.orchestrator, "typedData": eip712.delegation_typed_data(statement)}
    )


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(value)
    return int(value)


@require_POST
@never_cache
def delegation_submit(request: HttpRequest) -> JsonResponse:
    """Store a signed delegation through the access service; the orchestrator is the signed-in one."""
    op = _delegating_operator(request)
    if isinstance(op, JsonResponse):
        return op
    body = _json_body(request)
    try:
        if body is None:
            raise ValueError("body")
        signed = access.SignedDelegation(
            delegate=str(body["delegate"]),
            orchestrator=op.orchestrator,
            valid_until=_int(body["validUntil"]),
            nonce=_int(body["nonce"]),
            chain_id=_int(body["chainId"]),
            signature=str(body["signature"]),
        )
    except (KeyError, ValueError):
        return _json_refusal(
            access.BAD_VALUE, "send delegate, validUntil, nonce, chainId and signature as JSON", 400
        )
    try:
        stored = access.submit_delegation(signed, now())
    except access.DelegationRefused as refused:
        return _json_refusal(refused.reason, refused.detail, 400)
    row = access.delegation_view(stored, now())
    request.session[FLASH_KEY] = (
        f"Delegation stored: {row.delegate} may publish for you until {row.valid_until:%Y-%m-%d %H:%M} UTC."
    )
    return JsonResponse(
        {
            "ok": True,
            "id": row.id,
            "delegate": row.delegate,
            "orchestrator": stored.orchestrator,
            "validUntil": signed.valid_until,
            "nonce": row.nonce,
            "signer": row.signer,
            "state": row.state,
        },
        status=201,
    )


def _own_delegation(op: Operator, delegation_id: int) -> Any:
    found = access.delegation_of(op.orchestrator, delegation_id)
    if found is None:
        raise Http404("no such delegation of yours")
    return found


@require_GET
@never_cache
def delegation_revocation_typed_data(request: HttpRequest, delegation_id: int) -> JsonResponse:
    """The EIP-712 DelegationRevocation of one of my delegations, for the wallet to sign."""
    op = _delegating_operator(request)
    if isinstance(op, JsonResponse):
        return op
    d = _own_delegation(op, delegation_id)
    if d.revoked_at is not None:
        return _json_refusal(access.REVOKED, f"delegation {delegation_id} was already revoked", 400)
    statement = eip712.DelegationStatement(d.delegate, d.orchestrator, 0, int(d.nonce), d.chain_id)
    return JsonResponse({"ok": True, "typedData": eip712.revocation_typed_data(statement)})


@require_POST
@never_cache
def delegation_revoke(request: HttpRequest, delegation_id: int) -> JsonResponse:
    """Revoke one of my delegations with my signed revocation (the access service checks the signer)."""
    op = _delegating_operator(request)
    if isinstance(op, JsonResponse):
        return op
    d = _own_delegation(op, delegation_id)
    body = _json_body(request)
    signature = body.get("signature") if body else None
    if not isinstance(signature, str) or not signature:
        return _json_refusal(access.BAD_SIGNATURE, "a revocation needs your signature", 400)
    try:
        revoked = access.revoke_delegation(d.id, now(), signature=signature)
    except access.DelegationRefused as refused:
        return _json_refusal(refused.reason, refused.detail, 400)
    request.session[FLASH_KEY] = f"Delegation of {revoked.delegate} revoked."
    return JsonResponse({"ok": True, "id": revoked.id, "revokedBy": revoked.revoked_by})
