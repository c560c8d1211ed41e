"""The Metrics Access Controller's arithmetic: who should publish, and what to change to get there.

Pure: frozen dataclasses in and out, no Django. ``services.reconcile`` feeds it from the database and
applies the plan through a permission backend.

desired = active orchestrators ∪ gateways ∪ delegates of valid delegations ∪ allowlist − blocklist
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

# When an address qualifies several ways, the first role here wins (an unexpiring role before a delegate).
ROLE_ORDER = ("orchestrator", "gateway", "allowlist", "delegate")


@dataclass(frozen=True)
class ValidDelegation:
    delegate: str
    orchestrator: str
    valid_from: datetime  # when it was submitted
    valid_until: datetime


@dataclass(frozen=True)
class AccessInputs:
    now: datetime
    orchestrators: Mapping[str, datetime]  # address → first seen in the activity window
    gateways: Mapping[str, datetime]  # address → publisher created
    delegations: tuple[ValidDelegation, ...]  # not revoked; expired ones are ignored here
    allowed: Mapping[str, datetime]  # address → entry created
    blocked: Mapping[str, datetime]  # address → entry created


@dataclass(frozen=True)
class Desired:
    address: str
    role: str
    orchestrator: str  # for a delegate: the orchestrator it speaks for; else ""
    valid_from: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class Applied:
    """An open grant (the current applied state)."""

    address: str
    role: str
    orchestrator: str
    expires_at: datetime | None


@dataclass(frozen=True)
class Revocation:
    address: str
    ended_at: datetime  # when the reason for the grant ended
    why: str


@dataclass(frozen=True)
class Plan:
    grants: tuple[Desired, ...]  # new addresses
    changes: tuple[Desired, ...]  # addresses whose role, orchestrator or expiry changed
    revocations: tuple[Revocation, ...]

    @property
    def empty(self) -> bool:
        return not (self.grants or self.changes or self.revocations)


def desired_publishers(inputs: AccessInputs) -> dict[str, Desired]:
    """Every address that should hold publish permission now, with why and until when."""
    candidates: dict[str, list[Desired]] = {}

    def add(d: Desired) -> None:
        candidates.setdefault(d.address, []).append(d)

    for address, since in inputs.orchestrators.items():
        add(Desired(address, "orchestrator", "", since, None))
    for address, since in inputs.gateways.items():
        add(Desired(address, "gateway", "", since, None))
    for address, since in inputs.allowed.items():
        add(Desired(address, "allowlist", "", since, None))
    for d in inputs.delegations:
        if d.valid_until > inputs.now and d.valid_from <= inputs.now:
            add(Desired(d.delegate, "delegate", d.orchestrator, d.valid_from, d.valid_until))
    desired: dict[str, Desired] = {}
    for address, options in candidates.items():
        if address in inputs.blocked:
            continue
        desired[address] = min(options, key=_preference)
    return desired


def _preference(d: Desired) -> tuple[int, float]:
    # Among delegations the one that lasts longest speaks for the delegate.
    expiry = d.expires_at.timestamp() if d.expires_at else float("inf")
    return ROLE_ORDER.index(d.role), -expiry


def plan(inputs: AccessInputs, applied: Iterable[Applied]) -> Plan:
    """Grants, changes and revocations that turn the applied state into the desired one."""
    desired = desired_publishers(inputs)
    current = {a.address: a for a in applied}
    grants = tuple(d for address, d in sorted(desired.items()) if address not in current)
    changes = tuple(
        d
        for address, d in sorted(desired.items())
        if address in current
        and (current[address].role, current[address].orchestrator, current[address].expires_at)
        != (d.role, d.orchestrator, d.expires_at)
    )
    revocations = tuple(
        _revocation(a, inputs) for address, a in sorted(current.items()) if address not in desired
    )
    return Plan(grants, changes, revocations)


def _revocation(a: Applied, inputs: AccessInputs) -> Revocation:
    blocked_at = inputs.blocked.get(a.address)
    if blocked_at is not None:
        return Revocation(a.address, min(blocked_at, inputs.now), "blocklisted")
    if a.expires_at is not None and a.expires_at <= inputs.now:
        return Revocation(a.address, a.expires_at, "expired")
    if a.role == "delegate":
        return Revocation(a.address, inputs.now, "delegation revoked")
    if a.role == "orchestrator":
        return Revocation(a.address, inputs.now, "no longer active")
    return Revocation(a.address, inputs.now, f"no longer a {a.role}")
