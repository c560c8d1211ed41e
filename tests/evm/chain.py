"""An in-process EVM running real contract bytecode from the contracts' own npm packages.

The packages are pinned in ``tests/evm/package.json`` and installed into ``tests/evm/node_modules``
(git-ignored) the first time a test needs them; nothing compiled is committed.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract

from leaderboard.ens import namehash

HERE = Path(__file__).resolve().parent
MODULES = HERE / "node_modules"
ARTIFACTS = {
    "ENSRegistry": MODULES / "@ensdomains/ens/build/contracts/ENSRegistry.json",
    "ReverseRegistrar": MODULES / "@ensdomains/ens/build/contracts/ReverseRegistrar.json",
    "PublicResolver": MODULES / "@ensdomains/resolver/build/contracts/PublicResolver.json",
    "StreamRegistryV5": MODULES
    / "@streamr/network-contracts/dist/artifacts/contracts/StreamRegistry/StreamRegistryV5.sol/StreamRegistryV5.json",
}


def ensure_packages() -> None:
    """Run ``npm install`` into tests/evm once (a file lock keeps parallel runs from colliding)."""
    if all(p.exists() for p in ARTIFACTS.values()):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install the pinned contract packages (tests/evm/package.json)")
    with open(HERE / ".npm-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all(p.exists() for p in ARTIFACTS.values()):
            return
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )


@cache
def artifact(name: str) -> dict[str, Any]:
    ensure_packages()
    data: dict[str, Any] = json.loads(ARTIFACTS[name].read_text())
    return data


def new_chain() -> Web3:
    return Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))


def deploy(w3: Web3, name: str, *args: Any, sender: str | None = None, gas: int = 8_000_000) -> Contract:
    spec = artifact(name)
    factory = w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
    tx = factory.constructor(*args).transact({"from": sender or w3.eth.accounts[0], "gas": gas})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return w3.eth.contract(address=receipt["contractAddress"], abi=spec["abi"])


def label(text: str) -> bytes:
    return Web3.keccak(text=text)


@dataclass
class EnsDeployment:
    """ENS registry, public resolver and reverse registrar, with the deployer owning ``eth``."""

    w3: Web3
    registry: Contract
    resolver: Contract
    reverse: Contract
    admin: str

    def _send(self, call: Any, sender: str) -> None:
        self.w3.eth.wait_for_transaction_receipt(call.transact({"from": sender, "gas": 500_000}))

    def register(self, name: str, owner: str, points_to: str | None = None) -> None:
        """Give ``<label>.eth`` to ``owner`` and point its forward record at ``points_to`` (default owner)."""
        first, parent = name.split(".", 1)
        assert parent == "eth"
        self._send(self.registry.functions.setSubnodeOwner(namehash("eth"), label(first), owner), self.admin)
        node = namehash(name)
        self._send(self.registry.functions.setResolver(node, self.resolver.address), owner)
        self._send(self.resolver.functions.setAddr(node, points_to or owner), owner)

    def set_primary(self, account: str, name: str) -> None:
        """``account`` claims ``name`` as its reverse record (anyone may claim any name here)."""
        self._send(self.reverse.functions.setName(name), account)


def deploy_ens(w3: Web3) -> EnsDeployment:
    admin = w3.eth.accounts[0]
    registry = deploy(w3, "ENSRegistry", sender=admin)
    resolver = deploy(w3, "PublicResolver", registry.address, sender=admin)
    send = lambda call: w3.eth.wait_for_transaction_receipt(  # noqa: E731
        call.transact({"from": admin, "gas": 500_000})
    )
    root = b"\x00" * 32
    send(registry.functions.setSubnodeOwner(root, label("eth"), admin))
    send(registry.functions.setSubnodeOwner(root, label("reverse"), admin))
    reverse = deploy(w3, "ReverseRegistrar", registry.address, resolver.address, sender=admin)
    send(registry.functions.setSubnodeOwner(namehash("reverse"), label("addr"), reverse.address))
    return EnsDeployment(w3=w3, registry=registry, resolver=resolver, reverse=reverse, admin=admin)


def deploy_approved_hash_wallet(w3: Web3, approved: bytes) -> str:
    """A minimal ERC-1271 contract wallet that accepts exactly one pre-approved message hash.

    Like a multisig's "signed messages": ``isValidSignature(hash, sig)`` returns the magic value
    0x1626ba7e when ``hash`` equals the hash stored at deployment (slot 0), else zero. Hand-assembled:
    runtime = CALLDATALOAD(4) == SLOAD(0) ? return magic << 224 : return 0.
    """
    assert len(approved) == 32
    runtime = bytes.fromhex(
        "600435"
        "600054"
        "14"
        "601457"  # hash == stored ? jump to 0x14
        "600060005260206000f3"  # return 32 zero bytes
        "5b"
        "631626ba7e60e01b"
        "600052"
        "60206000f3"  # return the magic value, left-aligned
    )
    init = (
        b"\x7f"
        + approved
        + bytes.fromhex("600055")  # SSTORE(0, approved)
        + bytes([0x60, len(runtime), 0x60, 0x30, 0x60, 0x00, 0x39])  # CODECOPY(0, 48, len)
        + bytes([0x60, len(runtime), 0x60, 0x00, 0xF3])  # RETURN(0, len)
    )
    assert len(init) == 0x30
    tx = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": init + runtime, "gas": 200_000})
    address: str = w3.eth.wait_for_transaction_receipt(tx)["contractAddress"]
    return address


def next_contract_address(w3: Web3, sender: str | None = None) -> str:
    """The address the next contract created by ``sender`` will get: keccak(rlp([sender, nonce]))[12:]."""
    import rlp

    who = sender or w3.eth.accounts[0]
    nonce = w3.eth.get_transaction_count(who)
    return Web3.to_checksum_address(Web3.keccak(rlp.encode([bytes.fromhex(who[2:]), nonce]))[12:])
