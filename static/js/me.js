/* /me: copy the freshly created API token; confirm destructive actions; authorise and revoke delegates with
   the browser wallet (EIP-1193 window.ethereum, EIP-712 eth_signTypedData_v4). The server builds the typed
   data (domain, chain id, nonce) and verifies every signature; this script only carries it to the wallet. */
(function () {
  "use strict";

  function say(text, isError) {
    var status = document.getElementById("delegation-status");
    if (!status) return;
    status.textContent = text;
    status.className = isError ? "error" : "";
    status.setAttribute("role", isError ? "alert" : "status");
    status.dataset.state = isError ? "refused" : "ok";
  }

  function csrfToken() {
    var input = document.querySelector('#delegations input[name="csrfmiddlewaretoken"]') ||
      document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  async function answer(response) {
    var body;
    try { body = await response.json(); } catch (e) { body = {}; }
    if (!response.ok || !body.ok) {
      var reason = body.reason ? " (" + body.reason + ")" : "";
      throw new Error((body.detail || "the server refused (HTTP " + response.status + ")") + reason);
    }
    return body;
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(answer);
  }

  function postJson(url, data) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(data),
    }).then(answer);
  }

  // The wallet's account must be this orchestrator, on the chain the typed data names.
  async function walletAccount(orchestrator, chainId) {
    var wallet = window.ethereum;
    if (!wallet || typeof wallet.request !== "function") {
      throw new Error("No browser wallet found: open this page in a browser with your orchestrator's wallet.");
    }
    var accounts = await wallet.request({ method: "eth_requestAccounts" });
    var account = (accounts && accounts[0]) || "";
    if (account.toLowerCase() !== orchestrator.toLowerCase()) {
      throw new Error("Your wallet's account " + (account || "(none)") + " is not this orchestrator (" +
        orchestrator + "): switch accounts in the wallet and try again.");
    }
    var current = parseInt(await wallet.request({ method: "eth_chainId" }), 16);
    if (current !== chainId) {
      try {
        await wallet.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + chainId.toString(16) }] });
      } catch (e) {
        throw new Error("Switch your wallet to chain " + chainId + " (it is on chain " + current + ") and try again.");
      }
    }
    return account;
  }

  function signTyped(account, typedData) {
    return window.ethereum.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(typedData)] });
  }

  function reloadAt(fragment) {
    window.history.replaceState(null, "", window.location.pathname + window.location.search + "#" + fragment);
    window.location.reload();
  }

  function setupDelegationForm(form) {
    var button = form.querySelector('button[type="submit"]');
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      button.disabled = true;
      try {
        var delegate = form.elements.delegate.value.trim();
        var until = form.elements.until.value;
        say("Preparing the delegation…");
        var prepared = await getJson(form.dataset.typedDataUrl + "?delegate=" + encodeURIComponent(delegate) +
          "&until=" + encodeURIComponent(until));
        var typed = prepared.typedData;
        var account = await walletAccount(prepared.orchestrator, Number(typed.domain.chainId));
        say("Please sign the delegation in your wallet…");
        var signature = await signTyped(account, typed);
        var stored = await postJson(form.dataset.submitUrl, {
          delegate: typed.message.delegate,
          validUntil: typed.message.validUntil,
          nonce: typed.message.nonce,
          chainId: typed.domain.chainId,
          signature: signature,
        });
        say("Delegation stored and verified: signed by " + stored.signer + ".");
        form.dataset.stored = String(stored.id);
        reloadAt("delegations");
      } catch (err) {
        say("Not authorised: " + (err && err.message ? err.message : String(err)), true);
      } finally {
        button.disabled = false;
      }
    });
  }

  function setupRevoke(button, orchestrator) {
    button.addEventListener("click", async function () {
      if (!window.confirm("Revoke this delegation? The delegate will no longer be allowed to publish for you.")) return;
      button.disabled = true;
      try {
        var prepared = await getJson(button.dataset.revocationUrl);
        var account = await walletAccount(orchestrator, Number(prepared.typedData.domain.chainId));
        say("Please sign the revocation in your wallet…");
        var signature = await signTyped(account, prepared.typedData);
        await postJson(button.dataset.revokeUrl, { signature: signature });
        say("Delegation revoked.");
        reloadAt("delegations");
      } catch (err) {
        say("Not revoked: " + (err && err.message ? err.message : String(err)), true);
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var el = document.getElementById(button.dataset.copy);
        if (!el || !navigator.clipboard) return;
        navigator.clipboard.writeText(el.textContent.trim()).then(function () { button.textContent = "Copied"; });
      });
    });
    document.querySelectorAll("button.token-revoke, button.alert-delete").forEach(function (button) {
      button.addEventListener("click", function (ev) {
        if (!window.confirm(button.classList.contains("token-revoke")
          ? "Revoke this token? Requests using it will be refused."
          : "Delete this alert and its delivery log?")) ev.preventDefault();
      });
    });
    var form = document.getElementById("delegation-form");
    if (form) {
      setupDelegationForm(form);
      document.querySelectorAll("button.delegation-revoke").forEach(function (button) {
        setupRevoke(button, form.dataset.orchestrator);
      });
    }
  });
})();
