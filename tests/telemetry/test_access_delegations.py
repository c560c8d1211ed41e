"""Signed delegations: every refusal path, revocation by the orchestrator or an admin, the API."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from types import ModuleType
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import path
from ninja import NinjaAPI

from telemetry.access import eip712
from telemetry.access.api import router as access_router
from telemetry.access.services import (
    DelegationRefused,
    SignedDelegation,
    revoke_delegation,
    submit_delegation,
)
from telemetry.access_models import AccessAuditLog, Delegation
from telemetry.queries import audit_for, orchestrator_for_delegate
from tests.conftest import ANCHOR
from tests.telemetry.test_access_support import (
    DELEGATE,
    DELEGATE_KEY,
    ORCH,
    STRANGER,
    STRANGER_KEY,
    revocation_signature,
    signed_delegation,
)

pytestmark = pytest.mark.django_db


def refusal(d: SignedDelegation) -> str:
    with pytest.raises(DelegationRefused) as caught:
        submit_delegation(d, ANCHOR)
    return caught.value.reason


def test_a_delegation_signed_by_the_orchestrator_is_stored_and_audited() -> None:
    delegation = submit_delegation(signed_delegation(), ANCHOR)
    assert (delegation.delegate, delegation.orchestrator) == (DELEGATE, ORCH)
    assert delegation.valid_until == ANCHOR + timedelta(days=30)
    assert [(e.action, e.address, e.actor) for e in audit_for(ORCH)] == [("delegation", DELEGATE, ORCH)]
    assert orchestrator_for_delegate(DELEGATE, ANCHOR + timedelta(days=1)) == ORCH
    assert orchestrator_for_delegate(DELEGATE, ANCHOR + timedelta(days=31)) is None


def test_the_signer_is_recovered_from_the_typed_data() -> None:
    d = signed_delegation()
    statement = eip712.DelegationStatement(d.delegate, d.orchestrator, d.valid_until, d.nonce, d.chain_id)
    assert eip712.recover(eip712.delegation_typed_data(statement), d.signature) == ORCH
    later = eip712.DelegationStatement(d.delegate, d.orchestrator, d.valid_until + 1, d.nonce, d.chain_id)
    assert eip712.recover(eip712.delegation_typed_data(later), d.signature) != ORCH


def test_a_delegation_signed_by_someone_else_is_refused() -> None:
    assert refusal(signed_delegation(key=STRANGER_KEY)) == "wrong_signer"
    assert refusal(signed_delegation(key=DELEGATE_KEY)) == "wrong_signer"
    assert not Delegation.objects.exists()


def test_a_delegation_whose_fields_were_changed_after_signing_is_refused() -> None:
    d = signed_delegation()
    forged = SignedDelegation(STRANGER, d.orchestrator, d.valid_until, d.nonce, d.chain_id, d.signature)
    with pytest.raises(DelegationRefused) as caught:
        submit_delegation(forged, ANCHOR)
    assert caught.value.reason == "wrong_signer"
    assert ORCH not in caught.value.detail.split("signed by ")[1].split(",")[0]


@pytest.mark.parametrize("signature", ["0x1234", "not hex", "0x" + "00" * 65, ""])
def test_a_malformed_signature_is_refused_as_a_bad_signature(signature: str) -> None:
    d = signed_delegation()
    bad = SignedDelegation(d.delegate, d.orchestrator, d.valid_until, d.nonce, d.chain_id, signature)
    assert refusal(bad) == "bad_signature"


def test_an_expired_delegation_is_refused() -> None:
    assert refusal(signed_delegation(valid_until=ANCHOR)) == "expired"
    assert refusal(signed_delegation(valid_until=ANCHOR - timedelta(hours=1))) == "expired"


def test_a_delegation_for_another_chain_or_too_far_ahead_is_refused() -> None:
    assert refusal(signed_delegation(chain_id=1)) == "wrong_chain"
    assert refusal(signed_delegation(valid_until=ANCHOR + timedelta(days=3650))) == "too_long"


def test_a_replayed_nonce_is_refused() -> None:
    submit_delegation(signed_delegation(nonce=7), ANCHOR)
    assert refusal(signed_delegation(nonce=7)) == "nonce_used"


def test_a_revoked_delegation_cannot_be_submitted_again() -> None:
    delegation = submit_delegation(signed_delegation(nonce=3), ANCHOR)
    revoke_delegation(delegation.pk, ANCHOR, signature=revocation_signature(DELEGATE, ORCH, 3))
    assert refusal(signed_delegation(nonce=3)) == "revoked"


def test_the_orchestrator_revokes_with_a_signature_and_a_stranger_cannot() -> None:
    delegation = submit_delegation(signed_delegation(), ANCHOR)
    with pytest.raises(DelegationRefused) as caught:
        revoke_delegation(
            delegation.pk, ANCHOR, signature=revocation_signature(DELEGATE, ORCH, 1, STRANGER_KEY)
        )
    assert caught.value.reason == "wrong_signer"
    at = ANCHOR + timedelta(hours=1)
    revoked = revoke_delegation(delegation.pk, at, signature=revocation_signature(DELEGATE, ORCH, 1))
    assert (revoked.revoked_at, revoked.revoked_by) == (at, ORCH)
    assert orchestrator_for_delegate(DELEGATE, at + timedelta(minutes=1)) is None
    with pytest.raises(DelegationRefused) as again:
        revoke_delegation(delegation.pk, at, signature=revocation_signature(DELEGATE, ORCH, 1))
    assert again.value.reason == "revoked"
    assert [e.action for e in audit_for(ORCH)] == ["delegation_revoked", "delegation"]


def test_an_admin_revokes_without_a_signature() -> None:
    delegation = submit_delegation(signed_delegation(), ANCHOR)
    revoked = revoke_delegation(delegation.pk, ANCHOR, admin="alice")
    assert revoked.revoked_by == "admin:alice"
    assert AccessAuditLog.objects.filter(action="delegation_revoked", actor="admin:alice").count() == 1


def _payload(d: SignedDelegation) -> dict[str, object]:
    return {
        "delegate": d.delegate,
        "orchestrator": d.orchestrator,
        "validUntil": d.valid_until,
        "nonce": d.nonce,
        "chainId": d.chain_id,
        "signature": d.signature,
    }


@cache
def _access_urls() -> ModuleType:
    """The access router on a NinjaAPI of its own at /v1/access (the site mounts the same router)."""
    api = NinjaAPI(title="access test", urls_namespace="access-test")
    api.add_router("/access", access_router)
    urls = ModuleType("access_test_urls")
    urls.urlpatterns = [path("v1/", api.urls)]  # type: ignore[attr-defined]
    return urls


@pytest.fixture
def api_client(settings: Any) -> Client:
    settings.ROOT_URLCONF = _access_urls()
    return Client()


def test_the_api_accepts_lists_and_revokes_a_delegation(api_client: Client) -> None:
    # validUntil is checked against the real clock here, so sign one that lasts from now.
    from django.utils import timezone

    d = signed_delegation(valid_until=timezone.now() + timedelta(days=2), nonce=11)
    created = api_client.post("/v1/access/delegations", _payload(d), content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["delegate"] == DELEGATE
    listed = api_client.get("/v1/access/delegations", {"orchestrator": ORCH.upper().replace("0X", "0x")})
    assert [row["nonce"] for row in listed.json()] == ["11"]
    ident = created.json()["id"]
    refused = api_client.post(f"/v1/access/delegations/{ident}/revoke", {}, content_type="application/json")
    assert (refused.status_code, refused.json()["reason"]) == (400, "bad_signature")
    revoked = api_client.post(
        f"/v1/access/delegations/{ident}/revoke",
        {"signature": revocation_signature(DELEGATE, ORCH, 11)},
        content_type="application/json",
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_by"] == ORCH
    missing = api_client.post(
        "/v1/access/delegations/999999/revoke", {"signature": "0x00"}, content_type="application/json"
    )
    assert missing.status_code == 404


def test_the_api_refuses_a_delegation_signed_by_someone_else_with_its_reason(api_client: Client) -> None:
    from django.utils import timezone

    d = signed_delegation(key=STRANGER_KEY, valid_until=timezone.now() + timedelta(days=2))
    answer = api_client.post("/v1/access/delegations", _payload(d), content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["reason"] == "wrong_signer"


def test_the_audit_log_answers_only_to_its_orchestrator_or_an_admin(api_client: Client) -> None:
    submit_delegation(signed_delegation(), ANCHOR)
    users = get_user_model().objects
    assert api_client.get(f"/v1/access/audit/{ORCH}").status_code == 403
    api_client.force_login(users.create(username=STRANGER))
    assert api_client.get(f"/v1/access/audit/{ORCH}").status_code == 403
    api_client.force_login(users.create(username=ORCH))
    mine = api_client.get(f"/v1/access/audit/{ORCH}")
    assert mine.status_code == 200
    assert [(e["action"], e["address"]) for e in mine.json()] == [("delegation", DELEGATE)]
    api_client.force_login(users.create(username="admin", is_staff=True))
    assert api_client.get(f"/v1/access/audit/{ORCH}").status_code == 200
