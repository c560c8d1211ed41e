from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.db import connection
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from telemetry.models import RejectedEvent
from telemetry.sources.dispatch import Dispatcher
from telemetry.sources.streamr import GapTracker, StreamrConsumer, decode_payload, subscribe_url
from tests.conftest import ANCHOR
from tests.peers.streamr_node import StreamrNode
from tests.telemetry.conftest import raw_ids, status_event, wait_for

STREAM = "0xabcdef0123456789abcdef0123456789abcdef01/naap/telemetry"


def make_consumer(node: StreamrNode, **kwargs: object) -> StreamrConsumer:
    dispatcher: Dispatcher[None] = Dispatcher(
        "streamr", mode="inprocess", batch_size=50, max_delay_s=0.05, wall_clock=lambda: ANCHOR
    )
    options: dict[str, object] = {"streams": [STREAM], "base_url": node.url, "api_key": "test-api-key"}
    options.update(kwargs)
    return StreamrConsumer(dispatcher, **options)  # type: ignore[arg-type]


def run_until(consumer: StreamrConsumer, condition: object, timeout_s: float = 30.0) -> None:
    def stepped() -> bool:
        consumer.step(0.1)
        return bool(condition())  # type: ignore[operator]

    wait_for(stepped, timeout_s, every_s=0)


@pytest.fixture
def consumer(streamr_node: StreamrNode) -> Iterator[StreamrConsumer]:
    c = make_consumer(streamr_node)
    yield c
    c.close(5)


@pytest.mark.django_db
def test_published_events_reach_the_raw_log_with_their_streamr_metadata(
    streamr_node: StreamrNode, consumer: StreamrConsumer
) -> None:
    run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1)
    for i in range(3):
        streamr_node.publish(STREAM, status_event(f"e{i}", i), timestamp=1_000 + i)
    run_until(consumer, lambda: consumer.dispatcher.stats.acked == 3)
    assert raw_ids() == ["e0", "e1", "e2"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT source, publisher, payload -> '_streamr' FROM telemetry_events_raw ORDER BY event_id"
        )
        rows = cursor.fetchall()
    assert {(r[0], r[1]) for r in rows} == {("streamr", "0x1111111111111111111111111111111111111111")}
    metadata = rows[2][2] if isinstance(rows[2][2], dict) else json.loads(rows[2][2])
    assert metadata == {
        "timestamp": 1002,
        "sequenceNumber": 0,
        "publisherId": "0x1111111111111111111111111111111111111111",
        "msgChainId": "chain-1",
    }


@pytest.mark.django_db
def test_the_subscription_url_encodes_the_stream_id_and_carries_key_and_partitions(
    streamr_node: StreamrNode,
) -> None:
    streamr_node.partition_counts[STREAM] = 3
    consumer = make_consumer(streamr_node, partitions=[0, 2])
    try:
        run_until(consumer, lambda: streamr_node.subscriber_count(STREAM, 2) == 1)
        assert streamr_node.subscribe_requests == [
            "/streams/0xabcdef0123456789abcdef0123456789abcdef01%2Fnaap%2Ftelemetry/subscribe"
            "?apiKey=test-api-key&partitions=0%2C2"
        ]
        streamr_node.publish(STREAM, status_event("p1"), partition=1)
        streamr_node.publish(STREAM, status_event("p2", 1), partition=2)
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
        consumer.step(0.3)
        assert raw_ids() == ["p2"]
    finally:
        consumer.close(5)


@pytest.mark.django_db
def test_a_wrong_api_key_is_refused_and_retried_with_growing_delays(streamr_node: StreamrNode) -> None:
    consumer = make_consumer(streamr_node, api_key="wrong")
    consumer.step(0.2)
    assert consumer.connected == 0
    sub = consumer._subs[0]
    assert sub.backoff.failures == 1
    wait_for(lambda: (consumer.step(0.1), sub.backoff.failures >= 3)[1], 15)
    # 0.5 s, then 1 s, then 2 s: the next attempt is at least 2 s away
    assert sub.retry_at - consumer.clock() > 1.0
    assert streamr_node.subscriber_count(STREAM) == 0


@pytest.mark.django_db
def test_bare_content_without_payload_metadata_is_ingested_too() -> None:
    node = StreamrNode(payload_metadata=False).start()
    consumer = make_consumer(node)
    try:
        run_until(consumer, lambda: node.subscriber_count(STREAM) == 1)
        node.publish(STREAM, status_event("bare"))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
        assert raw_ids() == ["bare"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT payload ? '_streamr', publisher FROM telemetry_events_raw")
            assert cursor.fetchone() == (False, "")
    finally:
        consumer.close(5)
        node.stop()


@pytest.mark.django_db
def test_lost_messages_are_counted_as_gaps_per_publisher_chain(
    streamr_node: StreamrNode, consumer: StreamrConsumer
) -> None:
    run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1)
    other = "0x2222222222222222222222222222222222222222"
    streamr_node.publish(STREAM, status_event("a0"), timestamp=5_000)
    streamr_node.publish(STREAM, status_event("a1"), timestamp=5_000, deliver=False)  # seq 1 lost
    streamr_node.publish(STREAM, status_event("a2"), timestamp=5_000)  # seq 2
    streamr_node.publish(STREAM, status_event("b0"), timestamp=5_000, publisher_id=other)
    streamr_node.publish(STREAM, status_event("b1"), timestamp=6_000, publisher_id=other)  # seq 0: no gap
    run_until(consumer, lambda: consumer.dispatcher.stats.acked == 4)
    assert consumer.gaps.gaps == {("0x1111111111111111111111111111111111111111", "chain-1"): 1}
    assert consumer.progress()["gaps"] == 1


