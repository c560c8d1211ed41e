"""Celery tasks of the personal pages, on the "broadcast" queue: alert evaluation after each score run,
and webhook / e-mail delivery of each alert event.

``evaluate_alerts`` is enqueued when ``sla.signals.refresh_completed`` reports a run that wrote scores, and
also runs on a beat schedule as a safety net; it does real work only when a newer score run exists than the
one it last evaluated (remembered in the cache), so it evaluates once per score run.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.core.cache import cache

from leaderboard import alerts
from naap_site.celery import QUEUE_BROADCAST
from sla.personal import latest_score_run
from sla.signals import refresh_completed

log = logging.getLogger(__name__)
LAST_RUN_KEY = "personal:alerts:last-score-run"


@shared_task(name="leaderboard.personal_tasks.deliver_alert", queue=QUEUE_BROADCAST, ignore_result=True)
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


@shared_task(name="leaderboard.personal_tasks.evaluate_alerts", queue=QUEUE_BROADCAST, ignore_result=True)
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
