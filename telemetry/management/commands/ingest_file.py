"""Replay files of events (JSON lines or JSON arrays) through the ingest pipeline."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.pipeline.ingest import IngestResult, Message, ingest_messages


def iter_chunks(path: Path, batch_lines: int) -> Any:
    """Yield (bytes_read, body) chunks: a whole JSON array file at once, JSON lines in groups."""
    with path.open("rb") as handle:
        first = handle.read(1)
        while first and first.isspace():
            first = handle.read(1)
        handle.seek(0)
        if first == b"[":
            data = handle.read()
            yield len(data), data
            return
        lines: list[bytes] = []
        read = 0
        for line in handle:
            read += len(line)
            lines.append(line)
            if len(lines) >= batch_lines:
                yield read, b"".join(lines)
                lines = []
        if lines:
            yield read, b"".join(lines)


class Command(BaseCommand):
    help = "Ingest events from files; ends with one JSON line of counts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--source", default="file")
        parser.add_argument("--batch", type=int, default=settings.NAAP_INGEST_BATCH_SIZE)
        parser.add_argument("--publisher", default="", help="publisher name recorded on each event")

    def handle(self, *args: Any, **options: Any) -> None:
        self._stop = False
        signal.signal(signal.SIGTERM, self._on_signal)
        total = IngestResult()
        for path in options["paths"]:
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            size = path.stat().st_size or 1
            last_report = time.monotonic()
            for read, body in iter_chunks(path, options["batch"]):
                if self._stop:
                    break
                total.add(
                    ingest_messages(
                        [Message(body=body, publisher=options["publisher"])], source=options["source"]
                    )
                )
                if time.monotonic() - last_report > 2:
                    last_report = time.monotonic()
                    sys.stderr.write(
                        f"{path.name}: {100 * read / size:5.1f}% accepted={total.accepted} "
                        f"duplicates={total.duplicates} rejected={total.rejected}\n"
                    )
        self.stdout.write(json.dumps(total.as_dict()))

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stop = True
