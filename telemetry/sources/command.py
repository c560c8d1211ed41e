"""The shared shape of the ``consume_*`` management commands.

Each command builds one consumer from settings and flags, then calls :meth:`ConsumerCommand.step` until
SIGTERM or SIGINT. On a signal it stops reading, commits what it buffered, acknowledges what committed and
exits; progress lines go to stderr and a JSON summary to stdout.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from abc import ABCMeta, abstractmethod
from typing import Any, Protocol

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from telemetry.sources.dispatch import Dispatcher, Mode


class Consumer(Protocol):
    def step(self, timeout_s: float = 0.5) -> int: ...
    def close(self, flush_timeout_s: float = 30.0) -> None: ...
    def progress(self) -> dict[str, int]: ...


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class ConsumerCommand(BaseCommand, metaclass=ABCMeta):
    source = "source"
    consumer: Consumer | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--mode", choices=("auto", "celery", "inprocess"), default=settings.NAAP_SOURCE_MODE
        )
        parser.add_argument(
            "--batch", type=int, default=settings.NAAP_INGEST_BATCH_SIZE, help="messages per batch"
        )
        parser.add_argument(
            "--max-delay-ms", type=int, default=settings.NAAP_SOURCE_MAX_DELAY_MS, help="cut a batch this old"
        )
        parser.add_argument("--max-in-flight", type=int, default=settings.NAAP_SOURCE_MAX_IN_FLIGHT)
        parser.add_argument(
            "--progress-every", type=float, default=10.0, help="seconds between progress lines"
        )
        parser.add_argument("--max-seconds", type=float, default=0.0, help="stop after this long (0: never)")
        parser.add_argument("--flush-timeout", type=float, default=60.0)

    def make_dispatcher(self, options: dict[str, Any]) -> Dispatcher[Any]:
        mode: Mode = options["mode"]
        return Dispatcher(
            self.source,
            mode=mode,
            batch_size=options["batch"],
            max_delay_s=options["max_delay_ms"] / 1000,
            max_in_flight=options["max_in_flight"],
            result_timeout_s=float(settings.NAAP_SOURCE_RESULT_TIMEOUT_S),
        )

    @abstractmethod
    def build_consumer(self, options: dict[str, Any]) -> Consumer:
        """The source's consumer, built from the command's options (each consume_* command says how)."""

    def setup(self, **options: Any) -> Consumer:
        """Build the consumer from the options (tests call this, then :meth:`step`)."""
        self.consumer = self.build_consumer(options)
        self._stop = False
        self._last_report = time.monotonic()
        self._progress_every = float(options.get("progress_every", 10.0))
        return self.consumer

    def step(self, timeout_s: float = 0.5) -> int:
        assert self.consumer is not None
        read = self.consumer.step(timeout_s)
        if time.monotonic() - self._last_report >= self._progress_every:
            self._last_report = time.monotonic()
            self.report()
        return read

    def report(self) -> None:
        assert self.consumer is not None
        line = " ".join(f"{k}={v}" for k, v in self.consumer.progress().items())
        sys.stderr.write(f"{self.source}: {line}\n")
        sys.stderr.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        consumer = self.setup(**options)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        started = time.monotonic()
        limit = float(options.get("max_seconds") or 0)
        sys.stderr.write(f"{self.source}: consuming (Ctrl-C or SIGTERM to stop)\n")
        try:
            while not self._stop and not (limit and time.monotonic() - started > limit):
                self.step()
        finally:
            sys.stderr.write(f"{self.source}: stopping, committing what was read\n")
            consumer.close(options.get("flush_timeout", 60.0))
            self.report()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(json.dumps(consumer.progress()))

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = True
