from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.contracts import Rejection, normalise
from telemetry.pipeline.facts import extract_facts
from telemetry.pipeline.ingest import Message, ingest_messages, prepare
from tests.conftest import ANCHOR
from tests.telemetry.fuzzing import EXAMPLES, json_values, mutated_examples

FIVE_MINUTES = timedelta(minutes=5)
_counter: list[int] = []


def accept_or_reject(value: object) -> None:
    """The contract property: either a Rejection, or an event whose facts extract without error."""
    try:
        event = normalise(value, publisher="fuzz", now=ANCHOR, max_future=FIVE_MINUTES)
    except Rejection as rejection:
        assert rejection.reason
        return
    for table, row in extract_facts(event, ANCHOR):
        assert len(row) == len(table.columns)
        assert row[0].tzinfo is not None


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_either_accepted_or_rejected_with_a_reason(value: object) -> None:
    accept_or_reject(value)


@settings(max_examples=300, deadline=None)
@given(mutated_examples())
def test_a_mutated_real_example_is_either_accepted_or_rejected_with_a_reason(value: object) -> None:
    accept_or_reject(value)


@settings(max_examples=150, deadline=None)
@given(st.lists(mutated_examples() | json_values, min_size=1, max_size=5), st.sampled_from(EXAMPLES))
def test_bad_neighbours_never_cost_a_good_event_its_place_in_the_batch(junk: list[Any], good: Any) -> None:
    batch = [*junk, copy.deepcopy(good)]
    body = json.dumps(batch)
    events, refused, duplicates = prepare([Message(body=body)], ANCHOR)
    good_event = normalise(good, publisher="", now=ANCHOR, max_future=FIVE_MINUTES)
    assert good_event.dedup_key in {e.dedup_key for e in events}
    assert len(events) + len(refused) + duplicates == len(batch)


@pytest.mark.django_db
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(mutated_examples(), min_size=1, max_size=4), st.sampled_from(EXAMPLES))
def test_mutated_events_are_stored_or_rejected_and_the_good_one_is_always_stored(
    junk: list[Any], good: Any
) -> None:
    """Through the database: facts of any accepted mutation are writable, so the batch never fails."""
    marker = copy.deepcopy(good)
    _counter.append(1)
    marker["event_id" if "event_type" in marker else "id"] = f"good-{len(_counter)}"  # unique per example
    body = "\n".join(json.dumps(e) for e in [*junk, marker])
    result = ingest_messages([Message(body=body)], source="fuzz", received_at=ANCHOR)
    assert result.accepted + result.duplicates + result.rejected == len(junk) + 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM telemetry_events_raw WHERE payload = %s::jsonb", [json.dumps(marker)]
        )
        assert cursor.fetchone()[0] == 1
