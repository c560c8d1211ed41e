"""Operator alerts: thresholds on an orchestrator's own score, success, FPS or P2FF for one workflow.

An alert is a two-state machine (ok → firing → ok). Evaluation after each score run reads the newest
stored score of the alert's workflow and window; a delivery is created only when the state changes, so
an alert fires once per crossing however often it is re-evaluated. Deliveries go out through Celery
(``leaderboard.tasks``): a webhook POST whose JSON body is signed with HMAC-SHA256 of the alert's
secret, and/or an e-mail.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from leaderboard.models import AlertDelivery, PersonalAlert
from sla import queries as sla_queries

METRICS: dict[str, dict[str, Any]] = {
    "score": {"label": "SLA score", "unit": "0–100", "below": True},
    "success": {"label": "Effective success", "unit": "%", "below": True},
    "fps": {"label": "Output FPS", "unit": "fps", "below": True},
    "p2ff_ms": {"label": "P2FF p95", "unit": "ms", "below": False},
}
PERIODS = ("1h", "24h")
MAX_ALERTS = 50
SIGNATURE_HEADER = "X-NaaP-Signature"
WEBHOOK_TIMEOUT_S = 5.0


class AlertError(ValueError):
    """An alert definition that cannot be saved; the message is shown to the operator."""


# --- the state machine (pure) ----------------------------------------------------------------------------


def breached(metric: str, value: float, threshold: float) -> bool:
    """Score, success and FPS alert when below the threshold; P2FF when above it."""
    return value < threshold if METRICS[metric]["below"] else value > threshold


def transition(state: str, metric: str, value: float | None, threshold: float) -> tuple[str, str | None]:
    """(new state, event to deliver or None). No value (no sufficient score yet) changes nothing."""
    if value is None:
        return state, None
    if breached(metric, value, threshold):
        return ("firing", "firing") if state == "ok" else (state, None)
    return ("ok", "resolved") if state == "firing" else (state, None)


def metric_value(metric: str, stored: sla_queries.StoredScore) -> float | None:
    """The alert's metric read from one stored score (its inputs are the window's measured values)."""
    inputs = stored.inputs

    def number(key: str) -> float | None:
        v = inputs.get(key)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    if metric == "score":
        return stored.score if stored.sufficient else None
    if metric == "success":
        started, ok = number("started"), number("effective_ok")
        return 100.0 * ok / started if started and ok is not None else None
    if metric == "fps":
        return number("output_fps_mean")
    return number("p2ff_p95_ms")


# --- definitions -----------------------------------------------------------------------------------------


def _check_webhook(url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertError("the webhook must be an http:// or https:// URL")
    if len(url) > 500:
        raise AlertError("the webhook URL is too long (500 characters at most)")
    return url


class WebhookRefused(Exception):
    """A webhook target we will not connect to; the message goes to the delivery log."""


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def resolve_webhook_host(host: str, port: int, *, allow_private: bool) -> str:
    """Resolve ``host`` once and return the address to connect to.

    Every address the name resolves to must be public unless ``allow_private``; the caller connects to the
    returned address itself (never resolving the name again), so a DNS answer that changes between the
    check and the connection (rebinding) cannot reach an internal service.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host!r}: {exc}") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise WebhookRefused(f"cannot resolve {host!r}")
    if not allow_private and any(_is_internal(a) for a in addresses):
        raise WebhookRefused("refused: the webhook resolves to a private or loopback address")
    return str(addresses[0])


@dataclass(frozen=True)
class AlertInput:
    name: str
    metric: str
    workflow: str
    period: str
    threshold: float
    webhook_url: str
    email: str


