"""Create a publisher allowed to POST /v1/ingest and print its API key (shown this once only)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.models import Publisher
from telemetry.services import create_publisher


class Command(BaseCommand):
    help = "Create a publisher and print its API key once; only a hash of the key is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--kind", default="gateway", choices=[c for c, _ in Publisher.KIND_CHOICES])
        parser.add_argument("--eth-address", default="", help="the publisher's Ethereum address, if any")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            publisher, key = create_publisher(options["name"], options["kind"], options["eth_address"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"publisher {publisher.name!r} ({publisher.kind}) created; its API key follows, store it now:"
        )
        self.stdout.write(key)
