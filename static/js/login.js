// Sign-In with Ethereum (EIP-4361) through the browser wallet (EIP-1193 window.ethereum).
(function () {
  "use strict";

  const button = document.getElementById("signin-button");
  const statusEl = document.getElementById("signin-status");
  const configEl = document.getElementById("signin-config");
  if (!button || !configEl) return;
  const config = JSON.parse(configEl.textContent);

  function say(text, isError) {
    statusEl.textContent = text;
    statusEl.className = isError ? "error" : "";
  }

  function toHex(text) {
    const bytes = new TextEncoder().encode(text);
    return "0x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // EIP-4361 message text; field order and line breaks are fixed by the standard.
  function buildMessage(f) {
    return (
      `${f.domain} wants you to sign in with your Ethereum account:\n` +
      `${f.address}\n\n` +
      `${f.statement}\n\n` +
      `URI: ${f.uri}\n` +
      `Version: 1\n` +
      `Chain ID: ${f.chainId}\n` +
      `Nonce: ${f.nonce}\n` +
      `Issued At: ${f.issuedAt}\n` +
      `Expiration Time: ${f.expirationTime}`
    );
  }

  async function signIn() {
    const wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      say("No browser wallet found. Install or unlock a wallet and reload this page.", true);
      return;
    }
    button.disabled = true;
    try {
      say("Asking your wallet for an account…");
      const accounts = await wallet.request({ method: "eth_requestAccounts" });
      if (!accounts || !accounts.length) throw new Error("the wallet returned no account");
      const chainId = parseInt(await wallet.request({ method: "eth_chainId" }), 16);

      const nonceResponse = await fetch(
        config.nonceUrl + "?address=" + encodeURIComponent(accounts[0]),
        { credentials: "same-origin", headers: { Accept: "application/json" } },
      );
      const issued = await nonceResponse.json();
      if (!nonceResponse.ok) throw new Error(issued.detail || "could not get a sign-in nonce");

      const now = new Date();
      const message = buildMessage({
        domain: issued.domain,
        address: issued.address,
        statement: issued.statement,
        uri: issued.uri,
        chainId: chainId,
        nonce: issued.nonce,
        issuedAt: now.toISOString(),
        expirationTime: new Date(now.getTime() + 5 * 60 * 1000).toISOString(),
      });

      say("Please sign the message in your wallet…");
      const signature = await wallet.request({
        method: "personal_sign",
        params: [toHex(message), accounts[0]],
      });

      const verify = await fetch(config.verifyUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": document.getElementById("csrf-token").value,
        },
        body: JSON.stringify({ message: message, signature: signature }),
      });
      const result = await verify.json();
      if (!verify.ok || !result.ok) {
        throw new Error((result.detail || "sign-in refused") + (result.reason ? ` (${result.reason})` : ""));
      }
      say(`Signed in as ${result.address}${result.isOrchestrator ? " (orchestrator)" : ""}.`);
      window.location.assign(config.next || window.location.pathname);
    } catch (err) {
      say("Sign-in failed: " + (err && err.message ? err.message : String(err)), true);
      button.disabled = false;
    }
  }

  button.addEventListener("click", signIn);
})();
