"""Tables of publisher access control: delegations, the admins' allow/block list, applied grants, audit.

Registered through one import line at the end of ``telemetry/models.py``. Addresses are stored lower-case.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

__all__ = ["AccessAuditLog", "AccessListEntry", "Delegation", "PublisherGrant", "UnauthorizedPublishReport"]


class Delegation(models.Model):
    """An orchestrator's EIP-712 statement: ``delegate`` may publish telemetry for it until ``valid_until``."""

    delegate = models.CharField(max_length=42, db_index=True)
    orchestrator = models.CharField(max_length=42, db_index=True)
    valid_until = models.DateTimeField()
    nonce = models.CharField(max_length=78)  # uint256 in decimal
    chain_id = models.BigIntegerField()
    signature = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(
        max_length=150, blank=True, default=""
    )  # the orchestrator or "admin:<user>"

    class Meta:
        app_label = "telemetry"
        db_table = "telemetry_access_delegation"
        constraints = [
            models.UniqueConstraint(fields=["orchestrator", "nonce"], name="delegation_nonce_once")
        ]

    def __str__(self) -> str:
        return f"{self.delegate} for {self.orchestrator} until {self.valid_until:%Y-%m-%d %H:%M}"


class AccessListEntry(models.Model):
    """An address the admins always allow, or always block (the block wins)."""

    ALLOW = "allow"
    BLOCK = "block"
    KIND_CHOICES = [(ALLOW, "allow"), (BLOCK, "block")]

    address = models.CharField(max_length=42, db_index=True)
    kind = models.CharField(max_length=5, choices=KIND_CHOICES)
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        app_label = "telemetry"
        db_table = "telemetry_access_list"
        verbose_name_plural = "access list entries"
        constraints = [models.UniqueConstraint(fields=["address", "kind"], name="access_list_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.address}"


class PublisherGrant(models.Model):
    """One period during which an address held publish permission. Open rows are the applied state.

    ``valid_from`` is when the reason for the grant began (first seen, delegation submitted, ...), so an
    event stamped between that moment and the reconcile that applied the grant is still authorised;
    ``revoked_at`` is when the reason ended (revocation, expiry, block, or inactivity noticed).
    """

    ROLE_CHOICES = [
        ("orchestrator", "orchestrator"),
        ("gateway", "gateway"),
        ("delegate", "delegate"),
        ("allowlist", "allowlist"),
    ]

    address = models.CharField(max_length=42, db_index=True)
    role = models.CharField(max_length=20, choices=ROLE_CHOICES)
    orchestrator = models.CharField(max_length=42, blank=True, default="")  # whom a delegate speaks for
    valid_from = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    backend = models.CharField(max_length=20)

    class Meta:
        app_label = "telemetry"
        db_table = "telemetry_access_grant"
        constraints = [
            models.UniqueConstraint(
                fields=["address"], condition=Q(revoked_at__isnull=True), name="one_open_grant_per_address"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.address}"


class AccessAuditLog(models.Model):
    """Every grant, revocation and delegation, with who did it. Append-only."""

    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=30)
    address = models.CharField(max_length=42, db_index=True)
    orchestrator = models.CharField(max_length=42, blank=True, default="", db_index=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    class Meta:
        app_label = "telemetry"
        db_table = "telemetry_access_audit"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.address}"


class UnauthorizedPublishReport(models.Model):
    """Report mode: events accepted from unauthorised publishers, counted per hour, publisher and source."""

    hour = models.DateTimeField()
    publisher = models.CharField(max_length=100)
    source = models.CharField(max_length=40)
    events = models.BigIntegerField(default=0)

    class Meta:
        app_label = "telemetry"
        db_table = "telemetry_access_unauthorized"
        constraints = [
            models.UniqueConstraint(fields=["hour", "publisher", "source"], name="unauthorized_report_once")
        ]

    def __str__(self) -> str:
        return f"{self.publisher} {self.hour:%Y-%m-%d %H}:00 {self.events}"
