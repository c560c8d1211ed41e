"""ENS primary names for orchestrators: on-chain lookup in the background, database cache on the request path.

Lookup (``lookup_primary_name``) follows ENS's rule for primary names: the reverse record of
``<address>.addr.reverse`` names a candidate, and the candidate counts only if its forward ``addr``
record points back to the same address. Pages and APIs read only the cache (``names_for``,
``resolve_name``); the Celery task (``leaderboard.tasks.refresh_ens_names``) and ``manage.py refresh_ens`` fill it. Without a configured or
reachable JSON-RPC endpoint nothing is written and pages simply show addresses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from eth_utils import keccak, to_checksum_address

from leaderboard.models import EnsName
from sla import queries as sla_queries

if TYPE_CHECKING:
    from web3 import Web3

log = logging.getLogger(__name__)

# The ENS registry has the same address on mainnet and its testnets.
MAINNET_ENS_REGISTRY = "0x00000000000C2E074eC69A0dFb2997BA6C7d2e1e"
ZERO_ADDRESS = "0x" + "00" * 20
NAME_TTL = timedelta(hours=6)  # a found (or confirmed absent) name is looked at again after this
RETRY_AFTER_ERROR = timedelta(minutes=10)  # an RPC failure is retried sooner
MAX_STALENESS = timedelta(days=7)  # a name not re-verified for this long is no longer shown
RPC_TIMEOUT_S = 5.0

_ADDRESS_RE = re.compile(r"^0x[0-9a-f]{40}$")
_LABEL_RE = re.compile(r"^[a-z0-9_-]{1,63}$")

# Only the functions we call, as in the ENS registry and public resolver interfaces.
REGISTRY_ABI = [
    {
        "name": "resolver",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "node", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "address"}],
    }
]
RESOLVER_ABI = [
    {
        "name": "name",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "node", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "string"}],
    },
    {
        "name": "addr",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "node", "type": "bytes32"}],
        "outputs": [{"name": "", "type": "address"}],
    },
]


class EnsLookupError(Exception):
    """The chain could not be asked (RPC unreachable, call failed)."""


@dataclass(frozen=True)
class LookupResult:
    address: str
    name: str  # "" when there is no verified primary name
    reason: str  # "verified", "no_reverse_record", "no_resolver", "forward_mismatch", "invalid_name"


# --- pure helpers -----------------------------------------------------------------------------------


def namehash(name: str) -> bytes:
    """EIP-137 namehash: fold keccak256 over the labels from the right, starting from 32 zero bytes."""
    node = b"\x00" * 32
    if name:
        for label in reversed(name.split(".")):
            node = keccak(node + keccak(text=label))
    return node


def normalize_name(name: str) -> str | None:
    """The canonical (lower-case) form of a name, or None when we do not accept it.

    Only ASCII labels of letters, digits, hyphens and underscores are accepted: that keeps homoglyph
    look-alikes off the pages without carrying a full ENSIP-15 implementation (web3's normaliser does
    not run with the installed ``pyunormalize``). Names outside this set are simply not shown.
    """
    candidate = name.strip().lower()
    if not candidate or len(candidate) > 255:
        return None
    labels = candidate.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return None
    return candidate


def normalize_address(address: str) -> str | None:
    value = address.strip().lower()
    return value if _ADDRESS_RE.match(value) else None


def reverse_node(address: str) -> bytes:
    """The node of ``<address hex, lower-case, no 0x>.addr.reverse``."""
    return namehash(f"{address.lower().removeprefix('0x')}.addr.reverse")


# --- on-chain lookup (background only) --------------------------------------------------------------


def registry_address() -> str:
    return str(settings.NAAP_ENS_REGISTRY or MAINNET_ENS_REGISTRY)


def web3_from_settings() -> Web3 | None:
    """A Web3 client for ``NAAP_ETH_RPC_URL``, or None when no endpoint is configured."""
    url = str(settings.NAAP_ETH_RPC_URL)
    if not url:
        return None
    from web3 import Web3  # imported on use: web3 is large and most processes never need it

    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT_S}))


def _resolver_of(w3: Web3, registry: str, node: bytes) -> str | None:
    contract = w3.eth.contract(address=to_checksum_address(registry), abi=REGISTRY_ABI)
    resolver = str(contract.functions.resolver(node).call())
    return None if int(resolver, 16) == 0 else resolver


def lookup_primary_name(w3: Web3, address: str, registry: str | None = None) -> LookupResult:
    """Reverse-resolve ``address`` and keep the name only if its forward record is the same address.

    Raises ``EnsLookupError`` when the chain cannot be asked.
    """
    addr = normalize_address(address)
    if addr is None:
        raise ValueError(f"not an address: {address!r}")
    reg = registry or registry_address()
    try:
        rnode = reverse_node(addr)
        resolver = _resolver_of(w3, reg, rnode)
        if resolver is None:
            return LookupResult(addr, "", "no_resolver")
        reverse = w3.eth.contract(address=to_checksum_address(resolver), abi=RESOLVER_ABI)
        claimed = str(reverse.functions.name(rnode).call())
        if not claimed:
            return LookupResult(addr, "", "no_reverse_record")
        name = normalize_name(claimed)
        if name is None or name != claimed:
            # A name that is not in canonical form could display differently from what it hashes to.
            return LookupResult(addr, "", "invalid_name")
        fnode = namehash(name)
        forward_resolver = _resolver_of(w3, reg, fnode)
        if forward_resolver is None:
            return LookupResult(addr, "", "forward_mismatch")
        forward = w3.eth.contract(address=to_checksum_address(forward_resolver), abi=RESOLVER_ABI)
        target = str(forward.functions.addr(fnode).call()).lower()
    except ValueError:
        raise
    except Exception as exc:  # connection errors, reverted calls, undecodable answers
        raise EnsLookupError(f"{type(exc).__name__}: {exc}") from exc
    if target != addr:
        return LookupResult(addr, "", "forward_mismatch")
    return LookupResult(addr, name, "verified")


def _store(result: LookupResult, now: datetime, ttl: timedelta) -> None:
    EnsName.objects.update_or_create(
        address=result.address,
        defaults={
            "name": result.name,
            "verified_at": now if result.name else None,
            "checked_at": now,
            "expires_at": now + ttl,
            "error": ""
            if result.reason in ("verified", "no_resolver", "no_reverse_record")
            else result.reason,
        },
    )


def _store_error(address: str, message: str, now: datetime) -> None:
    # Keep a previously verified name (it stays visible until MAX_STALENESS) and look again soon.
    updated = EnsName.objects.filter(address=address).update(
        checked_at=now, expires_at=now + RETRY_AFTER_ERROR, error=message[:500]
    )
    if not updated:
        EnsName.objects.create(
            address=address, name="", checked_at=now, expires_at=now + RETRY_AFTER_ERROR, error=message[:500]
        )


@dataclass(frozen=True)
class RefreshSummary:
    checked: int
    named: int
    errors: int
    skipped_reason: str = ""  # "no_rpc" or "rpc_unreachable" when nothing was asked


def refresh_names(
    addresses: Iterable[str],
    *,
    w3: Web3 | None = None,
    registry: str | None = None,
    now: datetime | None = None,
    ttl: timedelta = NAME_TTL,
) -> RefreshSummary:
    """Look up and cache the primary names of ``addresses`` (invalid addresses are ignored)."""
    client = w3 if w3 is not None else web3_from_settings()
    if client is None:
        return RefreshSummary(0, 0, 0, "no_rpc")
    moment = now or timezone.now()
    wanted = sorted({a for a in (normalize_address(x) for x in addresses) if a})
    if not wanted:
        return RefreshSummary(0, 0, 0)
    try:
        reachable = client.is_connected()
    except Exception:
        reachable = False
    if not reachable:
        log.warning("ENS refresh skipped: JSON-RPC endpoint not reachable")
        return RefreshSummary(0, 0, 0, "rpc_unreachable")
    checked = named = errors = 0
    for address in wanted:
        try:
            result = lookup_primary_name(client, address, registry)
        except EnsLookupError as exc:
            errors += 1
            _store_error(address, str(exc), moment)
            continue
        checked += 1
        named += bool(result.name)
        _store(result, moment, ttl)
    return RefreshSummary(checked, named, errors)


def known_orchestrators() -> list[str]:
    """Orchestrator addresses seen in derived sessions, normalised."""
    return sorted({a for a in (normalize_address(v) for v in sla_queries.known_orchestrators()) if a})


def due_addresses(addresses: Iterable[str], now: datetime) -> list[str]:
    """Those of ``addresses`` with no cached row or an expired one."""
    wanted = {a for a in (normalize_address(x) for x in addresses) if a}
    fresh = set(
        EnsName.objects.filter(address__in=wanted, expires_at__gt=now).values_list("address", flat=True)
    )
    return sorted(wanted - fresh)


def refresh_due(
    *,
    w3: Web3 | None = None,
    registry: str | None = None,
    now: datetime | None = None,
    limit: int = 500,
    addresses: Iterable[str] | None = None,
) -> RefreshSummary:
    """Refresh names of known orchestrators whose cache entry is missing or expired."""
    moment = now or timezone.now()
    candidates = list(addresses) if addresses is not None else known_orchestrators()
    due = due_addresses(candidates, moment)[:limit]
    return refresh_names(due, w3=w3, registry=registry, now=moment)


# --- request path: database cache only ----------------------------------------------------------------


def _visible(now: datetime) -> Q:
    return ~Q(name="") & Q(verified_at__gte=now - MAX_STALENESS)


def names_for(addresses: Iterable[str], now: datetime | None = None) -> dict[str, str]:
    """Cached verified primary names of ``addresses``, keyed by lower-case address; absent ones left out."""
    moment = now or timezone.now()
    wanted = {a for a in (normalize_address(x) for x in addresses) if a}
    if not wanted:
        return {}
    rows = EnsName.objects.filter(_visible(moment), address__in=wanted).values_list("address", "name")
    return dict(rows)


def resolve_name(name: str, now: datetime | None = None) -> str | None:
    """The address whose verified primary name is ``name`` (from the cache), or None."""
    normalized = normalize_name(name)
    if normalized is None:
        return None
    moment = now or timezone.now()
    row = (
        EnsName.objects.filter(_visible(moment), name=normalized)
        .order_by("-verified_at")
        .values_list("address", flat=True)
        .first()
    )
    return row
