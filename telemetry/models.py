"""Ordinary (non-time) tables of the telemetry app. The time tables are in ``telemetry/tables.py``."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Publisher(models.Model):
    """A producer allowed to push events over HTTP (and named on events from other sources)."""

    KIND_CHOICES = [
        ("gateway", "gateway"),
        ("orchestrator", "orchestrator"),
        ("job_tester", "job tester"),
        ("relay", "relay"),
    ]
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES, default="gateway")
    eth_address = models.CharField(max_length=42, blank=True, default="")
    api_key_hash = models.CharField(max_length=64, unique=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def create_with_key(
        cls, name: str, kind: str = "gateway", eth_address: str = ""
    ) -> tuple[Publisher, str]:
        key = "naap_" + secrets.token_urlsafe(32)
        publisher = cls.objects.create(
            name=name, kind=kind, eth_address=eth_address.lower(), api_key_hash=hash_api_key(key)
        )
        return publisher, key


class RejectedEvent(models.Model):
    """An event we refused, with why. The raw bytes are kept up to NAAP_REJECTED_KEEP_BYTES."""

    received_at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=40)
    publisher = models.CharField(max_length=100, blank=True, default="", db_index=True)
    reason = models.CharField(max_length=40, db_index=True)
    detail = models.TextField(blank=True, default="")
    event_type = models.CharField(max_length=80, blank=True, default="")
    raw = models.BinaryField()
    raw_size = models.IntegerField()

    class Meta:
        db_table = "telemetry_events_rejected"

    def __str__(self) -> str:
        return f"{self.reason} from {self.publisher or self.source} at {self.received_at:%Y-%m-%d %H:%M:%S}"


from telemetry.access_models import *  # noqa: E402,F401,F403
