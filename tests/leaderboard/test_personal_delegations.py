"""Delegations on /me: the signed-in orchestrator asks for the EIP-712 typed data, signs it with its own key,
and the access service verifies and stores it; revocation likewise. Every refusal is explained."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from eth_account import Account

from leaderboard.models import OrchestratorAllowlist
from telemetry.access import eip712
from telemetry.access_models import AccessAuditLog, Delegation
from tests.leaderboard.test_personal_support import (
    ADDR_A,
    ADDR_B,
    KEY_A,
    KEY_B,
    NOW,
    Clock,
    clock,  # noqa: F401  (fixture)
    csrf,
    sign_in,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

KEY_HOT = "0x" + "d4" * 32
ADDR_HOT = Account.from_key(KEY_HOT).address.lower()
UNTIL = (NOW + timedelta(days=30)).date().isoformat()
UNTIL_TS = int(datetime.combine((NOW + timedelta(days=31)).date(), datetime.min.time(), UTC).timestamp())


@pytest.fixture(autouse=True)
def orchestrators() -> None:
    for a in (ADDR_A, ADDR_B):
        OrchestratorAllowlist.objects.create(address=a)


def typed_data(client: Client, delegate: str = ADDR_HOT, until: str = UNTIL, **extra: str):
    return client.get("/me/delegations/typed-data", {"delegate": delegate, "until": until, **extra})


def submit(client: Client, typed: dict, signature: str, *, with_csrf: bool = True):
    body = {
        "delegate": typed["message"]["delegate"],
        "validUntil": typed["message"]["validUntil"],
        "nonce": typed["message"]["nonce"],
        "chainId": typed["domain"]["chainId"],
        "signature": signature,
    }
    headers = {"X-CSRFToken": csrf(client)} if with_csrf else {}
    return client.post("/me/delegations", body, content_type="application/json", headers=headers)


def delegate_through_the_page(client: Client, key: str = KEY_A, delegate: str = ADDR_HOT) -> dict:
    prepared = typed_data(client, delegate).json()
    response = submit(client, prepared["typedData"], eip712.sign(prepared["typedData"], key))
    assert response.status_code == 201, response.content
    return response.json()


def test_the_orchestrator_gets_typed_data_for_itself_on_this_chain_with_a_fresh_nonce():
    browser = sign_in(KEY_A)
    # an orchestrator named in the request is ignored: the signed-in one is the only one
    answer = typed_data(browser, orchestrator=ADDR_B).json()
    typed = answer["typedData"]
    assert answer["orchestrator"] == ADDR_A
    assert typed["domain"] == {"name": "NaaP Analytics", "version": "1", "chainId": 42161}
    assert typed["primaryType"] == "Delegation"
    assert typed["message"] == {
        "delegate": ADDR_HOT,
        "orchestrator": ADDR_A,
        "validUntil": UNTIL_TS,
        "nonce": 0,
    }
    delegate_through_the_page(browser)
    assert typed_data(browser).json()["typedData"]["message"]["nonce"] == 1


def test_a_delegation_signed_on_the_page_is_stored_verified_and_audited():
    browser = sign_in(KEY_A)
    stored = delegate_through_the_page(browser)
    assert stored["signer"] == ADDR_A and stored["state"] == "active" and stored["delegate"] == ADDR_HOT

    row = Delegation.objects.get(pk=stored["id"])
    assert (row.delegate, row.orchestrator, row.nonce, row.chain_id) == (ADDR_HOT, ADDR_A, "0", 42161)
    assert row.valid_until == datetime.fromtimestamp(UNTIL_TS, UTC) and row.created_at == NOW
    statement = eip712.DelegationStatement(ADDR_HOT, ADDR_A, UNTIL_TS, 0, 42161)
    assert eip712.recover(eip712.delegation_typed_data(statement), row.signature) == ADDR_A
    audit = AccessAuditLog.objects.get(action="delegation")
    assert (audit.address, audit.orchestrator, audit.actor, audit.at) == (ADDR_HOT, ADDR_A, ADDR_A, NOW)

    page = browser.get("/me")
    html = page.content.decode()
    assert page.context["delegations"][0].state == "active"
    assert f'data-delegate="{ADDR_HOT}" data-state="active"' in html
    assert 'data-verified="1"' in html
    assert re.search(rf'<tr data-action="delegation" data-address="{ADDR_HOT}">', html)
    assert "Delegation stored" in html  # the flash set by the submit


def test_a_signature_by_someone_else_is_refused_and_nothing_is_stored():
    browser = sign_in(KEY_A)
    typed = typed_data(browser).json()["typedData"]
    response = submit(browser, typed, eip712.sign(typed, KEY_B))
    assert response.status_code == 400
    assert response.json()["reason"] == "wrong_signer"
    assert f"signed by {ADDR_B}" in response.json()["detail"]
    garbled = submit(browser, typed, "0x1234")
    assert garbled.json()["reason"] == "bad_signature"
    assert not Delegation.objects.exists() and not AccessAuditLog.objects.exists()


def test_a_replayed_submission_is_refused():
    browser = sign_in(KEY_A)
    typed = typed_data(browser).json()["typedData"]
    signature = eip712.sign(typed, KEY_A)
    assert submit(browser, typed, signature).status_code == 201
    again = submit(browser, typed, signature)
    assert (again.status_code, again.json()["reason"]) == (400, "nonce_used")
    assert Delegation.objects.count() == 1


def test_bad_terms_are_refused_before_the_wallet_is_asked():
    browser = sign_in(KEY_A)
    past = typed_data(browser, until=(NOW - timedelta(days=1)).date().isoformat())
    assert (past.status_code, past.json()["reason"]) == (400, "expired")
    far = typed_data(browser, until=(NOW + timedelta(days=400)).date().isoformat())
    assert (far.status_code, far.json()["reason"]) == (400, "too_long")
    assert typed_data(browser, delegate="0x1234").json()["reason"] == "bad_value"
    assert typed_data(browser, delegate=ADDR_A).json()["reason"] == "bad_value"  # itself
    assert typed_data(browser, until="next week").json()["reason"] == "bad_value"


def test_posts_without_the_csrf_token_are_refused():
    browser = sign_in(KEY_A)
    typed = typed_data(browser).json()["typedData"]
    response = submit(browser, typed, eip712.sign(typed, KEY_A), with_csrf=False)
    assert response.status_code == 403
    assert not Delegation.objects.exists()


def test_only_the_signed_in_orchestrator_itself_may_delegate(client):
    anonymous = typed_data(client)
    assert (anonymous.status_code, anonymous.json()["reason"]) == (401, "signed_out")

    sign_in_a = sign_in(KEY_A)
    delegate_through_the_page(sign_in_a)
    hot = sign_in(KEY_HOT)  # a delegate of A sees A's page, read-only
    page = hot.get("/me")
    assert page.status_code == 200 and page.context["op"].orchestrator == ADDR_A
    html = page.content.decode()
    assert 'id="delegation-readonly"' in html and 'id="delegation-form"' not in html
    assert "delegation-revoke" not in html
    refused = typed_data(hot, delegate="0x" + "77" * 20)
    assert (refused.status_code, refused.json()["reason"]) == (403, "not_orchestrator")
    assert "a delegate" in refused.json()["detail"]
    # even with a statement signed by A, a delegate's session cannot submit
    typed = typed_data(sign_in_a, delegate="0x" + "77" * 20).json()["typedData"]
    assert submit(hot, typed, eip712.sign(typed, KEY_A)).status_code == 403
    assert Delegation.objects.count() == 1


def test_the_orchestrator_revokes_with_a_signed_revocation():
    browser = sign_in(KEY_A)
    stored = delegate_through_the_page(browser)
    prepared = browser.get(f"/me/delegations/{stored['id']}/revocation").json()
    typed = prepared["typedData"]
    assert typed["primaryType"] == "DelegationRevocation"
    assert typed["message"] == {"delegate": ADDR_HOT, "orchestrator": ADDR_A, "nonce": 0}

    url = f"/me/delegations/{stored['id']}/revoke"
    wrong = browser.post(
        url,
        {"signature": eip712.sign(typed, KEY_B)},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf(browser),
    )
    assert (wrong.status_code, wrong.json()["reason"]) == (400, "wrong_signer")
    done = browser.post(
        url,
        {"signature": eip712.sign(typed, KEY_A)},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf(browser),
    )
    assert done.status_code == 200 and done.json()["revokedBy"] == ADDR_A
    row = Delegation.objects.get(pk=stored["id"])
    assert (row.revoked_at, row.revoked_by) == (NOW, ADDR_A)
    assert AccessAuditLog.objects.filter(action="delegation_revoked", address=ADDR_HOT, actor=ADDR_A).exists()
    assert browser.get("/me").context["delegations"][0].state == "revoked"
    again = browser.get(f"/me/delegations/{stored['id']}/revocation")
    assert again.json()["reason"] == "revoked"


def test_another_orchestrators_delegations_are_out_of_reach():
    a = sign_in(KEY_A)
    stored = delegate_through_the_page(a)
    b = sign_in(KEY_B)
    assert b.get(f"/me/delegations/{stored['id']}/revocation").status_code == 404
    response = b.post(
        f"/me/delegations/{stored['id']}/revoke",
        {"signature": "0x" + "00" * 65},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf(b),
    )
    assert response.status_code == 404
    page = b.get("/me")
    assert page.context["delegations"] == [] and page.context["audit"] == []
    assert ADDR_HOT not in page.content.decode()


def test_a_delegation_past_its_date_is_shown_as_expired(clock: Clock):  # noqa: F811
    browser = sign_in(KEY_A)
    delegate_through_the_page(browser)
    clock.now = NOW + timedelta(days=32)
    (row,) = browser.get("/me").context["delegations"]
    assert row.state == "expired"
