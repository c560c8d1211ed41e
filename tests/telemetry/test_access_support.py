"""Helpers shared by the access-control tests (no tests here): local keys, signed delegations, facts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from eth_account import Account

from telemetry.access import eip712
from telemetry.access.services import SignedDelegation
from telemetry.pipeline.ingest import Message, ingest_messages
from tests.conftest import ANCHOR

ORCH_KEY = "0x" + "11" * 32
DELEGATE_KEY = "0x" + "22" * 32
STRANGER_KEY = "0x" + "33" * 32
GATEWAY_KEY = "0x" + "44" * 32
ORCH = Account.from_key(ORCH_KEY).address.lower()
DELEGATE = Account.from_key(DELEGATE_KEY).address.lower()
STRANGER = Account.from_key(STRANGER_KEY).address.lower()
GATEWAY = Account.from_key(GATEWAY_KEY).address.lower()


def signed_delegation(
    *,
    key: str = ORCH_KEY,
    delegate: str = DELEGATE,
    orchestrator: str = ORCH,
    valid_until: datetime | None = None,
    nonce: int = 1,
    chain_id: int | None = None,
) -> SignedDelegation:
    until = int((valid_until or ANCHOR + timedelta(days=30)).timestamp())
    chain = chain_id if chain_id is not None else settings.NAAP_ACCESS_CHAIN_ID
    statement = eip712.DelegationStatement(delegate, orchestrator, until, nonce, chain)
    signature = eip712.sign(eip712.delegation_typed_data(statement), key)
    return SignedDelegation(delegate, orchestrator, until, nonce, chain, signature)


def revocation_signature(delegate: str, orchestrator: str, nonce: int, key: str = ORCH_KEY) -> str:
    statement = eip712.DelegationStatement(delegate, orchestrator, 0, nonce, settings.NAAP_ACCESS_CHAIN_ID)
    return eip712.sign(eip712.revocation_typed_data(statement), key)


def capabilities_event(event_id: str, at: datetime, *addresses: str) -> dict[str, object]:
    return {
        "id": event_id,
        "type": "network_capabilities",
        "timestamp": str(int(at.timestamp() * 1000)),
        "payload": [
            {
                "address": a,
                "local_address": a,
                "orch_uri": f"https://o{i}:8935",
                "capabilities": {"version": "0.8.8"},
            }
            for i, a in enumerate(addresses)
        ],
    }


def see_orchestrators(at: datetime, *addresses: str) -> None:
    """A gateway's network_capabilities event listing ``addresses`` at ``at`` (ingested for real)."""
    body = json.dumps(capabilities_event(f"caps-{at.timestamp()}", at, *addresses))
    result = ingest_messages([Message(body=body)], source="test", received_at=at)
    assert result.accepted == 1, result.as_dict()
