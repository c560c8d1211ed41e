"""EIP-712 typed data of delegations and their revocations: build, sign (local keys), recover.

A delegation reads "address ``delegate`` may publish telemetry on behalf of orchestrator ``orchestrator``
until ``validUntil`` (seconds since the epoch)"; ``nonce`` lets an orchestrator issue several. A revocation
names the same (delegate, orchestrator, nonce) and is signed by the orchestrator. Pure: no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data

DOMAIN_NAME = "NaaP Analytics"
DOMAIN_VERSION = "1"
MAX_UINT256 = 2**256 - 1
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
]
DELEGATION_TYPE = [
    {"name": "delegate", "type": "address"},
    {"name": "orchestrator", "type": "address"},
    {"name": "validUntil", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
]
REVOCATION_TYPE = [
    {"name": "delegate", "type": "address"},
    {"name": "orchestrator", "type": "address"},
    {"name": "nonce", "type": "uint256"},
]


class SignatureError(ValueError):
    """The signature cannot be decoded or recovers to no address."""


@dataclass(frozen=True)
class DelegationStatement:
    delegate: str  # lower-case
    orchestrator: str  # lower-case
    valid_until: int  # seconds since the epoch
    nonce: int
    chain_id: int


def is_address(value: object) -> bool:
    return isinstance(value, str) and bool(_ADDRESS.match(value))


def _domain(chain_id: int) -> dict[str, Any]:
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id}


def delegation_typed_data(s: DelegationStatement) -> dict[str, Any]:
    """The full EIP-712 message a wallet signs with ``eth_signTypedData_v4``."""
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "Delegation": DELEGATION_TYPE},
        "primaryType": "Delegation",
        "domain": _domain(s.chain_id),
        "message": {
            "delegate": s.delegate,
            "orchestrator": s.orchestrator,
            "validUntil": s.valid_until,
            "nonce": s.nonce,
        },
    }


def revocation_typed_data(s: DelegationStatement) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, "DelegationRevocation": REVOCATION_TYPE},
        "primaryType": "DelegationRevocation",
        "domain": _domain(s.chain_id),
        "message": {"delegate": s.delegate, "orchestrator": s.orchestrator, "nonce": s.nonce},
    }


def sign(typed_data: dict[str, Any], private_key: str | bytes) -> str:
    """0x-prefixed 65-byte signature of ``typed_data`` (tests and tools; wallets sign in the browser)."""
    signed = Account.sign_message(encode_typed_data(full_message=typed_data), private_key)
    return "0x" + bytes(signed.signature).hex()


def recover(typed_data: dict[str, Any], signature: str) -> str:
    """The lower-case address that signed ``typed_data``; :class:`SignatureError` when none does."""
    text = signature.removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise SignatureError("the signature is not hexadecimal") from None
    if len(raw) != 65:
        raise SignatureError(f"the signature must be 65 bytes, got {len(raw)}")
    try:
        address: str = Account.recover_message(encode_typed_data(full_message=typed_data), signature=raw)
    except Exception as exc:  # eth-keys raises several types for invalid (r, s, v)
        raise SignatureError(f"the signature does not recover to an address: {exc}") from None
    return address.lower()
