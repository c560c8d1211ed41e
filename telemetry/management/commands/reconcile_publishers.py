"""Reconcile publish permissions now: compute grants and revocations and apply them through the backend."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from telemetry.access.backends import configured_backend
from telemetry.access.services import reconcile


class Command(BaseCommand):
    help = "Grant publish permission to active orchestrators, gateways, delegates and allowed addresses; revoke the rest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print the plan without applying it")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backend = configured_backend()
            result = reconcile(backend, timezone.now(), dry_run=options["dry_run"])
        except Exception as exc:
            raise CommandError(f"reconcile failed: {exc}") from exc
        verb = "would" if options["dry_run"] else "did"
        for d in result.grants:
            self.stdout.write(f"grant  {d.address} ({d.role})")
        for d in result.changes:
            self.stdout.write(f"change {d.address} ({d.role})")
        for r in result.revocations:
            self.stdout.write(f"revoke {r.address} ({r.why})")
        self.stdout.write(
            f"{backend.name}: {verb} grant {len(result.grants)}, change {len(result.changes)}, "
            f"revoke {len(result.revocations)}"
        )
