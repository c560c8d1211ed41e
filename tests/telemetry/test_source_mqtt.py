from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemetry.models import RejectedEvent
from telemetry.sources.dispatch import Dispatcher
from telemetry.sources.mqtt import (
    AckToken,
    MqttConsumer,
    MqttTarget,
    message_of,
    shared_topic,
    stream_topic,
)
from tests.conftest import ANCHOR
from tests.telemetry.conftest import raw_ids, status_event, wait_for

TARGET = MqttTarget.from_url("mqtt://naap@127.0.0.1:1883", api_key="test-api-key")


@pytest.fixture
def stream_id() -> str:
    return f"0xabcdef0123456789abcdef0123456789abcdef01/naap-test/{uuid.uuid4().hex}"


def drop_session(cid: str) -> None:
    """Drop the persistent session a test left on Mosquitto (a clean session replaces it)."""
    cleaner = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    cleaner.connect("127.0.0.1", 1883)
    cleaner.disconnect()


@pytest.fixture
def client_id() -> Iterator[str]:
    cid = f"naap-test-{uuid.uuid4().hex[:12]}"
    yield cid
    drop_session(cid)


def publisher() -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
    )
    client.max_inflight_messages_set(1000)  # bursts go out without waiting for each PUBACK
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: str | bytes) -> None:
    client.publish(topic, payload, qos=1).wait_for_publish(10)


def publish_burst(client: mqtt.Client, topic: str, ids: list[str]) -> None:
    """Publish many QoS 1 messages as fast as the broker takes them, then wait for every PUBACK."""
    infos = [client.publish(topic, json.dumps(status_event(i, -n)), qos=1) for n, i in enumerate(ids)]
    for info in infos:
        info.wait_for_publish(30)


def make_consumer(
    stream_id: str, client_id: str, *, batch_size: int = 50, max_delay_s: float = 0.05, **kwargs: object
) -> MqttConsumer:
    dispatcher: Dispatcher[AckToken] = Dispatcher(
        "mqtt", mode="inprocess", batch_size=batch_size, max_delay_s=max_delay_s, wall_clock=lambda: ANCHOR
    )
    return MqttConsumer(dispatcher, [stream_id], TARGET, client_id=client_id, **kwargs)  # type: ignore[arg-type]


def run_until(consumer: MqttConsumer, condition: object, timeout_s: float = 30.0) -> None:
    wait_for(lambda: (consumer.step(0.1), condition())[1], timeout_s, every_s=0)  # type: ignore[operator]


def wrapped(content: dict[str, object], seq: int, ts: int = 7_000) -> str:
    metadata = {"timestamp": ts, "sequenceNumber": seq, "publisherId": "0xAAAA", "msgChainId": "m1"}
    return json.dumps({"content": content, "metadata": metadata})


@pytest.mark.django_db
@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_messages_on_the_stream_topic_reach_the_raw_log(
    stream_id: str, client_id: str, protocol: str
) -> None:
    consumer = make_consumer(stream_id, client_id, protocol=protocol)
    pub = publisher()
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish(pub, stream_id, wrapped(status_event("m0"), 0))
        publish(pub, stream_id, wrapped(status_event("m1", 1), 2))  # sequence 1 never arrives
        publish(pub, stream_id, json.dumps(status_event("bare", 2)))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 3)
        assert raw_ids() == ["bare", "m0", "m1"]
        assert consumer.acks_sent == 3
        assert consumer.gaps.gaps == {("0xaaaa", "m1"): 1}
    finally:
        consumer.close(5)
        pub.loop_stop()


@pytest.mark.django_db
def test_a_burst_beyond_the_brokers_default_flow_control_is_stored_exactly_once(
    stream_id: str, client_id: str
) -> None:
    # Mosquitto sends a client 20 unacknowledged messages by default, queues 1,000 more and drops the
    # rest; nothing is acknowledged while the burst arrives, so only the announced Receive Maximum
    # (MQTT 5) keeps all 3,000 coming
    consumer = make_consumer(stream_id, client_id, batch_size=500)
    pub = publisher()
    ids = [f"burst-{n:05d}" for n in range(3000)]
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish_burst(pub, stream_id, ids)
        wait_for(lambda: consumer.unread == len(ids), 30)
        assert consumer.acks_sent == 0
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == len(ids), 60)
        consumer.step(0.3)
        assert raw_ids() == ids
        assert (consumer.acks_sent, consumer.dispatcher.stats.accepted) == (len(ids), len(ids))
        assert consumer.dispatcher.stats.duplicates == 0
    finally:
        consumer.close(5)
        pub.loop_stop()


