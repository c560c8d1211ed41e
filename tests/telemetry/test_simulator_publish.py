"""Simulated events go through the real pipeline: a file via ingest_file, HTTP ingest, and MQTT."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.models import Publisher, RejectedEvent
from telemetry.simulator import SimConfig, Simulation, publish, write_file
from telemetry.simulator.output import HttpSink, MqttSink
from tests.conftest import ANCHOR


def small() -> Simulation:
    return Simulation(SimConfig(seed=21, start=ANCHOR, duration_s=240, orchestrators=4, streams_per_min=6))


def raw_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_events_raw")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db
def test_a_simulated_file_ingests_with_no_rejections(tmp_path: Path) -> None:
    path = tmp_path / "sim.jsonl"
    truth = write_file(small(), path)
    out = io.StringIO()
    call_command("ingest_file", str(path), "--batch", "500", stdout=out)
    counts = json.loads(out.getvalue().strip().splitlines()[-1])
    assert counts["rejected"] == 0, counts["rejected_by_reason"]
    assert counts["accepted"] == truth["delivery"]["unique_events"] == raw_count()
    assert counts["duplicates"] == truth["delivery"]["duplicates_delivered"]
    assert RejectedEvent.objects.count() == 0


def test_publishing_over_http_stores_every_event_once(live_server: Any, clean_time_tables: None) -> None:
    _, key = Publisher.create_with_key("simulator-test")
    sim = small()
    sink = HttpSink(f"{live_server.url}/v1/ingest", key)
    sent = publish(sim, sink, rate=0, batch=300)
    truth = sim.truth
    assert sent == truth.lines
    assert sink.rejected == 0
    assert sink.accepted == sum(truth.events_by_type.values()) == raw_count()
    assert sink.duplicates == truth.duplicates_delivered


def test_publishing_over_http_with_a_wrong_key_fails_clearly(
    live_server: Any, clean_time_tables: None
) -> None:
    sink = HttpSink(f"{live_server.url}/v1/ingest", "naap_not_a_key")
    with pytest.raises(RuntimeError, match="401"):
        publish(small(), sink, rate=0, batch=100)


def test_publishing_to_mqtt_delivers_every_event_as_one_json_object() -> None:
    import paho.mqtt.client as mqtt

    topic = f"naap-test/simulator/{id(object()):x}"
    received: list[bytes] = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        sim = Simulation(SimConfig(seed=2, start=ANCHOR, duration_s=60, orchestrators=2, streams_per_min=4))
        sent = publish(sim, MqttSink(f"mqtt://127.0.0.1:1883/{topic}"), rate=0, batch=50)
        deadline = threading.Event()
        for _ in range(100):
            if len(received) >= sent:
                break
            deadline.wait(0.1)
    finally:
        client.loop_stop()
        client.disconnect()
    assert sent == sim.truth.lines > 20
    assert len(received) == sent
    assert all(isinstance(json.loads(body), dict) for body in received)
