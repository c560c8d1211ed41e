"""Permission backends: where a grant or revocation of publish permission takes effect.

* ``DatabaseBackend`` — state only (our ``PublisherGrant`` rows are the whole truth; HTTP and replayed
  sources are enforced by ingest).
* ``StreamrRegistryBackend`` — stream publish permission (type 2) on Streamr's StreamRegistry contract
  through JSON-RPC: ``grantPermission`` for grants without expiry, ``setPermissionsForUser`` with
  ``publishExpiration`` = the delegation's ``validUntil`` for expiring ones (keeping the user's other
  permissions), ``revokePermission`` for revocations.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from eth_account import Account
from eth_utils import to_checksum_address

if TYPE_CHECKING:
    from web3 import Web3
    from web3.contract import Contract

PUBLISH = 2
MAX_UINT256 = 2**256 - 1


class PermissionBackend(Protocol):
    name: str

    def grant(self, address: str, expires_at: datetime | None) -> str:
        """Give ``address`` publish permission until ``expires_at`` (None: no expiry); returns a reference."""
        ...

    def revoke(self, address: str) -> str:
        """Take ``address``'s publish permission away; returns a reference (e.g. a transaction hash)."""
        ...


class DatabaseBackend:
    name = "database"

    def grant(self, address: str, expires_at: datetime | None) -> str:
        return ""

    def revoke(self, address: str) -> str:
        return ""


@cache
def registry_abi() -> list[dict[str, Any]]:
    """The StreamRegistry functions this backend calls (ABI fragment, matching StreamRegistryV5)."""
    text = resources.files("telemetry.access").joinpath("stream_registry_abi.json").read_text()
    abi: list[dict[str, Any]] = json.loads(text)
    return abi


class StreamrRegistryBackend:
    name = "streamr"

    def __init__(
        self, w3: Web3, registry_address: str, stream_id: str, *, private_key: str = "", sender: str = ""
    ) -> None:
        """Transactions are signed locally with ``private_key``, or sent ``from`` an unlocked ``sender``."""
        if not (private_key or sender):
            raise ValueError("the Streamr backend needs a private key (or an unlocked sender account)")
        self.w3 = w3
        self.stream_id = stream_id
        self.registry: Contract = w3.eth.contract(
            address=to_checksum_address(registry_address), abi=registry_abi()
        )
        self._key = private_key
        self.sender = to_checksum_address(Account.from_key(private_key).address if private_key else sender)

    def has_publish(self, address: str) -> bool:
        result: bool = self.registry.functions.hasPermission(
            self.stream_id, to_checksum_address(address), PUBLISH
        ).call()
        return result

    def grant(self, address: str, expires_at: datetime | None) -> str:
        user = to_checksum_address(address)
        if expires_at is None:
            return self._send(self.registry.functions.grantPermission(self.stream_id, user, PUBLISH))
        can_edit, can_delete, _publish, subscribe, can_grant = (
            self.registry.functions.getDirectPermissionsForUser(self.stream_id, user).call()
        )
        call = self.registry.functions.setPermissionsForUser(
            self.stream_id, user, can_edit, can_delete, int(expires_at.timestamp()), subscribe, can_grant
        )
        return self._send(call)

    def revoke(self, address: str) -> str:
        user = to_checksum_address(address)
        return self._send(self.registry.functions.revokePermission(self.stream_id, user, PUBLISH))

    def _send(self, call: Any) -> str:
        if self._key:
            tx = call.build_transaction(
                {"from": self.sender, "nonce": self.w3.eth.get_transaction_count(self.sender, "pending")}
            )
            signed = Account.sign_transaction(tx, self._key)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        else:
            tx_hash = call.transact({"from": self.sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise RuntimeError(f"StreamRegistry transaction {tx_hash.hex()} reverted")
        return "0x" + bytes(tx_hash).hex().removeprefix("0x")


def configured_backend() -> PermissionBackend:
    """The backend named by ``NAAP_ACCESS_BACKEND``, built from the settings; fails loudly when incomplete."""
    if settings.NAAP_ACCESS_BACKEND == "database":
        return DatabaseBackend()
    missing = [
        name
        for name in (
            "NAAP_STREAMR_RPC_URL",
            "NAAP_STREAMR_REGISTRY_ADDRESS",
            "NAAP_STREAMR_STREAM_ID",
            "NAAP_STREAMR_PRIVATE_KEY",
        )
        if not getattr(settings, name)
    ]
    if missing:
        raise RuntimeError(f"NAAP_ACCESS_BACKEND=streamr needs {', '.join(missing)}")
    from web3 import Web3  # imported on use: web3 is large and most processes never need it

    w3 = Web3(Web3.HTTPProvider(settings.NAAP_STREAMR_RPC_URL, request_kwargs={"timeout": 30}))
    return StreamrRegistryBackend(
        w3,
        settings.NAAP_STREAMR_REGISTRY_ADDRESS,
        settings.NAAP_STREAMR_STREAM_ID,
        private_key=settings.NAAP_STREAMR_PRIVATE_KEY,
    )
