"""Simulate a Livepeer AI network: write JSON lines with ground truth, or publish to a source."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.contracts import Rejection
from telemetry.contracts.values import parse_timestamp
from telemetry.simulator import SimConfig, Simulation, parse_duration, publish, truth_path, write_file
from telemetry.simulator.output import Progress, make_sink

DEFAULT_START = "2026-01-09T12:00:00Z"  # fixed, so that a seed always gives the same file


def parse_start(text: str) -> datetime:
    """An ISO time or Unix ms; ``now``, or ``now-30m`` to begin with a backlog published at once."""
    lowered = text.strip().lower()
    if lowered.startswith("now"):
        now = datetime.now(tz=UTC).replace(microsecond=0)
        rest = lowered[3:].strip()
        if not rest:
            return now
        if not rest.startswith("-"):
            raise CommandError(f"--start {text!r}: use now or now-DURATION (e.g. now-30m)")
        try:
            return now - timedelta(seconds=parse_duration(rest[1:]))
        except ValueError as exc:
            raise CommandError(f"--start {text!r}: {rest[1:]!r} is not a duration") from exc
    try:
        return parse_timestamp(text, "--start")
    except Rejection as exc:
        raise CommandError(exc.detail) from exc


class Command(BaseCommand):
    help = "Simulate gateways, orchestrators and streams; write JSON lines (+ .truth.json) or publish."
    requires_system_checks: list[str] = []  # needs no database and no URL configuration

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--duration", default="30m", help="30m, 2h, 1d, seconds, or inf")
        parser.add_argument("--orchestrators", type=int, default=12)
        parser.add_argument("--gateways", type=int, default=3)
        parser.add_argument("--streams-per-min", type=float, default=None, help="default 0.6 × orchestrators")
        parser.add_argument("--rate", type=float, default=0.0, help="publish at most EV_PER_S (0: no limit)")
        parser.add_argument("--start", default=DEFAULT_START, help="ISO time, Unix ms, or 'now'")
        parser.add_argument("--batch", type=int, default=500, help="events per HTTP request")
        parser.add_argument(
            "--realtime",
            action="store_true",
            help="publish each event when its time comes (with --start now)",
        )
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--out", type=Path, help="write JSON lines here and FILE.truth.json beside it")
        target.add_argument("--publish", help="http://HOST/v1/ingest or mqtt://HOST:1883/TOPIC")
        parser.add_argument("--api-key", default="", help="publisher API key (HTTP) or MQTT password")
        parser.add_argument("--truth", type=Path, default=None, help="with --publish: write the truth here")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["orchestrators"] < 1 or options["gateways"] < 1:
            raise CommandError("--orchestrators and --gateways must be at least 1")
        try:
            duration = parse_duration(options["duration"])
        except ValueError as exc:
            raise CommandError(f"--duration {options['duration']!r} is not a duration") from exc
        config = SimConfig(
            seed=options["seed"],
            start=parse_start(options["start"]),
            duration_s=duration,
            orchestrators=options["orchestrators"],
            gateways=options["gateways"],
            streams_per_min=options["streams_per_min"],
        )
        sim = Simulation(config)
        self._stop = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if options["out"] is not None:
            if duration == float("inf"):
                raise CommandError("--out needs a finite --duration")
            document = write_file(sim, options["out"], Progress(f"simulate → {options['out'].name}"))
            summary = {"out": str(options["out"]), "truth": str(truth_path(options["out"]))}
            summary.update(document["delivery"] | {"events_by_type": None, "trace_types": None})
            self.stdout.write(json.dumps({k: v for k, v in summary.items() if v is not None}))
            return
        logging.getLogger("httpx").setLevel(logging.WARNING)  # progress lines say enough
        try:
            sink = make_sink(options["publish"], options["api_key"])
        except (ValueError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        try:
            sent = publish(
                sim,
                sink,
                rate=options["rate"],
                batch=options["batch"],
                realtime=options["realtime"],
                progress=Progress(f"simulate → {options['publish']}"),
                should_stop=lambda: self._stop,
            )
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        if options["truth"] is not None:
            options["truth"].write_text(json.dumps(sim.truth_document(), indent=1) + "\n")
        self.stdout.write(json.dumps({"published": sent, "target": options["publish"]}))
        sys.stdout.flush()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = True
