"""Fact extraction: one normalised event → rows of the typed fact tables (``telemetry/tables.py``).

Every row starts with (event_time, dedup_key, received_at) in the table's column order.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from telemetry.contracts import Event
from telemetry.tables import TimeTable


def extract_facts(event: Event, received: datetime) -> Iterator[tuple[TimeTable, tuple[Any, ...]]]:
    return iter(())
