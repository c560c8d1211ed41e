"""Consume Streamr streams through a Streamr node's WebSocket plugin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from telemetry.sources.command import Consumer, ConsumerCommand, int_list, str_list
from telemetry.sources.streamr import StreamrConsumer

_PAYLOAD_METADATA = {"auto": None, "true": True, "false": False}


class Command(ConsumerCommand):
    help = "Subscribe to Streamr streams through a node's WebSocket plugin and ingest their events."
    source = "streamr"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--url", default=settings.NAAP_STREAMR_WS_URL, help="ws://HOST:7170")
        parser.add_argument("--api-key", default=settings.NAAP_STREAMR_API_KEY)
        parser.add_argument(
            "--streams",
            type=str_list,
            default=settings.NAAP_STREAMR_STREAMS,
            help="stream ids, comma separated",
        )
        parser.add_argument("--partitions", type=int_list, default=settings.NAAP_STREAMR_PARTITIONS)
        parser.add_argument(
            "--payload-metadata",
            choices=tuple(_PAYLOAD_METADATA),
            default=settings.NAAP_STREAMR_PAYLOAD_METADATA,
        )

    def build_consumer(self, options: dict[str, Any]) -> Consumer:
        if not options["streams"]:
            raise CommandError("no streams: pass --streams or set NAAP_STREAMR_STREAMS")
        return StreamrConsumer(
            self.make_dispatcher(options),
            streams=options["streams"],
            base_url=options["url"],
            api_key=options["api_key"],
            partitions=options["partitions"] or None,
            payload_metadata=_PAYLOAD_METADATA[options["payload_metadata"]],
        )
