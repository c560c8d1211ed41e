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
