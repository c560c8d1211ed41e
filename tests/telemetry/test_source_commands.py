from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from django.conf import settings
from django.core.management import BaseCommand
from django.core.management.base import CommandError
from paho.mqtt.enums import CallbackAPIVersion

from telemetry.management.commands import consume_kafka, consume_mqtt, consume_streamr
from tests.peers.streamr_node import StreamrNode
from tests.telemetry.conftest import ROOT, raw_ids, status_event, wait_for, worker_env

STREAM = "0xabcdef0123456789abcdef0123456789abcdef01/naap/commands"


def parsed(command: BaseCommand, name: str, *argv: str) -> dict[str, Any]:
    return vars(command.create_parser("manage.py", name).parse_args(list(argv)))


@pytest.mark.django_db
def test_consume_streamr_steps_ingest_from_the_configured_stream(streamr_node: StreamrNode) -> None:
    command = consume_streamr.Command()
    options = parsed(
        command,
        "consume_streamr",
        f"--url={streamr_node.url}",
        "--api-key=test-api-key",
        f"--streams={STREAM}",
        "--partitions=0",
        "--mode=inprocess",
        "--max-delay-ms=20",
    )
    command.setup(**options)
    wait_for(lambda: (command.step(0.1), streamr_node.subscriber_count(STREAM))[1] == 1)
    streamr_node.publish(STREAM, status_event("cmd-1"))
    wait_for(lambda: (command.step(0.1), raw_ids())[1] == ["cmd-1"])
    assert command.consumer is not None
    assert command.consumer.progress()["acked"] == 1
    command.consumer.close(5)


def test_consumers_refuse_to_start_without_streams_or_topics() -> None:
    for module, name, flag in (
        (consume_streamr, "consume_streamr", "--streams="),
        (consume_mqtt, "consume_mqtt", "--streams="),
        (consume_kafka, "consume_kafka", "--topics="),
    ):
        command = module.Command()
        with pytest.raises(CommandError, match="no "):
            command.setup(**parsed(command, name, flag, "--mode=inprocess"))


def test_an_mqtt_url_with_another_scheme_is_refused() -> None:
    command = consume_mqtt.Command()
    with pytest.raises(CommandError, match="scheme"):
        command.setup(
            **parsed(command, "consume_mqtt", "--url=http://x:1", "--streams=s", "--mode=inprocess")
        )


@pytest.mark.slow
def test_consume_mqtt_commits_its_buffer_and_exits_cleanly_on_sigterm(clean_time_tables: None) -> None:
    stream = f"naap-test/{uuid.uuid4().hex}"
    client_id = f"naap-cmd-{uuid.uuid4().hex[:10]}"
    env = {**worker_env(settings.DATABASES["default"]["NAME"]), "NAAP_SOURCE_MODE": "inprocess"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "consume_mqtt",
            f"--streams={stream}",
            f"--client-id={client_id}",
            "--max-delay-ms=600000",  # nothing is committed before the shutdown flush
            "--progress-every=0.2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    publisher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    try:
        # the durable session exists once the command subscribed; QoS 1 messages then wait for it
        assert proc.stderr is not None
        wait_for(lambda: b"connects=1" in proc.stderr.readline(), 60, every_s=0)
        for i in range(3):
            publisher.publish(stream, json.dumps(status_event(f"sig-{i}", i)), qos=1).wait_for_publish(10)
        wait_for(lambda: b"received=3" in proc.stderr.readline(), 60, every_s=0)
        assert raw_ids() == []
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        publisher.loop_stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert (summary["accepted"], summary["acked"], summary["acks_sent"]) == (3, 3, 3)
    assert raw_ids() == ["sig-0", "sig-1", "sig-2"]
    assert b"stopping, committing what was read" in err
