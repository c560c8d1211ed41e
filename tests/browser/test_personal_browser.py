"""An operator's whole visit in headless Chromium with a test wallet injected as ``window.ethereum``:
Sign-In with Ethereum, /me with its score explanation, a delegation signed in the wallet (EIP-712) and
stored verified with its audit entry, and /me's numbers moving live without a reload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from leaderboard import personal_views
from leaderboard.tasks import broadcast_all
from sla.scoring_models import Score
from telemetry.access import eip712
from telemetry.access_models import AccessAuditLog, Delegation
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS
from tests.leaderboard.test_personal_support import ADDR_A, KEY_A, NOW, Clock, build_network
from tests.sla.rollup_factories import PIPE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WALLET = Account.from_key(KEY_A)  # orchestrator A of the personal-page fixtures
HOT = "0x" + "5e" * 20  # the delegate A authorises
UNTIL = (NOW + timedelta(days=30)).date()

# window.ethereum whose key stays in Python: signing goes through bindings exposed by the test.
PROVIDER_JS = """
(() => {
  const address = "%s";
  window.ethereum = {
    isTestWallet: true,
    request: async ({ method, params }) => {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "eth_chainId") return "0xa4b1";
      if (method === "personal_sign") return await window.__walletPersonalSign(params[0], params[1]);
      if (method === "eth_signTypedData_v4") return await window.__walletSignTypedData(params[0], params[1]);
      throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
    },
  };
})();
"""


def broadcast() -> int:
    """The broadcast task, in a worker thread (Playwright's sync API keeps an event loop in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(broadcast_all).result(timeout=30)


@pytest.fixture
def operator_a(asgi_server: str, scoring_v1: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A's and B's sessions, rollups and scores; /me's clock at NOW (sign-in keeps the real clock: the
    browser stamps its EIP-4361 message with its own time)."""
    build_network()
    monkeypatch.setattr(personal_views, "now", Clock(NOW))
    return asgi_server


@pytest.fixture
def wallet_page(operator_a: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never download a browser)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        requests: list[tuple[str, Any]] = []

        def personal_sign(data_hex: str, account: str) -> str:
            assert account.lower() == WALLET.address.lower()
            text = bytes.fromhex(data_hex.removeprefix("0x")).decode()
            requests.append(("personal_sign", text))
            return "0x" + bytes(WALLET.sign_message(encode_defunct(text=text)).signature).hex()

        def sign_typed_data(account: str, typed_json: str) -> str:
            assert account.lower() == WALLET.address.lower()
            typed = json.loads(typed_json)
            requests.append(("eth_signTypedData_v4", typed))
            signed = WALLET.sign_message(encode_typed_data(full_message=typed))
            return "0x" + bytes(signed.signature).hex()

        context.expose_function("__walletPersonalSign", personal_sign)
        context.expose_function("__walletSignTypedData", sign_typed_data)
        context.add_init_script(PROVIDER_JS % WALLET.address)
        page = context.new_page()
        page.wallet_requests = requests  # type: ignore[attr-defined]
        page.base_url = operator_a  # type: ignore[attr-defined]
        yield page
        context.close()
        browser.close()


def test_an_operator_signs_in_reads_its_page_and_delegates_with_its_wallet(wallet_page: Any) -> None:
    page = wallet_page
    page.goto(page.base_url + "/login?next=/me")
    page.click("#signin-button")

    # 1. signed in, on /me: the score explanation of A's workflow
    page.wait_for_selector("#me-orchestrator", timeout=20_000)
    assert page.text_content("#me-orchestrator") == ADDR_A
    assert page.wallet_requests[0][0] == "personal_sign"
    stored = Score.objects.get(orchestrator=ADDR_A, workflow=PIPE, window="24h", window_end=NOW)
    explanation = page.locator(f'#score article.explanation[data-workflow="{PIPE}"]')
    assert explanation.locator('[data-field="score"]').inner_text() == f"{stored.score:.1f}"
    assert explanation.locator("tr[data-subscore]").evaluate_all("rs => rs.map(r => r.dataset.subscore)") == [
        "latency",
        "reliability",
        "performance",
    ]
    assert explanation.locator('tr[data-subscore="reliability"] [data-input="wilson_lower"]').count() == 1
    page.screenshot(path=str(SCREENSHOTS / "me-signed-in.png"), full_page=True)

    # 2. a delegation through the form: typed data from the server, signed in the wallet, stored
    page.fill("#delegation-delegate", HOT)
    page.fill("#delegation-until", UNTIL.isoformat())
    page.click("#delegation-submit")
    page.wait_for_selector(f'#me-delegations tr[data-delegate="{HOT}"]', timeout=20_000)

    kind, typed = page.wallet_requests[-1]
    assert kind == "eth_signTypedData_v4"
    assert typed["primaryType"] == "Delegation"
    assert typed["domain"] == {"name": "NaaP Analytics", "version": "1", "chainId": 42161}
    valid_until = int(datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    assert typed["message"] == {
        "delegate": HOT,
        "orchestrator": ADDR_A,
        "validUntil": valid_until,
        "nonce": 0,
    }

    row = Delegation.objects.get(delegate=HOT)
    assert (row.orchestrator, row.nonce, row.created_at) == (ADDR_A, "0", NOW)
    assert row.valid_until == datetime.fromtimestamp(valid_until, UTC) and row.revoked_at is None
    statement = eip712.DelegationStatement(HOT, ADDR_A, valid_until, 0, 42161)
    assert eip712.recover(eip712.delegation_typed_data(statement), row.signature) == ADDR_A
    assert AccessAuditLog.objects.filter(
        action="delegation", address=HOT, orchestrator=ADDR_A, actor=ADDR_A
    ).exists()

    listed = page.locator(f'#me-delegations tr[data-delegate="{HOT}"]')
    assert listed.get_attribute("data-state") == "active"
    assert listed.locator('[data-verified="1"]').count() == 1
    assert page.locator(f'#me-audit tr[data-action="delegation"][data-address="{HOT}"]').count() == 1
    assert "Delegation stored" in page.inner_text("#me-flash")
    page.locator("#delegations").screenshot(path=str(SCREENSHOTS / "me-delegation.png"))

    # 3. a refusal is shown in the page, before the wallet is asked: the orchestrator naming itself
    page.fill("#delegation-delegate", ADDR_A)
    page.click("#delegation-submit")
    page.wait_for_selector('#delegation-status[data-state="refused"]')
    assert "does not need to delegate to itself (bad_value)" in page.inner_text("#delegation-status")
    assert page.wallet_requests[-1] == (kind, typed)  # nothing more was signed
    assert Delegation.objects.count() == 1

    # 4. live: a new score run moves the numbers on /me without a reload
    page.wait_for_selector('#live-status[data-state="live"]')
    broadcast()  # the first broadcast establishes the stream's snapshot
    page.wait_for_function("Number(document.body.dataset.liveUpdates || 0) >= 1")
    page.evaluate("window.__marker = 'same page'")
    Score.objects.create(
        orchestrator=ADDR_A,
        workflow=PIPE,
        window="1h",
        window_start=NOW,
        window_end=NOW + timedelta(hours=1),
        version=stored.version,
        score=99.5,
        latency=99.0,
        reliability=99.0,
        performance=99.0,
        sufficient=True,
        sessions=9,
        inputs={"sessions": 9, "started": 9, "effective_ok": 9, "swaps": 0, "streams": 9},
        computed_at=NOW + timedelta(hours=1),
    )
    assert broadcast() == 1
    page.wait_for_function(
        "document.querySelector('#me-live [data-live=\"score\"]').textContent === '99.5'", timeout=20_000
    )
    assert page.inner_text('#me-live [data-live="sessions"]') == "9"
    assert page.evaluate("window.__marker") == "same page"
    page.locator("#me-live").screenshot(path=str(SCREENSHOTS / "me-live.png"))

    # 5. revoke it with a signed revocation from the same wallet
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(f'#me-delegations tr[data-delegate="{HOT}"] button.delegation-revoke')
    page.wait_for_selector(f'#me-delegations tr[data-delegate="{HOT}"][data-state="revoked"]', timeout=20_000)
    kind, revocation = page.wallet_requests[-1]
    assert (kind, revocation["primaryType"]) == ("eth_signTypedData_v4", "DelegationRevocation")
    row.refresh_from_db()
    assert (row.revoked_at, row.revoked_by) == (NOW, ADDR_A)
    assert page.locator(f'#me-audit tr[data-action="delegation_revoked"][data-address="{HOT}"]').count() == 1