def test_gap_tracker_sees_skipped_sequence_numbers_and_ignores_redelivery() -> None:
    tracker = GapTracker()
    meta = {"publisherId": "0xA", "msgChainId": "c"}
    assert tracker.observe({**meta, "timestamp": 10, "sequenceNumber": 0}) == 0
    assert tracker.observe({**meta, "timestamp": 10, "sequenceNumber": 3}) == 2
    assert tracker.observe({**meta, "timestamp": 10, "sequenceNumber": 3}) == 0  # re-delivery
    assert tracker.observe({**meta, "timestamp": 20, "sequenceNumber": 2}) == 2  # 0 and 1 of ts 20 lost
    assert tracker.gaps == {("0xa", "c"): 4}
    assert tracker.out_of_order == 1


def test_payload_formats_are_recognised() -> None:
    wrapped = decode_payload(
        json.dumps(
            {
                "content": {"type": "x"},
                "metadata": {"timestamp": 1, "sequenceNumber": 0, "publisherId": "0xAB", "msgChainId": "m"},
            }
        )
    )
    assert (wrapped.value, wrapped.publisher, wrapped.metadata["msgChainId"]) == ({"type": "x"}, "0xab", "m")
    bare = decode_payload('{"content": "hello", "type": "note"}')  # content field, but no metadata
    assert (bare.value, bare.metadata) == ({"content": "hello", "type": "note"}, None)
    assert decode_payload("{broken").body == "{broken"
    assert subscribe_url("ws://h:7170/", "a/b c", None, "") == "ws://h:7170/streams/a%2Fb%20c/subscribe"


@pytest.mark.django_db
def test_the_consumer_reconnects_after_the_node_restarts(
    streamr_node: StreamrNode, consumer: StreamrConsumer
) -> None:
    run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1)
    streamr_node.publish(STREAM, status_event("before"))
    run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
    streamr_node.restart()
    run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1)
    streamr_node.publish(STREAM, status_event("after", 1))
    run_until(consumer, lambda: consumer.dispatcher.stats.acked == 2)
    assert raw_ids() == ["after", "before"]
    assert consumer.reconnects == 1


@pytest.mark.django_db
def test_garbage_from_the_node_goes_to_the_rejected_table_and_the_consumer_carries_on(
    streamr_node: StreamrNode, consumer: StreamrConsumer
) -> None:
    run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1)
    streamr_node.deliver_raw(STREAM, "{not json at all")
    streamr_node.deliver_raw(STREAM, "[1, 2, 3]")
    streamr_node.publish(STREAM, {"hello": "world"})  # an object, but not an event
    streamr_node.deliver_raw(STREAM, "\x00\xff binary-ish")
    streamr_node.publish(STREAM, status_event("good"))
    run_until(consumer, lambda: consumer.dispatcher.stats.acked == 5)
    assert raw_ids() == ["good"]
    reasons = sorted(RejectedEvent.objects.filter(source="streamr").values_list("reason", flat=True))
    # the array is split into its elements, each refused on its own
    assert reasons == ["malformed_json", "malformed_json", "missing_field"] + ["not_an_object"] * 3
    assert consumer.connected == 1


@pytest.mark.django_db
def test_the_consumer_pings_when_idle_and_reconnects_to_a_node_that_stops_answering(
    streamr_node: StreamrNode,
) -> None:
    consumer = make_consumer(streamr_node, idle_ping_s=0.3, liveness_timeout_s=1.0)
    try:
        run_until(consumer, lambda: consumer.pongs >= 1, 15)
        streamr_node.freeze(3.0)
        run_until(consumer, lambda: consumer.reconnects >= 1, 30)
        run_until(consumer, lambda: streamr_node.subscriber_count(STREAM) == 1, 15)
        streamr_node.publish(STREAM, status_event("alive"))
        run_until(consumer, lambda: consumer.dispatcher.stats.acked == 1)
    finally:
        consumer.close(5)


def test_the_node_refuses_content_that_is_not_an_object(streamr_node: StreamrNode) -> None:
    url = f"{streamr_node.url}/streams/{STREAM.replace('/', '%2F')}/publish?apiKey=test-api-key"
    with connect(url, proxy=None) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "pong"
        ws.send("[1, 2]")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1011, "Content is not an object")
    assert streamr_node.refused == ["Content is not an object"]
