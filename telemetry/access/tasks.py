"""Celery beat task of the access controller (scheduled in ``naap_site/celery.py``)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from telemetry.access.backends import configured_backend
from telemetry.access.services import reconcile


@shared_task(name="telemetry.access.tasks.reconcile_publishers")
def reconcile_publishers() -> dict[str, int]:
    result = reconcile(configured_backend(), timezone.now())
    return {"granted": len(result.grants), "changed": len(result.changes), "revoked": len(result.revocations)}
