"""The controller: desired publishers, grants and revocations, on our state and on the real StreamRegistry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from web3 import Web3
from web3.types import Nonce

from telemetry.access.backends import DatabaseBackend, StreamrRegistryBackend
from telemetry.access.services import reconcile, revoke_delegation, set_access_entry, submit_delegation
from telemetry.access_models import PublisherGrant
from telemetry.models import Publisher
from telemetry.queries import active_orchestrators, audit_for
from tests.conftest import ANCHOR
from tests.evm.chain import deploy, new_chain
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


def open_grants() -> dict[str, tuple[str, str]]:
    return {
        g.address: (g.role, g.orchestrator) for g in PublisherGrant.objects.filter(revoked_at__isnull=True)
    }


def test_orchestrators_seen_in_capabilities_within_the_window_are_active() -> None:
    see_orchestrators(ANCHOR - timedelta(hours=2), ORCH)
    see_orchestrators(ANCHOR - timedelta(hours=30), STRANGER)
    assert active_orchestrators(ANCHOR - timedelta(hours=24), ANCHOR) == {ORCH: ANCHOR - timedelta(hours=2)}


def test_reconcile_grants_orchestrators_gateways_delegates_and_allowed_but_not_blocked() -> None:
    see_orchestrators(ANCHOR - timedelta(hours=1), ORCH, STRANGER)
    Publisher.create_with_key("gw-1", eth_address=GATEWAY.upper().replace("0X", "0x"))
    submit_delegation(signed_delegation(), ANCHOR - timedelta(minutes=30))
    allowed = "0x" + "a1" * 20
    set_access_entry(allowed, "allow", ANCHOR - timedelta(minutes=5), actor="admin:alice")
    set_access_entry(STRANGER, "block", ANCHOR - timedelta(minutes=5), actor="admin:alice")
    result = reconcile(DatabaseBackend(), ANCHOR)
    assert sorted(d.address for d in result.grants) == sorted([ORCH, GATEWAY, DELEGATE, allowed])
    assert open_grants() == {
        ORCH: ("orchestrator", ""),
        GATEWAY: ("gateway", ""),
        DELEGATE: ("delegate", ORCH),
        allowed: ("allowlist", ""),
    }
    delegate_grant = PublisherGrant.objects.get(address=DELEGATE)
    assert delegate_grant.expires_at == ANCHOR + timedelta(days=30)
    assert delegate_grant.valid_from == ANCHOR - timedelta(minutes=30)
    assert reconcile(DatabaseBackend(), ANCHOR + timedelta(minutes=1)).empty
    # The orchestrator sees its own grant and its delegate's, newest first.
    assert [(e.action, e.address) for e in audit_for(ORCH)][:2] == [("grant", ORCH), ("grant", DELEGATE)]


def test_reconcile_revokes_revoked_expired_inactive_and_blocked_publishers() -> None:
    see_orchestrators(ANCHOR - timedelta(hours=1), ORCH)
    delegation = submit_delegation(signed_delegation(valid_until=ANCHOR + timedelta(hours=3)), ANCHOR)
    second = "0x" + "b2" * 20
    submit_delegation(
        signed_delegation(delegate=second, nonce=2, valid_until=ANCHOR + timedelta(hours=2)), ANCHOR
    )
    reconcile(DatabaseBackend(), ANCHOR)
    assert set(open_grants()) == {ORCH, DELEGATE, second}

    revoked_at = ANCHOR + timedelta(minutes=10)
    revoke_delegation(delegation.pk, revoked_at, signature=revocation_signature(DELEGATE, ORCH, 1))
    later = ANCHOR + timedelta(minutes=20)
    result = reconcile(DatabaseBackend(), later)
    assert [(r.address, r.why) for r in result.revocations] == [(DELEGATE, "delegation revoked")]
    assert PublisherGrant.objects.get(address=DELEGATE).revoked_at == revoked_at

    expired = reconcile(DatabaseBackend(), ANCHOR + timedelta(hours=2, minutes=5))
    assert [(r.address, r.why) for r in expired.revocations] == [(second, "expired")]
    assert PublisherGrant.objects.get(address=second).revoked_at == ANCHOR + timedelta(hours=2)

    set_access_entry(ORCH, "block", ANCHOR + timedelta(hours=3), actor="admin:alice")
    blocked = reconcile(DatabaseBackend(), ANCHOR + timedelta(hours=3, minutes=1))
    assert [(r.address, r.why) for r in blocked.revocations] == [(ORCH, "blocklisted")]
    assert open_grants() == {}
    actions = [e.action for e in audit_for(ORCH)]
    assert actions.count("revoke") == 3 and actions.count("grant") == 3


def test_an_orchestrator_no_longer_seen_in_the_window_is_revoked() -> None:
    see_orchestrators(ANCHOR - timedelta(hours=1), ORCH)
    reconcile(DatabaseBackend(), ANCHOR)
    result = reconcile(DatabaseBackend(), ANCHOR + timedelta(hours=24))
    assert [(r.address, r.why) for r in result.revocations] == [(ORCH, "no longer active")]


# --- the real StreamRegistryV5 on an in-process EVM -----------------------------------------------------

STREAM_PATH = "/naap/telemetry"


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[Web3, str, str, str]]:
    """StreamRegistryV5 deployed from the npm package; the stream is owned by a local key we control."""
    w3 = new_chain()
    contract = deploy(w3, "StreamRegistryV5", gas=15_000_000)
    admin = w3.eth.accounts[0]
    zero = "0x" + "00" * 20
    w3.eth.wait_for_transaction_receipt(contract.functions.initialize(zero, zero).transact({"from": admin}))
    owner = Account.from_key("0x" + "5a" * 32)
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": admin, "to": owner.address, "value": Web3.to_wei(1, "ether")})
    )
    create = contract.functions.createStream(STREAM_PATH, "{}").build_transaction(
        {"from": owner.address, "nonce": Nonce(0), "gas": 1_000_000}
    )
    signed = Account.sign_transaction(create, owner.key)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    stream_id = owner.address.lower() + STREAM_PATH
    assert contract.functions.exists(stream_id).call()
    yield w3, contract.address, stream_id, "0x" + bytes(owner.key).hex()


def test_reconcile_sets_and_removes_publish_permission_on_the_stream_registry(
    registry: tuple[Web3, str, str, str],
) -> None:
    w3, address, stream_id, key = registry
    backend = StreamrRegistryBackend(w3, address, stream_id, private_key=key)
    # The chain's clock is the wall clock: anchor the delegation's expiry on the latest block.
    chain_now = w3.eth.get_block("latest")["timestamp"]
    now = datetime.fromtimestamp(chain_now, tz=UTC)
    see_orchestrators(now - timedelta(hours=1), ORCH)
    submit_delegation(signed_delegation(valid_until=now + timedelta(days=1)), now)
    assert not backend.has_publish(ORCH) and not backend.has_publish(DELEGATE)

    started = time.perf_counter()
    result = reconcile(backend, now)
    assert {d.address for d in result.grants} == {ORCH, DELEGATE}
    assert backend.has_publish(ORCH) and backend.has_publish(DELEGATE)
    assert not backend.has_publish(STRANGER)
    contract = backend.registry
    perms = contract.functions.getDirectPermissionsForUser(
        stream_id, Web3.to_checksum_address(DELEGATE)
    ).call()
    assert perms[2] == int((now + timedelta(days=1)).timestamp())  # publishExpiration = validUntil
    orch_perms = contract.functions.getDirectPermissionsForUser(
        stream_id, Web3.to_checksum_address(ORCH)
    ).call()
    assert orch_perms[2] == 2**256 - 1  # no expiry
    assert "tx 0x" in audit_for(ORCH)[0].detail

    set_access_entry(DELEGATE, "block", now, actor="admin:alice")
    revoked = reconcile(backend, now + timedelta(seconds=1))
    assert [r.address for r in revoked.revocations] == [DELEGATE]
    assert not backend.has_publish(DELEGATE)
    assert backend.has_publish(ORCH)
    assert time.perf_counter() - started < 30


def test_the_reconcile_command_prints_the_plan_and_applies_it_unless_dry_run() -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    see_orchestrators(timezone.now() - timedelta(minutes=5), ORCH)
    dry = StringIO()
    call_command("reconcile_publishers", "--dry-run", stdout=dry)
    assert f"grant  {ORCH} (orchestrator)" in dry.getvalue()
    assert "database: would grant 1, change 0, revoke 0" in dry.getvalue()
    assert open_grants() == {}
    done = StringIO()
    call_command("reconcile_publishers", stdout=done)
    assert "database: did grant 1" in done.getvalue()
    assert open_grants() == {ORCH: ("orchestrator", "")}
