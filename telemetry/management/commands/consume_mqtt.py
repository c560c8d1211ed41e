"""Consume Streamr streams through a Streamr node's MQTT plugin."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from telemetry.sources.command import Consumer, ConsumerCommand, int_list, str_list
from telemetry.sources.mqtt import RECEIVE_MAXIMUM_CEILING, MqttConsumer, MqttTarget

_PAYLOAD_METADATA = {"auto": None, "true": True, "false": False}


class Command(ConsumerCommand):
    help = "Subscribe to Streamr streams through a node's MQTT plugin and ingest their events."
    source = "mqtt"

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--url", default=settings.NAAP_MQTT_URL, help="mqtt://[user@]HOST:1883")
        parser.add_argument("--api-key", default=settings.NAAP_STREAMR_API_KEY, help="sent as the password")
        parser.add_argument(
            "--client-id", default=settings.NAAP_MQTT_CLIENT_ID, help="names the durable session"
        )
        parser.add_argument(
            "--streams", type=str_list, default=settings.NAAP_STREAMR_STREAMS, help="stream ids (topics)"
        )
        parser.add_argument("--partitions", type=int_list, default=settings.NAAP_STREAMR_PARTITIONS)
        parser.add_argument(
            "--protocol",
            choices=("5", "3.1.1"),
            default=settings.NAAP_MQTT_PROTOCOL,
            help="MQTT 5 announces a large Receive Maximum; a Streamr node's MQTT plugin needs 3.1.1",
        )
        parser.add_argument(
            "--receive-maximum",
            type=int,
            default=RECEIVE_MAXIMUM_CEILING,
            help="MQTT 5: unacknowledged messages the broker may send us (1..65535)",
        )
        parser.add_argument(
            "--share-group",
            default=settings.NAAP_MQTT_SHARE_GROUP,
            help="subscribe as $share/GROUP/topic: consumers of one group split the messages",
        )
        parser.add_argument(
            "--payload-metadata",
            choices=tuple(_PAYLOAD_METADATA),
            default=settings.NAAP_STREAMR_PAYLOAD_METADATA,
        )

    def build_consumer(self, options: dict[str, Any]) -> Consumer:
        if not options["streams"]:
            raise CommandError("no streams: pass --streams or set NAAP_STREAMR_STREAMS")
        try:
            target = MqttTarget.from_url(options["url"], options["api_key"])
            return MqttConsumer(
                self.make_dispatcher(options),
                streams=options["streams"],
                target=target,
                client_id=options["client_id"],
                partitions=options["partitions"] or None,
                payload_metadata=_PAYLOAD_METADATA[options["payload_metadata"]],
                protocol=options["protocol"],
                receive_maximum=options["receive_maximum"],
                share_group=options["share_group"] or None,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