def parse_alert(data: dict[str, Any]) -> AlertInput:
    """Validate a submitted alert form; raises ``AlertError`` naming the field."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    name = str(data.get("name", "")).strip()
    if not name or len(name) > 80:
        raise AlertError("name: 1 to 80 characters")
    metric = str(data.get("metric", ""))
    if metric not in METRICS:
        raise AlertError(f"metric: one of {', '.join(METRICS)}")
    workflow = str(data.get("workflow", "")).strip()
    if not workflow or len(workflow) > 120:
        raise AlertError("workflow: required (the pipeline the alert watches)")
    period = str(data.get("period", "1h"))
    if period not in PERIODS:
        raise AlertError(f"period: one of {', '.join(PERIODS)}")
    try:
        threshold = float(str(data.get("threshold", "")))
    except ValueError as exc:
        raise AlertError("threshold: a number") from exc
    if threshold != threshold or threshold in (float("inf"), float("-inf")):
        raise AlertError("threshold: a finite number")
    webhook = _check_webhook(str(data.get("webhook_url", "")))
    email = str(data.get("email", "")).strip()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise AlertError("email: not an e-mail address") from exc
    if not webhook and not email:
        raise AlertError("delivery: give a webhook URL, an e-mail address, or both")
    return AlertInput(name, metric, workflow, period, threshold, webhook, email)


def create_alert(
    orchestrator: str, created_by: str, spec: AlertInput, at: datetime | None = None
) -> PersonalAlert:
    owner = orchestrator.lower()
    if PersonalAlert.objects.filter(orchestrator=owner).count() >= MAX_ALERTS:
        raise AlertError(f"at most {MAX_ALERTS} alerts: delete one first")
    return PersonalAlert.objects.create(
        orchestrator=owner,
        created_by=created_by.lower(),
        name=spec.name,
        metric=spec.metric,
        workflow=spec.workflow,
        period=spec.period,
        threshold=spec.threshold,
        webhook_url=spec.webhook_url,
        email=spec.email,
        secret=secrets.token_hex(32),
        created_at=at or timezone.now(),
    )


def alerts_of(orchestrator: str) -> list[PersonalAlert]:
    return list(PersonalAlert.objects.filter(orchestrator=orchestrator.lower()).order_by("created_at", "id"))


def alert_of(orchestrator: str, alert_id: int) -> PersonalAlert | None:
    """One alert, only when it belongs to ``orchestrator``."""
    return PersonalAlert.objects.filter(id=alert_id, orchestrator=orchestrator.lower()).first()


def deliveries_of(orchestrator: str, limit: int = 50) -> list[AlertDelivery]:
    return list(
        AlertDelivery.objects.filter(alert__orchestrator=orchestrator.lower())
        .select_related("alert")
        .order_by("-created_at", "-id")[:limit]
    )


# --- evaluation ------------------------------------------------------------------------------------------


def payload(
    alert: PersonalAlert, event: str, value: float | None, window_end: datetime | None
) -> dict[str, Any]:
    spec = METRICS[alert.metric]
    return {
        "event": event,  # firing | resolved | test
        "alert": {
            "id": alert.id,
            "name": alert.name,
            "metric": alert.metric,
            "workflow": alert.workflow,
            "window": alert.period,
            "threshold": alert.threshold,
            "condition": "below" if spec["below"] else "above",
            "unit": spec["unit"],
        },
        "orchestrator": alert.orchestrator,
        "value": value,
        "window_end": window_end.isoformat() if window_end else None,
    }


def _queue_deliveries(
    alert: PersonalAlert, event: str, body: dict[str, Any], at: datetime
) -> list[AlertDelivery]:
    targets = [("webhook", alert.webhook_url), ("email", alert.email)]
    made = [
        AlertDelivery.objects.create(
            alert=alert, event=event, channel=channel, target=target, payload=body, created_at=at
        )
        for channel, target in targets
        if target
    ]
    ids = [d.id for d in made]
    transaction.on_commit(lambda: _enqueue(ids))
    return made


def _enqueue(ids: list[int]) -> None:
    from leaderboard.tasks import deliver_alert

    for delivery_id in ids:
        deliver_alert.delay(delivery_id)


def evaluate(alert: PersonalAlert, at: datetime | None = None) -> list[AlertDelivery]:
    """Re-read the alert's metric and step its state machine; deliveries only on a change of state."""
    moment = at or timezone.now()
    with transaction.atomic():
        locked = PersonalAlert.objects.select_for_update().get(id=alert.id)
        latest = sla_queries.latest_scores_of(locked.orchestrator, locked.period, locked.workflow)
        stored = latest[0] if latest else None
        value = metric_value(locked.metric, stored) if stored else None
        state, event = transition(locked.state, locked.metric, value, locked.threshold)
        locked.last_value = value if value is not None else locked.last_value
        locked.last_window_end = stored.window_end if stored else locked.last_window_end
        locked.last_evaluated_at = moment
        fields = ["last_value", "last_window_end", "last_evaluated_at"]
        made: list[AlertDelivery] = []
        if event is not None:
            locked.state = state
            locked.state_changed_at = moment
            fields += ["state", "state_changed_at"]
            made = _queue_deliveries(
                locked, event, payload(locked, event, value, locked.last_window_end), moment
            )
        locked.save(update_fields=fields)
    return made