@pytest.mark.django_db
def test_the_broker_sends_no_more_unacknowledged_messages_than_the_receive_maximum(
    stream_id: str, client_id: str
) -> None:
    consumer = make_consumer(stream_id, client_id, receive_maximum=40)
    pub = publisher()
    ids = [f"rm-{n:03d}" for n in range(120)]
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish_burst(pub, stream_id, ids)
        wait_for(lambda: consumer.unread == 40, 10)
        time.sleep(0.5)  # time for more to arrive, were the broker to send them
        assert consumer.unread == 40
        consumer.abort()  # read nothing more: the other 80 wait in the broker's queue for this session
        assert consumer.unread == 40

        survivor = make_consumer(stream_id, client_id, receive_maximum=40)
        run_until(survivor, lambda: survivor.dispatcher.stats.acked == len(ids), 30)
        survivor.close(5)
        assert raw_ids() == ids  # the 40 redelivered after the "crash" are stored once
    finally:
        pub.loop_stop()


@pytest.mark.django_db
def test_a_full_dispatcher_holds_the_rest_back_until_batches_commit(stream_id: str, client_id: str) -> None:
    dispatcher: Dispatcher[AckToken] = Dispatcher(
        "mqtt",
        mode="inprocess",
        batch_size=1000,
        max_delay_s=3600,
        max_buffered=10,
        wall_clock=lambda: ANCHOR,
    )
    consumer = MqttConsumer(dispatcher, [stream_id], TARGET, client_id=client_id)
    pub = publisher()
    ids = [f"bp-{n:02d}" for n in range(30)]
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish_burst(pub, stream_id, ids)
        run_until(consumer, lambda: consumer.unread == 20)
        for _ in range(5):
            consumer.step(0.01)
        assert (dispatcher.stats.received, dispatcher.stats.buffered, consumer.unread) == (10, 10, 20)
        assert consumer.acks_sent == 0 and raw_ids() == []

        dispatcher.max_delay_s = 0  # batches are cut now: the buffer drains and the held messages follow
        run_until(consumer, lambda: dispatcher.stats.acked == len(ids))
        assert raw_ids() == ids
        assert consumer.unread == 0
    finally:
        consumer.close(5)
        pub.loop_stop()


@pytest.mark.django_db
def test_consumers_in_one_share_group_split_the_stream_without_overlap(stream_id: str) -> None:
    group = f"g{uuid.uuid4().hex[:6]}"
    consumers = [
        make_consumer(stream_id, f"naap-share-{uuid.uuid4().hex[:8]}", share_group=group) for _ in range(2)
    ]
    assert consumers[0].topics == [f"$share/{group}/{stream_id}"]
    pub = publisher()
    ids = [f"sh-{n:03d}" for n in range(200)]
    try:
        for consumer in consumers:
            run_until(consumer, lambda c=consumer: c.subscribed)
        publish_burst(pub, stream_id, ids)

        def all_acked() -> bool:
            for consumer in consumers:
                consumer.step(0.05)
            return sum(c.dispatcher.stats.acked for c in consumers) == len(ids)

        wait_for(all_acked, 30, every_s=0)
        assert raw_ids() == ids
        received = [c.dispatcher.stats.received for c in consumers]
        assert sum(received) == len(ids)
        assert min(received) > 0
    finally:
        for consumer in consumers:
            consumer.close(5)
            drop_session(consumer.client_id)
        pub.loop_stop()


