"""Re-derive every fact table from the raw log for a time range: ``rebuild --from T --to T``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from telemetry.services import rebuild_facts


def parse_moment(text: str) -> datetime:
    """ISO 8601 date or date-time; one without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{text!r} is not an ISO 8601 date or time (e.g. 2026-01-09T14:00Z)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Delete and re-extract the facts of the raw events with event_time in [--from, --to), one UTC day "
        "per transaction. Progress goes to stderr; the summary is one JSON line on stdout. An interrupted "
        "run can be resumed with --from set to the last reported done_until."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help="start (inclusive), ISO 8601")
        parser.add_argument("--to", dest="end", required=True, help="end (exclusive), ISO 8601")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = parse_moment(options["start"]), parse_moment(options["end"])
        if end <= start:
            raise CommandError("--to must be after --from")

        def progress(info: dict[str, Any]) -> None:
            self.stderr.write(
                f"rebuild: chunk {info['chunk']}/{info['chunks']} done until {info['done_until']} "
                f"raw={info['raw_events']} facts={info['facts_written']}"
            )
            self.stderr.flush()

        summary = rebuild_facts(start, end, progress=progress)
        self.stdout.write(json.dumps(summary))
