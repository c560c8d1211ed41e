"""Compute SLA scores for windows ending at hour boundaries in a time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sla.refresh import ceil_to, floor_to
from sla.scores import WINDOWS, compute_scores

HOUR = timedelta(hours=1)


def _moment(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise CommandError(f"time needs a timezone: {text!r}")
    return value.astimezone(UTC)


class Command(BaseCommand):
    help = "Compute scores (1h and 24h windows) for every hour boundary in [--from, --to]; default: the last hour."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="first window end (ISO 8601 with timezone)")
        parser.add_argument("--to", dest="end", help="last window end (ISO 8601 with timezone)")
        parser.add_argument("--window", choices=sorted(WINDOWS), action="append", help="only these windows")

    def handle(self, *args: Any, **options: Any) -> None:
        now = datetime.now(UTC)
        end = ceil_to(_moment(options["end"]) if options["end"] else now, HOUR)
        start = floor_to(_moment(options["start"]), HOUR) if options["start"] else end
        if start > end:
            raise CommandError("--from is after --to")
        if (end - start) > timedelta(days=90):
            raise CommandError("at most 90 days of window ends at once")
        ends = []
        moment = max(start, floor_to(start, HOUR))
        while moment <= end:
            ends.append(moment)
            moment += HOUR
        windows = tuple(options["window"] or WINDOWS)
        summary = compute_scores(ends, windows=windows, now=now)
        self.stdout.write(
            self.style.SUCCESS(
                f"compute_scores: {summary.windows} windows, {summary.scores} scores, {summary.sufficient} sufficient"
            )
        )
