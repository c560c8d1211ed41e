"""The Celery app. Queues are named here, once: ingest never waits behind derivation, scoring or broadcasts."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naap_site.settings")

QUEUE_INGEST = "ingest"
QUEUE_DERIVE = "derive"
QUEUE_SCORES = "scores"
QUEUE_BROADCAST = "broadcast"
QUEUES = (QUEUE_INGEST, QUEUE_DERIVE, QUEUE_SCORES, QUEUE_BROADCAST)

app = Celery("naap")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES)
app.conf.task_default_queue = QUEUE_INGEST
app.conf.task_routes = {
    "telemetry.tasks.*": {"queue": QUEUE_INGEST},
    "sla.tasks.*": {"queue": QUEUE_DERIVE},
    "sla.tasks.compute_scores_task": {"queue": QUEUE_SCORES},
    "leaderboard.tasks.*": {"queue": QUEUE_BROADCAST},
    "leaderboard.tasks.refresh_ens_names": {"queue": QUEUE_DERIVE},
    "leaderboard.tasks.purge_sign_in_nonces": {"queue": QUEUE_DERIVE},
    "telemetry.access.tasks.*": {"queue": QUEUE_DERIVE},
}
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1
app.conf.task_serializer = "json"
app.conf.accept_content = ["json", "msgpack"]  # msgpack: telemetry.tasks.ingest_batch (megabytes of text)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Periodic tasks; intervals that operators tune come from Django settings (read once configured)."""
    from django.conf import settings

    return {
        "maintain-storage": {"task": "telemetry.tasks.maintain_storage", "schedule": 3600.0},
        "sla-refresh": {"task": "sla.tasks.refresh", "schedule": 5.0},
        "ens-refresh": {"task": "leaderboard.tasks.refresh_ens_names", "schedule": 600.0},
        "evaluate-alerts": {"task": "leaderboard.tasks.evaluate_alerts", "schedule": 10.0},
        "purge-sign-in-nonces": {"task": "leaderboard.tasks.purge_sign_in_nonces", "schedule": 600.0},
        "reconcile-publishers": {
            "task": "telemetry.access.tasks.reconcile_publishers",
            "schedule": float(settings.NAAP_ACCESS_RECONCILE_S),
        },
    }


app.autodiscover_tasks()  # <app>.tasks of every installed app
app.conf.include = ["telemetry.access.tasks"]  # the one task module outside an app's tasks.py


def _apply_key_prefix() -> None:
    from django.conf import settings

    prefix = getattr(settings, "CELERY_KEY_PREFIX", "")
    if prefix:
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        app.conf.result_backend_transport_options = {"global_keyprefix": prefix}


def _schedule_from_settings(sender: Celery, **_: Any) -> None:
    sender.conf.beat_schedule = beat_schedule()


app.on_configure.connect(lambda **_: _apply_key_prefix(), weak=False)  # a weak ref would drop the lambda
app.on_after_configure.connect(_schedule_from_settings, weak=False)
app.set_default()
