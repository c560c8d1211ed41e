"""Sign-In with Ethereum: real EIP-4361 messages signed with local keys, through the real endpoints."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct

from leaderboard import auth, signin_views, tasks
from leaderboard.models import OrchestratorAllowlist, SignInNonce
from naap_site.timeseries import ensure_partitions
from tests.conftest import ANCHOR
from tests.evm.chain import deploy_approved_hash_wallet, new_chain, next_contract_address

pytestmark = pytest.mark.django_db

KEY = "0x" + "11" * 32
OTHER_KEY = "0x" + "22" * 32
ACCOUNT = Account.from_key(KEY)


class Clock:
    def __init__(self) -> None:
        self.now = ANCHOR

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(auth, "now", c)
    return c


@pytest.fixture
def browser() -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.get("/login").status_code == 200  # sets the CSRF cookie
    return client


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def message(
    nonce: str,
    *,
    address: str = ACCOUNT.address,
    domain: str = "testserver",
    uri: str = "http://testserver/login",
    chain_id: int = 42161,
    issued: datetime = ANCHOR,
    expires: datetime | None = ANCHOR + timedelta(minutes=5),
) -> str:
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
        "Sign in to NaaP Analytics as the operator of this address.",
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {_iso(issued)}",
    ]
    if expires is not None:
        lines.append(f"Expiration Time: {_iso(expires)}")
    return "\n".join(lines)


def sign(text: str, key: str = KEY) -> str:
    return "0x" + Account.sign_message(
        encode_defunct(text=text), private_key=key
    ).signature.hex().removeprefix("0x")


def get_nonce(client: Client) -> str:
    response = client.get("/auth/nonce", {"address": ACCOUNT.address.lower()})
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == ACCOUNT.address  # checksummed for the page
    assert (body["domain"], body["uri"]) == ("testserver", "http://testserver/login")
    return str(body["nonce"])


def post_verify(client: Client, text: str, signature: str):
    return client.post(
        "/auth/verify",
        {"message": text, "signature": signature},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )


def test_a_correctly_signed_message_starts_a_session_for_that_address(clock, browser):
    text = message(get_nonce(browser))
    response = post_verify(browser, text, sign(text))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "ok": True,
        "address": ACCOUNT.address.lower(),
        "chainId": 42161,
        "isOrchestrator": False,
        "contractWallet": False,
    }
    assert browser.session["siwe"]["address"] == ACCOUNT.address.lower()
    assert browser.session["siwe"]["is_orchestrator"] is False
    user = get_user_model().objects.get(username=ACCOUNT.address.lower())
    assert not user.has_usable_password()
    page = browser.get("/login").content.decode()
    assert f'<code id="signed-in-address">{ACCOUNT.address.lower()}</code>' in page


def test_an_allowlisted_address_signs_in_as_an_orchestrator(clock, browser):
    OrchestratorAllowlist.objects.create(address=ACCOUNT.address)  # stored lower-case
    text = message(get_nonce(browser))

    assert post_verify(browser, text, sign(text)).json()["isOrchestrator"] is True
    assert browser.session["siwe"]["is_orchestrator"] is True


def test_an_address_seen_in_network_capabilities_signs_in_as_an_orchestrator(clock, browser):
    with connection.cursor() as cursor:
        ensure_partitions(cursor, "telemetry_fact_capability", [ANCHOR])
        cursor.execute(
            "INSERT INTO telemetry_fact_capability (event_time, dedup_key, received_at, ord, origin, address)"
            " VALUES (%s, %s, %s, 0, 'network_capabilities', %s)",
            [ANCHOR, b"k1", ANCHOR, ACCOUNT.address.lower()],
        )
    text = message(get_nonce(browser))

    assert post_verify(browser, text, sign(text)).json()["isOrchestrator"] is True


def test_a_replayed_message_is_refused(clock, browser):
    text = message(get_nonce(browser))
    signature = sign(text)
    assert post_verify(browser, text, signature).status_code == 200

    replay = post_verify(browser, text, signature)
    assert replay.status_code == 401
    assert replay.json()["reason"] == "nonce_used"


def test_an_expired_message_is_refused(clock, browser):
    text = message(get_nonce(browser), expires=ANCHOR + timedelta(minutes=2))
    clock.now = ANCHOR + timedelta(minutes=2)

    response = post_verify(browser, text, sign(text))
    assert (response.status_code, response.json()["reason"]) == (401, "expired_message")
    assert "siwe" not in browser.session


def test_a_nonce_older_than_five_minutes_is_refused(clock, browser):
    nonce = get_nonce(browser)
    clock.now = ANCHOR + timedelta(minutes=5, seconds=1)
    text = message(nonce, issued=clock.now, expires=clock.now + timedelta(minutes=5))

    response = post_verify(browser, text, sign(text))
    assert (response.status_code, response.json()["reason"]) == (401, "nonce_expired")


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"domain": "evil.example"}, 403, "domain_mismatch"),
        ({"uri": "https://evil.example/login"}, 403, "uri_mismatch"),
        ({"chain_id": 5}, 403, "chain_not_allowed"),
        ({"expires": None}, 400, "expiry_missing"),
        ({"expires": ANCHOR + timedelta(days=1)}, 400, "expiry_too_far"),
        ({"issued": ANCHOR + timedelta(minutes=3)}, 401, "issued_in_future"),
        ({"address": ACCOUNT.address.lower()}, 400, "malformed_message"),
    ],
)
def test_a_message_for_another_site_chain_or_time_is_refused(clock, browser, change, status, reason):
    text = message(get_nonce(browser), **change)

    response = post_verify(browser, text, sign(text))
    assert (response.status_code, response.json()["reason"]) == (status, reason)
    assert "_auth_user_id" not in browser.session


def test_a_signature_by_another_key_is_refused(clock, browser):
    text = message(get_nonce(browser))

    response = post_verify(browser, text, sign(text, OTHER_KEY))
    assert (response.status_code, response.json()["reason"]) == (401, "bad_signature")
    # The nonce was not consumed by the failed attempt: the real owner can still use it.
    assert post_verify(browser, text, sign(text)).status_code == 200


def test_a_nonce_issued_to_another_browser_is_refused(clock, browser):
    other = Client(enforce_csrf_checks=True)
    other.get("/login")
    text = message(get_nonce(other))

    response = post_verify(browser, text, sign(text))
    assert (response.status_code, response.json()["reason"]) == (401, "nonce_mismatch")


def test_a_made_up_nonce_is_refused(clock, browser):
    get_nonce(browser)
    text = message("madeup12345")

    response = post_verify(browser, text, sign(text))
    assert (response.status_code, response.json()["reason"]) == (401, "nonce_unknown")


def test_posting_without_the_csrf_token_is_refused(clock, browser):
    text = message(get_nonce(browser))

    response = browser.post(
        "/auth/verify", {"message": text, "signature": sign(text)}, content_type="application/json"
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_logout_ends_the_session(clock, browser):
    text = message(get_nonce(browser))
    post_verify(browser, text, sign(text))

    token = browser.cookies["csrftoken"].value
    response = browser.post("/auth/logout", HTTP_X_CSRFTOKEN=token, HTTP_ACCEPT="application/json")

    assert response.json() == {"ok": True, "signedIn": False}
    assert "siwe" not in browser.session
    assert 'id="signin-button"' in browser.get("/login").content.decode()


def test_the_session_cookie_is_secure_httponly_and_samesite(clock, browser, settings):
    settings.SESSION_COOKIE_SECURE = True
    text = message(get_nonce(browser))
    post_verify(browser, text, sign(text))

    cookie = browser.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] is True
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_a_contract_wallet_signs_in_through_erc_1271(clock, browser, monkeypatch):
    w3 = new_chain()
    nonce = get_nonce(browser)
    # The wallet approves exactly this message's EIP-191 hash; its "signature" is not an ECDSA one.
    wallet = next_contract_address(w3)
    digest = _hash_eip191_message(encode_defunct(text=message(nonce, address=wallet)))
    assert deploy_approved_hash_wallet(w3, digest) == wallet
    monkeypatch.setattr(auth, "_web3_for_contract_wallets", lambda: w3)

    forged = message(nonce, address=wallet, chain_id=1)  # a different text, so a different hash
    refused = post_verify(browser, forged, "0x" + "00" * 65)
    assert (refused.status_code, refused.json()["reason"]) == (401, "bad_signature")

    text = message(nonce, address=wallet)
    assert text != forged
    accepted = post_verify(browser, text, "0x" + "00" * 65)
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["contractWallet"] is True
    assert accepted.json()["address"] == wallet.lower()


def _next_after_sign_in(client: Client, wanted: str, **extra: str) -> str:
    html = client.get("/login", {"next": wanted}, **extra).content.decode()
    found = re.search(r'<script id="signin-config" type="application/json">(.*?)</script>', html, re.S)
    assert found
    return str(json.loads(found[1])["next"])


@pytest.mark.parametrize(
    "wanted",
    [
        "//evil.example/steal",
        "/\\evil.example/steal",
        "https://evil.example/me",
        "http://testserver.evil.example/me",
        "javascript:alert(1)",
        "",
    ],
)
def test_sign_in_never_sends_the_browser_to_another_site(client, wanted):
    assert _next_after_sign_in(client, wanted) == "/me"


def test_sign_in_returns_to_a_page_of_this_site(client):
    assert _next_after_sign_in(client, "/orchestrators/0xabc?window=24h") == "/orchestrators/0xabc?window=24h"
    assert _next_after_sign_in(client, "http://testserver/me/alerts") == "http://testserver/me/alerts"
    # Over HTTPS, a plain-HTTP link back to ourselves would downgrade the session: refused.
    assert _next_after_sign_in(client, "http://testserver/me/alerts", secure=True) == "/me"


class WallClock:
    def __init__(self, moment: float) -> None:
        self.moment = moment

    def time(self) -> float:
        return self.moment


def test_nonces_are_rate_limited_per_client_address(clock, settings, monkeypatch):
    settings.NAAP_SIWE_NONCE_RATE_LIMIT = 3
    settings.NAAP_SIWE_NONCE_RATE_WINDOW_S = 60
    wall = WallClock(ANCHOR.timestamp() + 15)  # 15 s into a 60 s window
    monkeypatch.setattr(signin_views, "time", wall)
    first, other = Client(REMOTE_ADDR="198.51.100.7"), Client(REMOTE_ADDR="198.51.100.8")
    before = SignInNonce.objects.count()

    assert [first.get("/auth/nonce").status_code for _ in range(3)] == [200, 200, 200]
    refused = first.get("/auth/nonce")
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"
    assert refused.json()["reason"] == "rate_limited"
    assert SignInNonce.objects.count() == before + 3  # a refused request stores nothing
    assert other.get("/auth/nonce").status_code == 200  # another client has its own budget

    wall.moment += 45  # the next window
    assert first.get("/auth/nonce").status_code == 200


def test_expired_nonces_are_purged_on_the_beat_schedule(clock):
    from naap_site.celery import app

    old = auth.issue_nonce(at=ANCHOR - timedelta(minutes=11))
    fresh = auth.issue_nonce(at=ANCHOR)
    assert tasks.purge_sign_in_nonces() == 1
    assert list(SignInNonce.objects.values_list("nonce", flat=True)) == [fresh.nonce]
    assert old.nonce != fresh.nonce

    app.loader.import_default_modules()
    (entry,) = [
        e for e in app.conf.beat_schedule.values() if e["task"] == "leaderboard.tasks.purge_sign_in_nonces"
    ]
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "derive"