def test_only_payloads_that_may_be_wrapped_are_parsed_by_the_consumer() -> None:
    bare = json.dumps(status_event("b1")).encode()
    assert (message_of(bare, None).body, message_of(bare, None).value) == (bare, None)
    assert message_of(bare, True).value["id"] == "b1"  # the node wraps: parsed, taken bare if it is not
    wrapped_text = wrapped(status_event("w1"), 4).encode()
    for setting in (None, True):
        message = message_of(wrapped_text, setting)
        assert (message.value["id"], message.publisher) == ("w1", "0xaaaa")
        assert message.metadata is not None and message.metadata["sequenceNumber"] == 4
    assert message_of(wrapped_text, False).body == wrapped_text  # the node does not wrap: taken as is


def test_a_share_group_name_must_be_a_single_topic_level() -> None:
    assert shared_topic("a/b", None) == "a/b"
    assert shared_topic("a/b?partition=2", "naap") == "$share/naap/a/b?partition=2"
    with pytest.raises(ValueError, match="share group"):
        shared_topic("a/b", "x/y")
    with pytest.raises(ValueError, match="receive_maximum"):
        make_consumer("a/b", "c", receive_maximum=70_000)


@pytest.mark.django_db
def test_partitions_are_topics_with_a_partition_suffix(stream_id: str, client_id: str) -> None:
    assert stream_topic(stream_id, 0) == stream_id
    consumer = make_consumer(stream_id, client_id, partitions=[0, 3])
    assert consumer.topics == [stream_id, f"{stream_id}?partition=3"]
    pub = publisher()
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish(pub, f"{stream_id}?partition=3", json.dumps(status_event("p3")))
        publish(pub, f"{stream_id}?partition=1", json.dumps(status_event("p1")))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
        consumer.step(0.3)
        assert raw_ids() == ["p3"]
    finally:
        consumer.close(5)
        pub.loop_stop()


@pytest.mark.django_db
def test_messages_not_yet_committed_are_redelivered_after_a_crash(stream_id: str, client_id: str) -> None:
    # a dispatcher that never cuts a batch: messages are read but never committed, so never acknowledged
    crashing = make_consumer(stream_id, client_id, batch_size=1000, max_delay_s=3600)
    pub = publisher()
    try:
        run_until(crashing, lambda: crashing.subscribed)
        for i in range(4):
            publish(pub, stream_id, json.dumps(status_event(f"c{i}", i)))
        run_until(crashing, lambda: crashing.dispatcher.stats.received == 4)
        assert (crashing.acks_sent, crashing.dispatcher.pending) == (0, 4)
        crashing.abort()
        assert raw_ids() == []

        survivor = make_consumer(stream_id, client_id)
        run_until(survivor, lambda: survivor.dispatcher.stats.acked == 4)
        survivor.close(5)
        assert raw_ids() == ["c0", "c1", "c2", "c3"]

        # everything is acknowledged now: a third session gets nothing again
        third = make_consumer(stream_id, client_id)
        run_until(third, lambda: third.subscribed)
        third.step(0.5)
        assert third.dispatcher.stats.received == 0
        third.close(5)
    finally:
        pub.loop_stop()


@pytest.mark.django_db
def test_garbage_payloads_are_rejected_with_a_reason_and_the_consumer_carries_on(
    stream_id: str, client_id: str
) -> None:
    consumer = make_consumer(stream_id, client_id)
    pub = publisher()
    try:
        run_until(consumer, lambda: consumer.subscribed)
        publish(pub, stream_id, b"\xff\xfe\x00garbage")
        publish(pub, stream_id, "42")
        publish(pub, stream_id, json.dumps({"type": "ai_stream_status"}))
        publish(pub, stream_id, json.dumps(status_event("fine")))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 4)
        assert raw_ids() == ["fine"]
        reasons = sorted(RejectedEvent.objects.filter(source="mqtt").values_list("reason", flat=True))
        assert reasons == ["malformed_json", "missing_field", "not_an_object"]
        assert consumer.connected
    finally:
        consumer.close(5)
        pub.loop_stop()


