"""Consume the network's go-livepeer Kafka topics."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from telemetry.sources.command import Consumer, ConsumerCommand, str_list
from telemetry.sources.kafka import KafkaConsumer


class Command(ConsumerCommand):
    help = (
        "Consume go-livepeer Kafka topics in a consumer group; offsets are committed after the ingest commit."
    )
    source = "kafka"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--bootstrap", default=settings.NAAP_KAFKA_BOOTSTRAP, help="HOST:PORT[,HOST:PORT]"
        )
        parser.add_argument("--topics", type=str_list, default=settings.NAAP_KAFKA_TOPICS)
        parser.add_argument("--group", default=settings.NAAP_KAFKA_GROUP)
        parser.add_argument("--session-timeout-ms", type=int, default=10_000)

    def build_consumer(self, options: dict[str, Any]) -> Consumer:
        if not options["topics"]:
            raise CommandError("no topics: pass --topics or set NAAP_KAFKA_TOPICS")
        session_ms = options["session_timeout_ms"]
        return KafkaConsumer(
            self.make_dispatcher(options),
            topics=options["topics"],
            bootstrap=options["bootstrap"],
            group_id=options["group"],
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(100, session_ms // 6),
        )
