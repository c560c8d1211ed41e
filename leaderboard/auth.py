"""Sign-In with Ethereum (EIP-4361): nonces, message verification, and who counts as an orchestrator.

The view layer (``leaderboard.signin_views``) parses requests and calls ``issue_nonce`` and
``verify_sign_in``; every refusal is a ``SignInRefused`` with a stable machine-readable reason.
"""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils import is_checksum_address, to_checksum_address

from leaderboard.models import OrchestratorAllowlist, SignInNonce

if TYPE_CHECKING:
    from web3 import Web3

NONCE_TTL = timedelta(minutes=5)
MAX_MESSAGE_LIFETIME = timedelta(minutes=10)  # expiration_time - issued_at
CLOCK_SKEW = timedelta(seconds=60)  # issued-at may be this far ahead of our clock
MAX_MESSAGE_CHARS = 4096
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ERC1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "magicValue", "type": "bytes4"}],
    }
]


def now() -> datetime:
    """The clock of this module (tests replace it)."""
    return timezone.now()


class SignInRefused(Exception):
    """A sign-in attempt that must be refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, reason: str, status: int, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail or reason.replace("_", " ")


@dataclass(frozen=True)
class SignedIn:
    address: str  # lower-case
    chain_id: int
    is_orchestrator: bool
    contract_wallet: bool


def allowed_chain_ids() -> tuple[int, ...]:
    return tuple(settings.NAAP_SIWE_CHAIN_IDS)


def issue_nonce(at: datetime | None = None) -> SignInNonce:
    moment = at or now()
    return SignInNonce.objects.create(
        nonce=secrets.token_hex(16), created_at=moment, expires_at=moment + NONCE_TTL
    )


def nonce_retry_after(client: str, moment: float) -> int | None:
    """Count a nonce request from ``client`` (an IP) in its fixed window; None when it may have one, else
    the seconds until its window ends. Anyone may ask for nonces, so each one issued costs a row until
    ``purge_nonces`` runs: this bounds how fast one client can add rows."""
    window = int(settings.NAAP_SIWE_NONCE_RATE_WINDOW_S)
    index = int(moment // window)
    key = f"siwe:nonce-rate:{client}:{index}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        count = 1
    if count <= int(settings.NAAP_SIWE_NONCE_RATE_LIMIT):
        return None
    return max(1, math.ceil((index + 1) * window - moment))


def purge_nonces(at: datetime | None = None) -> int:
    """Delete nonces that can no longer be used."""
    deleted, _ = SignInNonce.objects.filter(expires_at__lt=(at or now()) - NONCE_TTL).delete()
    return deleted


def is_orchestrator(address: str) -> bool:
    """An on-chain address seen in network capabilities, or one on the admins' allowlist."""
    from telemetry.queries import is_known_orchestrator_address

    addr = address.lower()
    return OrchestratorAllowlist.objects.filter(address=addr).exists() or is_known_orchestrator_address(addr)


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}".lower()


# EIP-4361 message text, field by field in the order the standard fixes.
_SIWE_RE = re.compile(
    r"\A(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)"
    r" wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n"
    r"(?:(?P<statement>[^\n]+)\n\n)?"
    r"URI: (?P<uri>[^\s]+)\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]{1,20})\n"
    r"Nonce: (?P<nonce>[a-zA-Z0-9]{8,64})\n"
    r"Issued At: (?P<issued_at>[0-9T:.+\-Z]+)"
    r"(?:\nExpiration Time: (?P<expiration_time>[0-9T:.+\-Z]+))?"
    r"(?:\nNot Before: (?P<not_before>[0-9T:.+\-Z]+))?"
    r"(?:\nRequest ID: (?P<request_id>[^\n]*))?"
    r"(?:\nResources:(?P<resources>(?:\n- [^\s]+)+))?"
    r"\Z"
)


@dataclass(frozen=True)
class SiweFields:
    domain: str
    address: str  # as written (EIP-55)
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime | None
    not_before: datetime | None