class PrivateMosquitto:
    """A Mosquitto of our own on a free port, so that it can be restarted without touching the shared one."""

    def __init__(self) -> None:
        from tests.peers.kafka_broker import free_port

        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from tests.peers.kafka_broker import port_answers

        self.process = subprocess.Popen(
            ["/usr/sbin/mosquitto", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_answers(self.port), 20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.mark.skipif(
    not shutil.which("mosquitto", path="/usr/sbin:/usr/bin"), reason="needs the mosquitto binary"
)
@pytest.mark.django_db
def test_the_consumer_reconnects_and_resubscribes_after_the_broker_restarts(stream_id: str) -> None:
    broker = PrivateMosquitto()
    broker.start()
    dispatcher: Dispatcher[AckToken] = Dispatcher(
        "mqtt", mode="inprocess", batch_size=50, max_delay_s=0.05, wall_clock=lambda: ANCHOR
    )
    target = MqttTarget.from_url(f"mqtt://naap@127.0.0.1:{broker.port}", api_key="k")
    consumer = MqttConsumer(dispatcher, [stream_id], target, client_id="restart-test", reconnect_max_s=2)
    try:
        run_until(consumer, lambda: consumer.subscribed)
        broker.stop()
        run_until(consumer, lambda: not consumer.connected)
        broker.start()
        run_until(consumer, lambda: consumer.subscribed and consumer.connects == 2, 60)
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        publish(pub, stream_id, json.dumps(status_event("after-restart")))
        pub.loop_stop()
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
        assert raw_ids() == ["after-restart"]
    finally:
        consumer.close(5)
        broker.stop()


def test_consume_mqtt_passes_protocol_receive_maximum_and_share_group_to_the_consumer() -> None:
    from django.core.management.base import CommandError

    from telemetry.management.commands import consume_mqtt

    command = consume_mqtt.Command()
    parser = command.create_parser("manage.py", "consume_mqtt")
    common = ["--streams=s/t", "--mode=inprocess"]
    consumer = command.setup(**vars(parser.parse_args(common)))
    assert isinstance(consumer, MqttConsumer)
    assert (consumer.protocol, consumer.receive_maximum, consumer.topics) == ("5", 65_535, ["s/t"])

    argv = [*common, "--protocol=3.1.1", "--receive-maximum=500", "--share-group=naap"]
    consumer = command.setup(**vars(parser.parse_args(argv)))
    assert isinstance(consumer, MqttConsumer)
    assert (consumer.protocol, consumer.receive_maximum, consumer.topics) == (
        "3.1.1",
        500,
        ["$share/naap/s/t"],
    )

    with pytest.raises(CommandError, match="share group"):
        command.setup(**vars(parser.parse_args([*common, "--share-group=a/b"])))
    with pytest.raises(CommandError, match="receive_maximum"):
        command.setup(**vars(parser.parse_args([*common, "--receive-maximum=0"])))


class Mqtt311OnlyProxy:
    """A broker that speaks MQTT 3.1.1 only: MQTT 5 CONNECTs get return code 1, the rest reach Mosquitto."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.levels: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            first = client.recv(4096)
            # fixed header (1 byte + 1 length byte for a short CONNECT), then "\x00\x04MQTT", then the level
            level = first[8] if len(first) > 8 else 0
            self.levels.append(level)
            if level == 5:
                client.sendall(bytes([0x20, 0x02, 0x00, 0x01]))  # CONNACK: unacceptable protocol version
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", 1883))
            upstream.sendall(first)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        self.server.close()


@pytest.mark.django_db
def test_a_broker_without_mqtt_5_gets_a_311_connection_instead(stream_id: str, client_id: str) -> None:
    proxy = Mqtt311OnlyProxy()
    dispatcher: Dispatcher[AckToken] = Dispatcher(
        "mqtt", mode="inprocess", batch_size=50, max_delay_s=0.05, wall_clock=lambda: ANCHOR
    )
    target = MqttTarget.from_url(f"mqtt://naap@127.0.0.1:{proxy.port}", api_key="k")
    consumer = MqttConsumer(dispatcher, [stream_id], target, client_id=client_id, reconnect_max_s=1)
    pub = publisher()
    try:
        run_until(consumer, lambda: consumer.subscribed)
        assert consumer.protocol == "3.1.1"
        assert proxy.levels[:2] == [5, 4]  # refused as MQTT 5, accepted as 3.1.1 (level 4)
        publish(pub, stream_id, json.dumps(status_event("via-311")))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
        assert raw_ids() == ["via-311"]
    finally:
        consumer.close(5)
        pub.loop_stop()
        proxy.close()
