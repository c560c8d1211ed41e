"""Ingest enforcement of publisher access: off, report and enforce, at the event's time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from telemetry.access.backends import DatabaseBackend
from telemetry.access.enforcement import forget_authorised_set
from telemetry.access.services import reconcile, revoke_delegation, set_access_entry, submit_delegation
from telemetry.models import Publisher, RejectedEvent
from telemetry.pipeline.ingest import Message, ingest_messages
from telemetry.queries import UnauthorizedCount, unauthorized_publishers
from tests.conftest import ANCHOR
from tests.telemetry.test_access_support import (
    DELEGATE,
    GATEWAY,
    ORCH,
    STRANGER,
    revocation_signature,
    see_orchestrators,
    signed_delegation,
)

pytestmark = pytest.mark.django_db
OTHER_ORCH = "0x" + "0c" * 20


@pytest.fixture(autouse=True)
def fresh_authorised_set(settings: Any) -> Iterator[None]:
    settings.NAAP_ACCESS_CACHE_S = 0
    forget_authorised_set()
    yield
    forget_authorised_set()


def mode(settings: Any, value: str) -> None:
    settings.NAAP_PUBLISHER_ENFORCEMENT = value


def custom_event(event_id: str, at: datetime, orchestrator: str = "") -> dict[str, object]:
    data: dict[str, object] = {"note": "from a runner"}
    if orchestrator:
        data["orchestrator_info"] = {"address": orchestrator, "url": "https://o:1"}
    return {
        "id": event_id,
        "type": "runner_heartbeat",
        "timestamp": str(int(at.timestamp() * 1000)),
        "data": data,
    }


def via_streamr(publisher: str, *events: dict[str, object]) -> list[Message]:
    return [
        Message(value=e, metadata={"publisherId": publisher, "sequenceNumber": i})
        for i, e in enumerate(events)
    ]


def raw_rows() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id, publisher, orchestrator FROM telemetry_events_raw "
            "WHERE event_type = 'runner_heartbeat' ORDER BY event_id"
        )
        return [tuple(row) for row in cursor.fetchall()]


@pytest.fixture
def granted() -> None:
    """ORCH active since ANCHOR−1h; DELEGATE speaks for it from ANCHOR until ANCHOR+2h; reconciled."""
    see_orchestrators(ANCHOR - timedelta(hours=1), ORCH)
    submit_delegation(signed_delegation(valid_until=ANCHOR + timedelta(hours=2)), ANCHOR)
    reconcile(DatabaseBackend(), ANCHOR + timedelta(minutes=1))


@pytest.mark.usefixtures("granted")
def test_enforce_rejects_an_unauthorised_publisher_and_keeps_the_authorised_ones(settings: Any) -> None:
    mode(settings, "enforce")
    at = ANCHOR + timedelta(minutes=5)
    result = ingest_messages(
        via_streamr(STRANGER.upper().replace("0X", "0x"), custom_event("s1", at))
        + via_streamr(ORCH, custom_event("o1", at)),
        source="streamr",
        received_at=at,
    )
    assert (result.accepted, result.rejected_by_reason) == (1, {"unauthorized_publisher": 1})
    rejected = RejectedEvent.objects.get()
    assert (rejected.publisher, rejected.reason) == (STRANGER, "unauthorized_publisher")
    assert STRANGER in rejected.detail
    assert raw_rows() == [("o1", ORCH, "")]
    assert unauthorized_publishers(ANCHOR, ANCHOR + timedelta(hours=1)) == [
        UnauthorizedCount(STRANGER, "rejected", 1)
    ]


@pytest.mark.usefixtures("granted")
def test_a_delegate_is_authorised_only_while_its_delegation_holds_at_the_events_time(settings: Any) -> None:
    mode(settings, "enforce")
    received = ANCHOR + timedelta(hours=3)  # late delivery: the event times decide, not arrival
    events = [
        custom_event("d-before", ANCHOR - timedelta(minutes=1)),
        custom_event("d-during", ANCHOR + timedelta(minutes=30)),
        custom_event("d-after-expiry", ANCHOR + timedelta(hours=2, minutes=1)),
    ]
    result = ingest_messages(via_streamr(DELEGATE, *events), source="streamr", received_at=received)
    assert result.accepted == 1 and result.rejected == 2
    assert [r[0] for r in raw_rows()] == ["d-during"]


@pytest.mark.usefixtures("granted")
def test_a_revoked_delegation_stops_authorising_from_the_moment_of_revocation(settings: Any) -> None:
    mode(settings, "enforce")
    delegation = submit_delegation(
        signed_delegation(nonce=2, valid_until=ANCHOR + timedelta(hours=5)), ANCHOR
    )
    reconcile(DatabaseBackend(), ANCHOR + timedelta(minutes=2))
    revoked_at = ANCHOR + timedelta(minutes=40)
    revoke_delegation(delegation.pk, revoked_at, signature=revocation_signature(DELEGATE, ORCH, 2))
    # The first delegation (nonce 1) still covers the delegate; revoke it too.
    first = type(delegation).objects.get(nonce="1")
    revoke_delegation(first.pk, revoked_at, signature=revocation_signature(DELEGATE, ORCH, 1))
    reconcile(DatabaseBackend(), ANCHOR + timedelta(hours=1))
    events = [
        custom_event("r-before", revoked_at - timedelta(minutes=1)),
        custom_event("r-after", revoked_at),
    ]
    result = ingest_messages(
        via_streamr(DELEGATE, *events), source="streamr", received_at=ANCHOR + timedelta(hours=1)
    )
    assert (result.accepted, result.rejected) == (1, 1)
    assert [r[0] for r in raw_rows()] == ["r-before"]


@pytest.mark.usefixtures("granted")
def test_a_delegates_event_is_attributed_to_its_orchestrator_unless_it_names_one(settings: Any) -> None:
    mode(settings, "enforce")
    at = ANCHOR + timedelta(minutes=10)
    events = [custom_event("a-unnamed", at), custom_event("a-named", at, OTHER_ORCH)]
    ingest_messages(via_streamr(DELEGATE, *events), source="streamr", received_at=at)
    assert raw_rows() == [("a-named", DELEGATE, OTHER_ORCH), ("a-unnamed", DELEGATE, ORCH)]


@pytest.mark.usefixtures("granted")
def test_a_blocklisted_address_is_rejected_even_before_the_next_reconcile(settings: Any) -> None:
    mode(settings, "enforce")
    set_access_entry(ORCH, "block", ANCHOR + timedelta(minutes=30), actor="admin:alice")
    events = [
        custom_event("b-before", ANCHOR + timedelta(minutes=29)),
        custom_event("b-after", ANCHOR + timedelta(minutes=31)),
    ]
    result = ingest_messages(
        via_streamr(ORCH, *events), source="streamr", received_at=ANCHOR + timedelta(minutes=32)
    )
    assert (result.accepted, result.rejected) == (1, 1)
    assert [r[0] for r in raw_rows()] == ["b-before"]


@pytest.mark.usefixtures("granted")
def test_report_accepts_and_counts_unauthorised_events_once(settings: Any) -> None:
    mode(settings, "report")
    at = ANCHOR + timedelta(minutes=5)
    batch = via_streamr(STRANGER, custom_event("x1", at), custom_event("x2", at)) + via_streamr(
        ORCH, custom_event("o1", at)
    )
    first = ingest_messages(batch, source="streamr", received_at=at)
    again = ingest_messages(batch, source="streamr", received_at=at)
    assert (first.accepted, first.rejected, again.duplicates) == (3, 0, 3)
    assert not RejectedEvent.objects.exists()
    assert unauthorized_publishers(ANCHOR, ANCHOR + timedelta(hours=1)) == [
        UnauthorizedCount(STRANGER, "reported", 2)
    ]


@pytest.mark.usefixtures("granted")
def test_off_checks_nothing(settings: Any) -> None:
    mode(settings, "off")
    at = ANCHOR + timedelta(minutes=5)
    result = ingest_messages(via_streamr(STRANGER, custom_event("z1", at)), source="streamr", received_at=at)
    assert result.accepted == 1
    assert unauthorized_publishers(ANCHOR, ANCHOR + timedelta(hours=1)) == []


def test_an_http_publisher_is_judged_by_its_ethereum_address(settings: Any) -> None:
    mode(settings, "enforce")
    Publisher.create_with_key("gw-1", eth_address=GATEWAY)
    Publisher.create_with_key("tester-without-address", kind="job_tester")
    reconcile(DatabaseBackend(), ANCHOR + timedelta(minutes=1))
    at = ANCHOR + timedelta(minutes=2)
    import json

    ok = ingest_messages(
        [Message(body=json.dumps(custom_event("h1", at)), publisher="gw-1")], source="http", received_at=at
    )
    refused = ingest_messages(
        [Message(body=json.dumps(custom_event("h2", at)), publisher="tester-without-address")],
        source="http",
        received_at=at,
    )
    unnamed = ingest_messages(
        [Message(body=json.dumps(custom_event("k1", at)))], source="kafka", received_at=at
    )
    assert (ok.accepted, refused.rejected, unnamed.accepted) == (1, 1, 1)
    assert "has no Ethereum address" in RejectedEvent.objects.get().detail
