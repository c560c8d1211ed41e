"""Sign-in end to end in headless Chromium, with a test wallet injected as the EIP-1193 provider."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from leaderboard.models import OrchestratorAllowlist

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WALLET = Account.from_key("0x" + "33" * 32)

# window.ethereum backed by a key held by the test (signing happens in Python through an exposed binding).
PROVIDER_JS = """
(() => {
  const address = "%s";
  window.ethereum = {
    isTestWallet: true,
    request: async ({ method, params }) => {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "eth_chainId") return "0xa4b1";
      if (method === "personal_sign") return await window.__testWalletSign(params[0], params[1]);
      throw Object.assign(new Error("unsupported method " + method), { code: 4200 });
    },
  };
})();
"""


@pytest.fixture
def page():
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail("install Debian's chromium (apt-get install chromium) for the browser tests")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context()
        signed: list[str] = []

        def sign(data_hex: str, account: str) -> str:
            assert account.lower() == WALLET.address.lower()
            text = bytes.fromhex(data_hex.removeprefix("0x")).decode()
            signed.append(text)
            return "0x" + WALLET.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")

        context.expose_function("__testWalletSign", sign)
        context.add_init_script(PROVIDER_JS % WALLET.address.lower())
        page = context.new_page()
        page.signed = signed  # type: ignore[attr-defined]
        yield page
        context.close()
        browser.close()


@pytest.fixture
def allowlisted(transactional_db) -> None:
    # Before the page fixture: Playwright's sync API keeps an event loop running in this thread.
    OrchestratorAllowlist.objects.create(address=WALLET.address)


def test_an_operator_signs_in_with_a_browser_wallet_and_signs_out(live_server, allowlisted, page):
    page.goto(f"{live_server.url}/login")
    page.click("#signin-button")

    # Without ?next= a signed-in orchestrator lands on its personal page.
    page.wait_for_url(f"{live_server.url}/me", timeout=15_000)
    page.wait_for_selector("#me-address")
    assert page.text_content("#me-address") == WALLET.address.lower()
    page.goto(f"{live_server.url}/login")
    assert page.text_content("#signed-in-address") == WALLET.address.lower()
    assert "(orchestrator)" in page.text_content("#signed-in")
    (text,) = page.signed
    host = live_server.url.split("://", 1)[1]
    assert text.startswith(f"{host} wants you to sign in with your Ethereum account:\n{WALLET.address}\n")
    assert f"URI: {live_server.url}/login\n" in text and "Chain ID: 42161\n" in text
    session = next(c for c in page.context.cookies() if c["name"] == "sessionid")
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signin.png"), full_page=True)

    page.click("#signout-button")
    page.wait_for_selector("#signin-button")
    assert not any(c["name"] == "sessionid" for c in page.context.cookies())
