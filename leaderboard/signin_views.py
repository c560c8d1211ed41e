"""Sign-in pages and endpoints: ``/login``, ``/auth/nonce``, ``/auth/verify`` and ``/auth/logout``.

Thin edges over ``leaderboard.auth``: parse, call the service, answer JSON. CSRF protection is Django's
middleware (never exempted here); the session cookie flags come from settings.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST
from eth_utils import is_address, to_checksum_address

from leaderboard import auth
from sla.http import client_ip

if TYPE_CHECKING:
    pass

SESSION_NONCE_KEY = "siwe_nonce"
SESSION_IDENTITY_KEY = "siwe"
STATEMENT = "Sign in to NaaP Analytics as the operator of this address."


def signed_in_identity(request: HttpRequest) -> dict[str, Any] | None:
    """The wallet identity recorded at sign-in (address, chain_id, is_orchestrator), if signed in."""
    if not request.user.is_authenticated:
        return None
    identity = request.session.get(SESSION_IDENTITY_KEY)
    return identity if isinstance(identity, dict) else None


def _origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _refusal(reason: str, status: int, detail: str) -> JsonResponse:
    return JsonResponse({"ok": False, "reason": reason, "detail": detail}, status=status)


def safe_next(request: HttpRequest) -> str:
    """Where to go after signing in: ``?next=`` when it stays on this site, else the personal page."""
    wanted = str(request.GET.get("next", ""))
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("me")


@require_GET
@never_cache
@ensure_csrf_cookie
def login_page(request: HttpRequest) -> HttpResponse:
    config = {
        "nonceUrl": reverse("signin-nonce"),
        "verifyUrl": reverse("signin-verify"),
        "statement": STATEMENT,
        "chainIds": list(auth.allowed_chain_ids()),
        "next": safe_next(request),
    }
    return render(
        request,
        "leaderboard/login.html",
        {"identity": signed_in_identity(request), "signin_config": config},
    )


@require_GET
@never_cache
def nonce_view(request: HttpRequest) -> JsonResponse:
    retry_after = auth.nonce_retry_after(client_ip(request), time.time())
    if retry_after is not None:
        refused = _refusal(
            "rate_limited", 429, "too many sign-in attempts from this address; try again later"
        )
        refused["Retry-After"] = str(retry_after)
        return refused
    address = request.GET.get("address", "")
    if address and not is_address(address):
        return _refusal("malformed_request", 400, "address is not an Ethereum address")
    issued = auth.issue_nonce()
    request.session[SESSION_NONCE_KEY] = issued.nonce
    return JsonResponse(
        {
            "nonce": issued.nonce,
            # EIP-4361 wants the EIP-55 checksummed form, which the page cannot compute without keccak.
            "address": to_checksum_address(address) if address else "",
            "expiresAt": issued.expires_at.isoformat(),
            "domain": request.get_host(),
            "uri": _origin(request) + reverse("signin-page"),
            "chainIds": list(auth.allowed_chain_ids()),
            "statement": STATEMENT,
        }
    )


@require_POST
@never_cache
def verify_view(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _refusal("malformed_request", 400, "body is not JSON")
    if not isinstance(body, dict):
        return _refusal("malformed_request", 400, "body is not a JSON object")
    message, signature = body.get("message"), body.get("signature")
    if not isinstance(message, str) or not isinstance(signature, str):
        return _refusal("malformed_request", 400, "message and signature are required strings")
    try:
        result = auth.verify_sign_in(
            message,
            signature,
            domain=request.get_host(),
            origin=_origin(request),
            session_nonce=request.session.get(SESSION_NONCE_KEY),
        )
    except auth.SignInRefused as refused:
        return _refusal(refused.reason, refused.status, refused.detail)

    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=result.address)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the session key
    request.session.pop(SESSION_NONCE_KEY, None)
    request.session[SESSION_IDENTITY_KEY] = {
        "address": result.address,
        "chain_id": result.chain_id,
        "is_orchestrator": result.is_orchestrator,
        "contract_wallet": result.contract_wallet,
    }
    return JsonResponse(
        {
            "ok": True,
            "address": result.address,
            "chainId": result.chain_id,
            "isOrchestrator": result.is_orchestrator,
            "contractWallet": result.contract_wallet,
        }
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # flushes the session
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"ok": True, "signedIn": False})
    return HttpResponseRedirect(reverse("signin-page"))
