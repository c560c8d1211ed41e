"""Bring sessions up to date with the facts: ``sla_derive`` (incremental) or ``sla_derive --rebuild``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sla.sessions.derive import DEFAULT_CHUNK, derive


class Command(BaseCommand):
    help = (
        "Derive sessions, orchestrator segments and segment-minutes from the fact tables. Without options, "
        "only streams with new facts (or whose silence deadline passed) are re-assembled; --rebuild clears "
        "the session tables and derives everything again (same rows). Progress goes to stderr; the summary "
        "is one JSON line on stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rebuild", action="store_true", help="clear and re-derive every session")
        parser.add_argument(
            "--chunk", type=int, default=DEFAULT_CHUNK, help=f"streams per transaction ({DEFAULT_CHUNK})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        chunk = options["chunk"]
        if chunk < 1:
            raise CommandError("--chunk must be at least 1")

        def progress(done: int, total: int) -> None:
            self.stderr.write(f"sla_derive: {done}/{total} streams")
            self.stderr.flush()

        stats = derive(rebuild=options["rebuild"], chunk_size=chunk, progress=progress)
        summary = {
            "streams": stats.streams,
            "sessions": stats.sessions,
            "segments": stats.segments,
            "minutes": stats.minutes,
            "facts": stats.facts,
            "seconds": round(stats.seconds, 3),
            "facts_per_s": round(stats.facts_per_second),
            "position": stats.position.isoformat() if stats.position else None,
            "dirty": [
                stats.dirty_start.isoformat() if stats.dirty_start else None,
                stats.dirty_end.isoformat() if stats.dirty_end else None,
            ],
        }
        self.stdout.write(json.dumps(summary))
