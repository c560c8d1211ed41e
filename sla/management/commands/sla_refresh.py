"""Bring sessions, rollups and scores up to date synchronously, print a summary and exit."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from sla.tasks import run_pipeline


class Command(BaseCommand):
    help = "Derive sessions, refresh rollups over changed ranges and compute the touched scores, once."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = run_pipeline()
        for table, buckets in sorted(summary.rollups.buckets_refreshed.items()):
            self.stdout.write(f"  {table}: {buckets} buckets")
        if summary.rollups.skipped:
            self.stdout.write("another refresh is running; nothing done")
        self.stdout.write(self.style.SUCCESS(f"sla_refresh: {summary.line()}"))
