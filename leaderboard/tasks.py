"""Every Celery task of the leaderboard app.

Live broadcasts (queue "broadcast"): after a rollup refresh or a score run, send each subscribed stream the
numbers that changed since the last broadcast — small numeric deltas, never HTML or figures.
``sla.tasks.run_pipeline`` sends ``sla.signals.refresh_completed`` after its transaction commits;
``leaderboard.apps`` connects ``broadcast_after_refresh()`` to it, which enqueues one ``broadcast_live`` task.

Personal alerts (queue "broadcast"): ``evaluate_alerts`` is enqueued when ``refresh_completed`` reports a
run that wrote scores, and also runs on a beat schedule as a safety net; it does real work only when a
newer score run exists than the one it last evaluated (remembered in the cache), so it evaluates once per
score run. ``deliver_alert`` sends one webhook / e-mail delivery.

Maintenance (queue "derive", beat): ``refresh_ens_names`` fills the ENS name cache; ``purge_sign_in_nonces``
deletes sign-in nonces that can no longer be used.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from leaderboard import alerts, auth, ens
from leaderboard.consumers import StreamNameError, group_for, parse_stream
from naap_site.celery import QUEUE_BROADCAST
from sla.personal import latest_score_run
from sla.signals import refresh_completed

log = logging.getLogger(__name__)

SUBSCRIPTION_TTL_S = 600  # clients ping every 60 s; a stream nobody pinged for 10 minutes is dropped
SNAPSHOT_TTL_S = 3600

Number = float | int | None
Snapshot = dict[str, dict[str, Number]]


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])


def _key(name: str) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "naap")
    return f"{prefix}:live:{name}"


def register_streams(streams: list[str]) -> None:
    """Remember that someone listens to these streams (a sorted set scored by expiry time)."""
    if streams:
        expiry = time.time() + SUBSCRIPTION_TTL_S
        _redis().zadd(_key("streams"), dict.fromkeys(streams, expiry))


def active_streams() -> list[str]:
    client = _redis()
    client.zremrangebyscore(_key("streams"), "-inf", time.time())
    members: list[bytes] = list(client.zrange(_key("streams"), 0, -1))  # type: ignore[arg-type]
    return sorted(m.decode() for m in members)


def diff(previous: Snapshot | None, current: Snapshot) -> dict[str, Any]:
    """Rows whose numbers changed (only the changed fields) and rows that disappeared."""
    previous = previous or {}
    changed: dict[str, dict[str, Number]] = {}
    for row, fields in current.items():
        before = previous.get(row, {})
        delta = {k: v for k, v in fields.items() if k not in before or before[k] != v}
        if delta:
            changed[row] = delta
    removed = sorted(row for row in previous if row not in current)
    out: dict[str, Any] = {}
    if changed:
        out["rows"] = changed
    if removed:
        out["removed"] = removed
    return out


def broadcast_stream(stream: str) -> dict[str, Any] | None:
    """Compute one stream's snapshot, send its delta to the stream's group; returns the delta sent."""
    from leaderboard.views import live_snapshot

    kind, parts = parse_stream(stream)
    current = live_snapshot(kind, parts)
    client = _redis()
    key = _key(f"snapshot:{stream}")
    raw = client.get(key)
    previous = json.loads(raw) if raw else None
    delta = diff(previous, current)
    client.set(key, json.dumps(current), ex=SNAPSHOT_TTL_S)
    if not delta:
        return None
    seq = int(client.incr(_key(f"seq:{stream}")))
    layer = get_channel_layer()
    if layer is None:
        return None
    message = {
        "type": "live.delta",
        "stream": stream,
        "seq": seq,
        "sent_at": int(time.time() * 1000),
        "data": delta,
    }
    async_to_sync(layer.group_send)(group_for(stream), message)
    return delta


def broadcast_all() -> int:
    """Broadcast every active stream; returns how many streams received a delta."""
    sent = 0
    for stream in active_streams():
        try:
            if broadcast_stream(stream) is not None:
                sent += 1
        except StreamNameError:
            _redis().zrem(_key("streams"), stream)
        except Exception:
            log.exception("live broadcast of %s failed", stream)
    return sent


@shared_task(name="leaderboard.tasks.broadcast_live", ignore_result=True)
def broadcast_live() -> int:
    return broadcast_all()


def broadcast_after_refresh() -> None:
    """Called after a rollup refresh and score run has committed: ``leaderboard.apps`` connects it to
    ``sla.signals.refresh_completed``, which ``sla.tasks.run_pipeline`` sends from ``transaction.on_commit``.

    Nothing is enqueued while nobody listens. Runs the broadcast inline when Celery is eager (the demo, the
    browser tests), else enqueues it on the "broadcast" queue.
    """
    try:
        if not active_streams():
            return
        broadcast_live.delay()
    except Exception:  # a Redis or broker outage must never fail the refresh that triggered us
        log.exception("could not enqueue the live broadcast")


# --- personal alerts -------------------------------------------------------------------------------------

LAST_RUN_KEY = "personal:alerts:last-score-run"


@shared_task(name="leaderboard.tasks.deliver_alert", queue=QUEUE_BROADCAST, ignore_result=True)
def deliver_alert(delivery_id: int) -> str:
    delivery = alerts.deliver(delivery_id)
    return delivery.status if delivery is not None else "missing"


def evaluate_if_new_scores() -> int | None:
    """Evaluate every enabled alert when scores were computed since the last evaluation.

    Returns how many deliveries were queued, or None when there was no new score run.
    """
    newest = latest_score_run()
    if newest is None:
        return None
    seen = cache.get(LAST_RUN_KEY)
    if seen is not None and seen >= newest.isoformat():
        return None
    made = alerts.evaluate_all()
    cache.set(LAST_RUN_KEY, newest.isoformat(), timeout=None)
    return len(made)


@shared_task(name="leaderboard.tasks.evaluate_alerts", queue=QUEUE_BROADCAST, ignore_result=True)
def evaluate_alerts() -> int:
    made = evaluate_if_new_scores()
    if made:
        log.info("alerts: %d deliveries queued", made)
    return made or 0


def evaluate_after_score_run() -> None:
    """Call after a score run has committed; never fails the caller."""
    try:
        evaluate_alerts.delay()
    except Exception:
        log.exception("could not enqueue alert evaluation")


def _after_refresh(sender: object, scores: int = 0, **kwargs: Any) -> None:
    """``sla.signals.refresh_completed`` receiver: a run that wrote scores triggers alert evaluation."""
    if scores:
        evaluate_after_score_run()


# sla never imports leaderboard: this side subscribes to sla's signal (the app's ready() imports us).
refresh_completed.connect(_after_refresh, dispatch_uid="leaderboard.personal_alerts")


# --- maintenance -----------------------------------------------------------------------------------------


@shared_task(name="leaderboard.tasks.refresh_ens_names", ignore_result=True)
def refresh_ens_names() -> dict[str, object]:
    summary = ens.refresh_due()
    return {
        "checked": summary.checked,
        "named": summary.named,
        "errors": summary.errors,
        "skipped": summary.skipped_reason,
    }


@shared_task(name="leaderboard.tasks.purge_sign_in_nonces", ignore_result=True)
def purge_sign_in_nonces() -> int:
    """Delete expired sign-in nonces (anyone can ask for one, so the table must not keep them)."""
    return auth.purge_nonces()
