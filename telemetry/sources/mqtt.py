"""Streamr node MQTT plugin consumer (paho-mqtt).

The plugin (``PEERS.md``): the topic is the stream id, with ``?partition=N`` for another partition than 0;
any username, the node's API key as the password; payloads are the same as over the WebSocket plugin.

We subscribe with QoS 1 on a persistent session (a stable client id; MQTT 5: ``clean_start=False`` and a
session expiry interval, MQTT 3.1.1: ``clean_session=False``) and send each PUBACK ourselves only after the
message's batch committed, so a message that was read but not stored is delivered again after a crash or
a reconnect.

Flow control decides the throughput. A broker sends a client at most so many unacknowledged QoS 1
messages and queues a bounded number behind them; what overflows that queue is dropped. Mosquitto 2.x
defaults to 20 in flight and 1,000 queued per client, and with acks held until the commit (about a second
at the usual batch delay) an MQTT 3.1.1 consumer receives about 20 messages per commit round trip and
loses most of a 2,000 messages/s stream. Under MQTT 5 the client announces its own *Receive Maximum* in
CONNECT and Mosquitto honours it in place of ``max_inflight_messages`` (tested against the local
Mosquitto: a v5 client with Receive Maximum 20,000 received 5,000 unacknowledged messages, a 3.1.1 client
20 of them and 1,020 in all). So we connect with MQTT 5 and Receive Maximum 65,535 (its ceiling), which
covers about 30 s of commit lag at 2,000 messages/s without touching the broker's configuration. A
broker that refuses MQTT 5 (the Streamr node's plugin is built on a 3.1.1 broker library) makes the
consumer reconnect with 3.1.1 by itself; ``protocol="3.1.1"`` skips the attempt. Several consumers can
split one stream through a shared subscription (``share_group``: ``$share/<group>/<topic>``).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telemetry.pipeline.ingest import Message
from telemetry.sources.dispatch import Dispatcher
from telemetry.sources.streamr import GapTracker, decode_payload

log = logging.getLogger(__name__)

# (connection generation, packet id, qos): a packet id is only meaningful on the connection that got it
AckToken = tuple[int, int, int]
Protocol = Literal["5", "3.1.1"]

RECEIVE_MAXIMUM_CEILING = 65_535  # a two-byte integer in the CONNECT properties
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600  # how long the broker keeps our unacknowledged messages
UNSUPPORTED_PROTOCOL_VERSION = 0x84  # CONNACK reason (paho maps a 3.1.1 broker's return code 1 to it)


def stream_topic(stream_id: str, partition: int | None) -> str:
    return stream_id if not partition else f"{stream_id}?partition={partition}"


def message_of(payload: bytes | bytearray, payload_metadata: bool | None) -> Message:
    """One MQTT message for the pipeline, parsed here only when it may be a ``{content, metadata}`` wrapper.

    A bare event goes on as its bytes: the ingest worker parses them anyway, so decoding here and
    re-encoding into the Celery message would only double the JSON work on the consumer's hot path. The
    wrapped form always has a ``"content"`` key, so a payload without that text cannot be wrapped.
    """
    if payload_metadata is False or (payload_metadata is None and b'"content"' not in payload):
        return Message(body=bytes(payload))
    return decode_payload(payload, payload_metadata)


def shared_topic(topic: str, group: str | None) -> str:
    """The topic filter of a shared subscription: the broker gives each message to one group member."""
    if not group:
        return topic
    if any(c in group for c in "/+#"):
        raise ValueError(f"a share group name cannot contain '/', '+' or '#': {group!r}")
    return f"$share/{group}/{topic}"


@dataclass(frozen=True)
class MqttTarget:
    host: str
    port: int
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str, api_key: str = "") -> MqttTarget:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise ValueError(f"unsupported MQTT URL scheme in {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username or "naap"),
            password=api_key or unquote(parts.password or ""),
        )


@dataclass
class MqttConsumer:
    dispatcher: Dispatcher[AckToken]
    streams: list[str]
    target: MqttTarget
    client_id: str = "naap-analytics"
    partitions: list[int] | None = None
    payload_metadata: bool | None = None
    protocol: Protocol = "5"
    receive_maximum: int = RECEIVE_MAXIMUM_CEILING
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    share_group: str | None = None
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    gaps: GapTracker = field(default_factory=GapTracker)
    connects: int = 0
    acks_sent: int = 0
    stale_acks: int = 0

    def __post_init__(self) -> None:
        self._inbox: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        if not 1 <= self.receive_maximum <= RECEIVE_MAXIMUM_CEILING:
            raise ValueError(f"receive_maximum must be 1..{RECEIVE_MAXIMUM_CEILING}")
        self.topics  # noqa: B018 -- validates the share group here, not later in the network thread
        if self.protocol not in ("5", "3.1.1"):
            raise ValueError(f"unsupported MQTT protocol {self.protocol!r}: use '5' or '3.1.1'")
        self._downgrade = threading.Event()
        self._held: tuple[int, mqtt.MQTTMessage] | None = None
        self._client = self._new_client()
        self._started = False

    def _new_client(self) -> mqtt.Client:
        if self.protocol == "5":
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            client = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
                manual_ack=True,
            )
        client.username_pw_set(self.target.username, self.target.password)
        client.reconnect_delay_set(self.reconnect_min_s, self.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def topics(self) -> list[str]:
        parts: list[int | None] = list(self.partitions) if self.partitions else [None]
        return [shared_topic(stream_topic(s, p), self.share_group) for s in self.streams for p in parts]

    @property
    def unread(self) -> int:
        """Messages received from the broker and not yet handed to the dispatcher."""
        return self._inbox.qsize() + int(self._held is not None)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def subscribed(self) -> bool:
        return self._subscribed.is_set()

    # -- paho callbacks (network thread) -------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            if self.protocol == "5" and reason.value == UNSUPPORTED_PROTOCOL_VERSION:
                self._downgrade.set()  # the next step() reconnects with 3.1.1 (a Streamr node's plugin)
            log.error("mqtt: connection refused: %s", reason)
            return
        self._generation += 1
        self.connects += 1
        self._connected.set()
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(r.is_failure for r in reasons):
            log.error("mqtt: subscription refused: %s", reasons)
            return
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        self._subscribed.clear()
        log.warning("mqtt: disconnected (%s), paho reconnects with backoff", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put((self._generation, message))

    # -- driving --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._downgrade.is_set():
            self._downgrade.clear()
            log.warning("mqtt: the broker does not speak MQTT 5; connecting with 3.1.1 instead")
            self._client.disconnect()
            self._client.loop_stop()
            self.protocol = "3.1.1"
            self._client = self._new_client()
            self._started = False
        if not self._started:
            if self.protocol == "5":
                props = Properties(PacketTypes.CONNECT)
                props.ReceiveMaximum = self.receive_maximum
                props.SessionExpiryInterval = self.session_expiry_s
                self._client.connect_async(
                    self.target.host,
                    self.target.port,
                    keepalive=self.keepalive_s,
                    clean_start=False,
                    properties=props,
                )
            else:
                self._client.connect_async(self.target.host, self.target.port, keepalive=self.keepalive_s)
            self._client.loop_start()
            self._started = True

    def step(self, timeout_s: float = 0.5) -> int:
        """Take what arrived for up to ``timeout_s``, move batches along, PUBACK what committed."""
        self.start()
        read = 0
        item = self._take(timeout_s)
        while item is not None:
            if self.dispatcher.full:  # backpressure: hold it until batches commit; the broker stops
                self._held = item  # sending once Receive Maximum messages are unacknowledged
                break
            generation, message = item
            decoded = message_of(message.payload, self.payload_metadata)
            self.gaps.observe(decoded.metadata)
            self.dispatcher.add(decoded, (generation, message.mid, message.qos))
            read += 1
            item = self._take(0)
        # while held back, wait for commits here instead of spinning over a full buffer
        self._ack(self.dispatcher.pump(self.dispatcher.poll_interval_s if self._held is not None else 0.0))
        return read

    def _take(self, timeout_s: float) -> tuple[int, mqtt.MQTTMessage] | None:
        """The held-back message first, then the inbox (waiting up to ``timeout_s``)."""
        if self._held is not None:
            item, self._held = self._held, None
            return item
        try:
            return self._inbox.get(timeout=timeout_s) if timeout_s > 0 else self._inbox.get_nowait()
        except queue.Empty:
            return None

    def _ack(self, tokens: list[AckToken]) -> None:
        for generation, mid, qos in tokens:
            if qos == 0:
                continue
            if generation != self._generation or not self.connected:
                self.stale_acks += 1  # the broker re-delivers it on this session; dedup absorbs it
                continue
            self._client.ack(mid, qos)
            self.acks_sent += 1

    def close(self, flush_timeout_s: float = 30.0) -> None:
        """Commit what was read and acknowledge it, then disconnect (the session stays on the broker)."""
        while (item := self._take(0)) is not None:
            generation, message = item
            decoded = message_of(message.payload, self.payload_metadata)
            self.gaps.observe(decoded.metadata)
            self.dispatcher.add(decoded, (generation, message.mid, message.qos))
        self._ack(self.dispatcher.flush(flush_timeout_s))
        self.abort()

    def abort(self) -> None:
        """Disconnect without acknowledging anything more (what a crash looks like to the broker)."""
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    def progress(self) -> dict[str, int]:
        return {
            **self.dispatcher.stats.as_dict(),
            "connected": int(self.connected),
            "connects": self.connects,
            "acks_sent": self.acks_sent,
            "gaps": self.gaps.total_gaps,
        }
