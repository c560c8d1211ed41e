"""``manage.py refresh_ens``: look up ENS primary names of known orchestrators and cache them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leaderboard import ens


class Command(BaseCommand):
    help = "Refresh cached ENS primary names (reverse record + forward verification) of orchestrators."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "addresses", nargs="*", help="addresses to look up (default: known orchestrators)"
        )
        parser.add_argument("--all", action="store_true", help="look up every address, not only expired ones")
        parser.add_argument("--limit", type=int, default=500, help="at most this many addresses per run")

    def handle(self, *args: Any, **options: Any) -> None:
        addresses: list[str] = options["addresses"] or ens.known_orchestrators()
        bad = [a for a in options["addresses"] if ens.normalize_address(a) is None]
        if bad:
            raise CommandError(f"not addresses: {', '.join(bad)}")
        if options["all"]:
            summary = ens.refresh_names(addresses[: options["limit"]])
        else:
            summary = ens.refresh_due(addresses=addresses, limit=options["limit"])
        if summary.skipped_reason == "no_rpc":
            self.stdout.write("ENS refresh skipped: NAAP_ETH_RPC_URL is not set")
            return
        if summary.skipped_reason == "rpc_unreachable":
            raise CommandError("ENS refresh failed: the JSON-RPC endpoint is not reachable")
        self.stdout.write(
            f"ENS refresh: {len(addresses)} known, {summary.checked} checked, "
            f"{summary.named} named, {summary.errors} errors"
        )
