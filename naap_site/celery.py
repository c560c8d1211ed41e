"""The Celery app. Queues are named here, once: ingest never waits behind derivation, scoring or broadcasts."""

from __future__ import annotations

import os

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
    "leaderboard.ens.*": {"queue": QUEUE_DERIVE},
    "telemetry.access.tasks.*": {"queue": QUEUE_DERIVE},
}
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1
app.conf.task_serializer = "json"
app.conf.accept_content = ["json", "msgpack"]  # msgpack: telemetry.tasks.ingest_batch (megabytes of text)
app.conf.beat_schedule = {
    "maintain-storage": {"task": "telemetry.tasks.maintain_storage", "schedule": 3600.0},
    "sla-refresh": {"task": "sla.tasks.refresh", "schedule": 5.0},
    "ens-refresh": {"task": "leaderboard.ens.refresh_ens_names", "schedule": 600.0},
    "evaluate-alerts": {"task": "leaderboard.personal_tasks.evaluate_alerts", "schedule": 10.0},
    "reconcile-publishers": {
        "task": "telemetry.access.tasks.reconcile_publishers",
        "schedule": float(os.environ.get("NAAP_ACCESS_RECONCILE_S", "60")),
    },
}
app.autodiscover_tasks()
# tasks outside the apps' tasks modules
app.conf.include = ["leaderboard.ens", "telemetry.access.tasks", "leaderboard.personal_tasks"]


def _apply_key_prefix() -> None:
    from django.conf import settings

    prefix = getattr(settings, "CELERY_KEY_PREFIX", "")
    if prefix:
        app.conf.broker_transport_options = {"global_keyprefix": prefix}
        app.conf.result_backend_transport_options = {"global_keyprefix": prefix}


app.on_configure.connect(lambda **_: _apply_key_prefix(), weak=False)  # a weak ref would drop the lambda
app.set_default()
