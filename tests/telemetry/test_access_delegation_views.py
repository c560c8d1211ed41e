"""Delegations as the personal pages show them: state at a moment and the signer recovered from storage."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.access.services import (
    DelegationView,
    SignedDelegation,
    delegation_views,
    revoke_delegation,
    submit_delegation,
)
from telemetry.access_models import Delegation
from tests.conftest import ANCHOR
from tests.telemetry.test_access_support import (
    DELEGATE,
    ORCH,
    STRANGER,
    STRANGER_KEY,
    revocation_signature,
    signed_delegation,
)

pytestmark = pytest.mark.django_db

UNTIL = ANCHOR + timedelta(days=30)


def store_unchecked(d: SignedDelegation, created_at: datetime) -> Delegation:
    """A row as it might sit in the table without passing verification (a forged or damaged signature)."""
    return Delegation.objects.create(
        delegate=d.delegate,
        orchestrator=d.orchestrator,
        valid_until=datetime.fromtimestamp(d.valid_until, tz=UTC),
        nonce=str(d.nonce),
        chain_id=d.chain_id,
        signature=d.signature,
        created_at=created_at,
    )


def test_a_fresh_delegation_is_active_and_recovers_to_its_orchestrator() -> None:
    stored = submit_delegation(signed_delegation(nonce=7), ANCHOR)
    assert delegation_views(ORCH, ANCHOR + timedelta(days=1)) == [
        DelegationView(
            id=stored.pk,
            delegate=DELEGATE,
            orchestrator=ORCH,
            nonce="7",
            valid_until=UNTIL,
            state="active",
            signer=ORCH,
            signer_is_orchestrator=True,
            created_at=ANCHOR,
            revoked_at=None,
            revoked_by="",
        )
    ]


def test_a_delegation_expires_exactly_at_its_valid_until() -> None:
    submit_delegation(signed_delegation(), ANCHOR)
    [before] = delegation_views(ORCH, UNTIL - timedelta(seconds=1))
    [at_end] = delegation_views(ORCH, UNTIL)
    assert (before.state, at_end.state) == ("active", "expired")
    assert at_end.signer_is_orchestrator  # expiry does not change who signed


def test_a_revoked_delegation_stays_revoked_after_it_would_have_expired() -> None:
    stored = submit_delegation(signed_delegation(nonce=3), ANCHOR)
    revoked_at = ANCHOR + timedelta(hours=5)
    revoke_delegation(stored.pk, revoked_at, signature=revocation_signature(DELEGATE, ORCH, 3))
    for at in (ANCHOR + timedelta(days=1), UNTIL + timedelta(days=1)):
        [view] = delegation_views(ORCH, at)
        assert (view.state, view.revoked_at, view.revoked_by) == ("revoked", revoked_at, ORCH)


def test_a_stored_signature_by_someone_else_shows_that_signer() -> None:
    store_unchecked(signed_delegation(key=STRANGER_KEY), ANCHOR)
    [view] = delegation_views(ORCH, ANCHOR)
    assert (view.signer, view.signer_is_orchestrator) == (STRANGER, False)


def test_a_field_changed_after_signing_no_longer_recovers_to_the_orchestrator() -> None:
    honest = signed_delegation()
    store_unchecked(replace(honest, valid_until=honest.valid_until + 86400), ANCHOR)
    [view] = delegation_views(ORCH, ANCHOR)
    assert view.signer not in ("", ORCH)
    assert not view.signer_is_orchestrator


@pytest.mark.parametrize("signature", ["0x1234", "not hex", ""])
def test_an_undecodable_signature_has_no_signer(signature: str) -> None:
    store_unchecked(replace(signed_delegation(), signature=signature), ANCHOR)
    [view] = delegation_views(ORCH, ANCHOR)
    assert (view.signer, view.signer_is_orchestrator, view.state) == ("", False, "active")


def test_only_the_orchestrators_own_delegations_are_listed_newest_first() -> None:
    first = submit_delegation(signed_delegation(nonce=1), ANCHOR)
    second = submit_delegation(signed_delegation(nonce=2), ANCHOR + timedelta(minutes=1))
    store_unchecked(signed_delegation(key=STRANGER_KEY, delegate=DELEGATE, orchestrator=STRANGER), ANCHOR)
    views = delegation_views(ORCH.upper().replace("0X", "0x"), ANCHOR + timedelta(hours=1))
    assert [v.id for v in views] == [second.pk, first.pk]
    assert [v.id for v in delegation_views(ORCH, ANCHOR, limit=1)] == [second.pk]
    [theirs] = delegation_views(STRANGER, ANCHOR)
    assert (theirs.orchestrator, theirs.signer_is_orchestrator) == (STRANGER, True)
