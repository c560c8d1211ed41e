"""Tables of the leaderboard app: cached ENS names and orchestrator sign-in (nonces, admin allowlist).

Nothing here is a source of truth for metrics: ENS rows are a cache of on-chain records refreshed in the
background, sign-in nonces live five minutes.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class EnsName(models.Model):
    """The verified ENS primary name of one address, as last seen on chain ("" when there is none).

    ``verified_at`` is when the name last passed reverse resolution *and* forward verification;
    ``expires_at`` is when the background refresh should look again; ``error`` keeps the last failure
    (an unreachable RPC, a forward record that does not match) for operators.
    """

    address = models.CharField(max_length=42, unique=True)  # lower-case 0x-address
    name = models.CharField(max_length=255, blank=True, default="", db_index=True)
    verified_at = models.DateTimeField(null=True)
    checked_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "leaderboard_ens_name"

    def __str__(self) -> str:
        return f"{self.address} → {self.name or '-'}"


class SignInNonce(models.Model):
    """A server-issued EIP-4361 nonce: valid five minutes, usable once."""

    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True)
    used_by = models.CharField(max_length=42, blank=True, default="")

    class Meta:
        db_table = "leaderboard_signin_nonce"

    def __str__(self) -> str:
        return self.nonce


class OrchestratorAllowlist(models.Model):
    """Addresses that admins declare to be orchestrators (beside those seen on chain in capabilities)."""

    address = models.CharField(max_length=42, unique=True)  # lower-case 0x-address
    note = models.CharField(max_length=200, blank=True, default="")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "leaderboard_orchestrator_allowlist"
        verbose_name = "orchestrator allowlist entry"
        verbose_name_plural = "orchestrator allowlist"

    def __str__(self) -> str:
        return self.address

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.address = self.address.strip().lower()
        super().save(*args, **kwargs)


# --- personal pages (alerts, delivery log, private API tokens) ---------------------------------------------


class PersonalAlert(models.Model):
    """A threshold an orchestrator operator set on one of its own metrics for one workflow.

    ``state`` is the crossing state machine (ok → firing → ok): a delivery is made on each change of state,
    never on a re-evaluation that finds the same state. ``secret`` signs webhook bodies (HMAC-SHA256).
    """

    STATES = (("ok", "ok"), ("firing", "firing"))

    orchestrator = models.CharField(max_length=42, db_index=True)  # lower-case on-chain address
    created_by = models.CharField(max_length=42)  # the signed-in address (the orchestrator or a delegate)
    name = models.CharField(max_length=80)
    metric = models.CharField(max_length=10)  # score | success | fps | p2ff_ms
    workflow = models.CharField(max_length=120)
    period = models.CharField(max_length=4, default="1h")  # the scored window read: 1h | 24h
    threshold = models.FloatField()
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    secret = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=8, choices=STATES, default="ok")
    last_value = models.FloatField(null=True)
    last_window_end = models.DateTimeField(null=True)
    last_evaluated_at = models.DateTimeField(null=True)
    state_changed_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "leaderboard_personal_alert"

    def __str__(self) -> str:
        return f"{self.orchestrator} {self.metric} {self.workflow} {self.threshold}"


class AlertDelivery(models.Model):
    """One attempt to tell an operator about a crossing (or a test): the delivery log."""

    alert = models.ForeignKey(PersonalAlert, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=10)  # firing | resolved | test
    channel = models.CharField(max_length=8)  # webhook | email
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=8, default="pending")  # pending | sent | failed
    http_status = models.IntegerField(null=True)
    error = models.TextField(blank=True, default="")
    payload = models.JSONField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "leaderboard_alert_delivery"
        indexes = [models.Index(fields=["alert", "-created_at"], name="lb_alert_delivery_recent")]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.event} {self.channel} {self.status}"


class ApiToken(models.Model):
    """A private API token of one orchestrator. Only the SHA-256 of the token is stored."""

    orchestrator = models.CharField(max_length=42, db_index=True)
    created_by = models.CharField(max_length=42)
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)  # the first characters, to recognise a token in the list
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True)
    revoked_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "leaderboard_api_token"

    def __str__(self) -> str:
        return f"{self.prefix}… {self.name} ({self.orchestrator})"