def _timestamp(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise SignInRefused("malformed_message", 400, f"bad timestamp {value!r}") from exc
    if parsed.tzinfo is None:
        raise SignInRefused("malformed_message", 400, f"timestamp without offset {value!r}")
    return parsed


def parse_message(message: str) -> SiweFields:
    """Parse an EIP-4361 message; refuse anything that does not follow the standard's layout."""
    if not message or len(message) > MAX_MESSAGE_CHARS:
        raise SignInRefused("malformed_message", 400, "missing or oversized message")
    match = _SIWE_RE.match(message)
    if match is None:
        raise SignInRefused("malformed_message", 400, "not an EIP-4361 message")
    address = match["address"]
    if not is_checksum_address(address):
        raise SignInRefused("malformed_message", 400, "address is not in EIP-55 checksum form")
    issued = _timestamp(match["issued_at"])
    assert issued is not None
    return SiweFields(
        domain=match["domain"],
        address=address,
        uri=match["uri"],
        chain_id=int(match["chain_id"]),
        nonce=match["nonce"],
        issued_at=issued,
        expiration_time=_timestamp(match["expiration_time"]),
        not_before=_timestamp(match["not_before"]),
    )


def _signature_bytes(signature: str) -> bytes:
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError as exc:
        raise SignInRefused("bad_signature", 401, "signature is not hex") from exc
    if not raw:
        raise SignInRefused("bad_signature", 401, "empty signature")
    return raw


def _recovers_to(message: str, signature: bytes, address: str) -> bool:
    if len(signature) != 65:
        return False
    try:
        signer = Account.recover_message(encode_defunct(text=message), signature=signature)
    except Exception:  # invalid v/r/s values
        return False
    return str(signer).lower() == address.lower()


def _erc1271_valid(w3: Web3, message: str, signature: bytes, address: str) -> bool:
    """Ask a contract wallet whether it accepts ``signature`` for the EIP-191 hash of ``message``."""
    digest = _hash_eip191_message(encode_defunct(text=message))
    try:
        if not w3.eth.get_code(to_checksum_address(address)):
            return False
        wallet = w3.eth.contract(address=to_checksum_address(address), abi=ERC1271_ABI)
        answer = wallet.functions.isValidSignature(digest, signature).call()
    except Exception:  # unreachable RPC, reverted call, undecodable answer: not valid
        return False
    return bytes(answer) == ERC1271_MAGIC


def _web3_for_contract_wallets() -> Web3 | None:
    from leaderboard.ens import web3_from_settings

    return web3_from_settings()


def _check_nonce(nonce: SignInNonce | None, moment: datetime) -> SignInNonce:
    if nonce is None:
        raise SignInRefused("nonce_unknown", 401, "nonce was not issued here")
    if nonce.used_at is not None:
        raise SignInRefused("nonce_used", 401, "nonce was already used (replayed message)")
    if moment >= nonce.expires_at:
        raise SignInRefused("nonce_expired", 401, "nonce is older than five minutes")
    return nonce


def verify_sign_in(
    message: str,
    signature: str,
    *,
    domain: str,
    origin: str,
    session_nonce: str | None,
    w3: Web3 | None = None,
    at: datetime | None = None,
) -> SignedIn:
    """Check an EIP-4361 message and its signature; consume its nonce. Raises ``SignInRefused``.

    ``domain`` is the host the request was made to and ``origin`` its scheme and host; the message must
    name both. ``session_nonce`` is the nonce issued to this browser session.
    """
    moment = at or now()
    msg = parse_message(message)
    if msg.domain.lower() != domain.lower():
        raise SignInRefused("domain_mismatch", 403, f"message is for {msg.domain}, this is {domain}")
    if _origin(msg.uri) != origin.lower():
        raise SignInRefused("uri_mismatch", 403, f"message URI {msg.uri} is not on {origin}")
    if msg.chain_id not in allowed_chain_ids():
        raise SignInRefused("chain_not_allowed", 403, f"chain id {msg.chain_id} is not accepted here")
    issued = msg.issued_at
    if issued > moment + CLOCK_SKEW:
        raise SignInRefused("issued_in_future", 401, "message issued-at is in the future")
    if msg.expiration_time is None:
        raise SignInRefused("expiry_missing", 400, "message has no expiration time")
    expires = msg.expiration_time
    if expires - issued > MAX_MESSAGE_LIFETIME:
        raise SignInRefused("expiry_too_far", 400, "message is valid for too long")
    if moment >= expires:
        raise SignInRefused("expired_message", 401, "message has expired")
    if msg.not_before is not None and moment < msg.not_before:
        raise SignInRefused("not_yet_valid", 401, "message is not valid yet")
    _check_nonce(SignInNonce.objects.filter(nonce=msg.nonce).first(), moment)
    if not session_nonce or not secrets.compare_digest(msg.nonce, session_nonce):
        raise SignInRefused("nonce_mismatch", 401, "nonce was not issued to this session")

    raw_signature = _signature_bytes(signature)
    address = msg.address.lower()
    contract_wallet = False
    if not _recovers_to(message, raw_signature, address):
        client = w3 if w3 is not None else _web3_for_contract_wallets()
        if client is None or not _erc1271_valid(client, message, raw_signature, address):
            raise SignInRefused("bad_signature", 401, "signature does not match the address")
        contract_wallet = True

    with transaction.atomic():
        nonce = _check_nonce(SignInNonce.objects.select_for_update().filter(nonce=msg.nonce).first(), moment)
        nonce.used_at = moment
        nonce.used_by = address
        nonce.save(update_fields=["used_at", "used_by"])
    return SignedIn(
        address=address,
        chain_id=msg.chain_id,
        is_orchestrator=is_orchestrator(address),
        contract_wallet=contract_wallet,
    )