def evaluate_all(at: datetime | None = None) -> list[AlertDelivery]:
    made: list[AlertDelivery] = []
    for alert in PersonalAlert.objects.filter(enabled=True).order_by("id"):
        made.extend(evaluate(alert, at))
    return made


def send_test(alert: PersonalAlert, at: datetime | None = None) -> list[AlertDelivery]:
    """Queue a "test" delivery on every channel of the alert (state unchanged)."""
    moment = at or timezone.now()
    with transaction.atomic():
        return _queue_deliveries(
            alert, "test", payload(alert, "test", alert.last_value, alert.last_window_end), moment
        )


# --- delivery --------------------------------------------------------------------------------------------


def body_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """The value of the ``X-NaaP-Signature`` header: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_webhook(delivery: AlertDelivery) -> tuple[bool, int | None, str]:
    url = httpx.URL(delivery.target)
    if url.scheme not in {"http", "https"} or not url.host:
        return False, None, "refused: the webhook must be an http(s) URL"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        address = resolve_webhook_host(
            url.host, port, allow_private=settings.NAAP_ALERT_WEBHOOK_ALLOW_PRIVATE
        )
    except WebhookRefused as refused:
        return False, None, str(refused)[:500]
    raw = body_bytes(delivery.payload)
    headers = {
        "Host": url.netloc.decode("ascii"),  # the name the receiver expects, not the address we dial
        "Content-Type": "application/json",
        "User-Agent": "naap-analytics-alerts/1",
        SIGNATURE_HEADER: signature(delivery.alert.secret, raw),
        "X-NaaP-Event": delivery.event,
        "X-NaaP-Delivery": str(delivery.id),
    }
    # Dial the checked address; TLS still names (SNI) and verifies the certificate of the original host.
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    try:
        with httpx.Client(timeout=WEBHOOK_TIMEOUT_S, follow_redirects=False, trust_env=False) as client:
            response = client.post(
                url.copy_with(host=address), content=raw, headers=headers, extensions=extensions
            )
    except httpx.HTTPError as exc:
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    ok = 200 <= response.status_code < 300
    return ok, response.status_code, "" if ok else f"HTTP {response.status_code}"


def _send_email(delivery: AlertDelivery) -> tuple[bool, int | None, str]:
    body = delivery.payload
    alert = body["alert"]
    subject = f"[NaaP] {alert['name']}: {delivery.event}"
    text = (
        f"Alert {alert['name']!r} is {delivery.event}.\n\n"
        f"Orchestrator: {body['orchestrator']}\n"
        f"Metric: {alert['metric']} ({alert['window']} window, workflow {alert['workflow']})\n"
        f"Condition: {alert['condition']} {alert['threshold']} {alert['unit']}\n"
        f"Value: {body['value']}\n"
        f"Window end: {body['window_end']}\n"
    )
    try:
        send_mail(subject, text, getattr(settings, "DEFAULT_FROM_EMAIL", None), [delivery.target])
    except Exception as exc:  # SMTP refusal, connection error: logged on the delivery
        return False, None, f"{type(exc).__name__}: {exc}"[:500]
    return True, None, ""


def deliver(delivery_id: int, at: datetime | None = None) -> AlertDelivery | None:
    """Send one pending delivery and record the outcome in the delivery log."""
    delivery = AlertDelivery.objects.select_related("alert").filter(id=delivery_id).first()
    if delivery is None or delivery.status == "sent":
        return delivery
    send = _send_webhook if delivery.channel == "webhook" else _send_email
    ok, status, error = send(delivery)
    delivery.status = "sent" if ok else "failed"
    delivery.http_status = status
    delivery.error = error
    delivery.sent_at = at or timezone.now()
    delivery.save(update_fields=["status", "http_status", "error", "sent_at"])
    return delivery
