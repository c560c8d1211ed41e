"""Writes of publisher access control: delegations, revocations, the allow/block list, and reconcile."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from telemetry.access import eip712
from telemetry.access.backends import PermissionBackend
from telemetry.access.controller import (
    AccessInputs,
    Applied,
    Desired,
    Plan,
    Revocation,
    ValidDelegation,
    plan,
)
from telemetry.access_models import AccessAuditLog, AccessListEntry, Delegation, PublisherGrant
from telemetry.models import Publisher
from telemetry.queries import active_orchestrators

# Refusal reasons (stable, machine-readable).
BAD_SIGNATURE = "bad_signature"
WRONG_SIGNER = "wrong_signer"
EXPIRED = "expired"
REVOKED = "revoked"
NONCE_USED = "nonce_used"
WRONG_CHAIN = "wrong_chain"
BAD_VALUE = "bad_value"
TOO_LONG = "too_long"
NOT_FOUND = "not_found"


class DelegationRefused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SignedDelegation:
    """What a producer or a personal page submits: the statement's fields and the orchestrator's signature."""

    delegate: str
    orchestrator: str
    valid_until: int
    nonce: int
    chain_id: int
    signature: str


def _audit(at: datetime, action: str, address: str, orchestrator: str, actor: str, detail: str = "") -> None:
    AccessAuditLog.objects.create(
        at=at, action=action, address=address, orchestrator=orchestrator, actor=actor, detail=detail
    )


def _statement(d: SignedDelegation) -> eip712.DelegationStatement:
    for field, value in (("delegate", d.delegate), ("orchestrator", d.orchestrator)):
        if not eip712.is_address(value):
            raise DelegationRefused(BAD_VALUE, f"{field} must be a 0x-prefixed 20-byte hex address")
    for field, number in (("validUntil", d.valid_until), ("nonce", d.nonce)):
        if not 0 <= number <= eip712.MAX_UINT256:
            raise DelegationRefused(BAD_VALUE, f"{field} must be an unsigned 256-bit integer")
    if d.delegate.lower() == d.orchestrator.lower():
        raise DelegationRefused(BAD_VALUE, "an orchestrator does not need to delegate to itself")
    return eip712.DelegationStatement(
        delegate=d.delegate.lower(),
        orchestrator=d.orchestrator.lower(),
        valid_until=d.valid_until,
        nonce=d.nonce,
        chain_id=d.chain_id,
    )


def _check_terms(d: SignedDelegation, now: datetime) -> eip712.DelegationStatement:
    """Check addresses, chain and lifetime (everything but the signature)."""
    statement = _statement(d)
    if d.chain_id != settings.NAAP_ACCESS_CHAIN_ID:
        raise DelegationRefused(
            WRONG_CHAIN,
            f"signed for chain {d.chain_id}, this service accepts chain {settings.NAAP_ACCESS_CHAIN_ID}",
        )
    if d.valid_until <= now.timestamp():
        raise DelegationRefused(EXPIRED, f"validUntil {d.valid_until} is not in the future")
    longest = now + timedelta(days=settings.NAAP_ACCESS_MAX_DELEGATION_DAYS)
    if d.valid_until > longest.timestamp():
        raise DelegationRefused(
            TOO_LONG, f"a delegation may last at most {settings.NAAP_ACCESS_MAX_DELEGATION_DAYS} days"
        )
    return statement


def verify_delegation(d: SignedDelegation, now: datetime) -> eip712.DelegationStatement:
    """Check chain, lifetime and signature; raises :class:`DelegationRefused` with the first problem."""
    statement = _check_terms(d, now)
    try:
        signer = eip712.recover(eip712.delegation_typed_data(statement), d.signature)
    except eip712.SignatureError as exc:
        raise DelegationRefused(BAD_SIGNATURE, str(exc)) from None
    if signer != statement.orchestrator:
        raise DelegationRefused(
            WRONG_SIGNER, f"signed by {signer}, not by the orchestrator {statement.orchestrator}"
        )
    return statement


def next_nonce(orchestrator: str) -> int:
    """One above the largest nonce ``orchestrator`` has used (revoked ones included): never reused."""
    used = Delegation.objects.filter(orchestrator=orchestrator.lower()).values_list("nonce", flat=True)
    return max((int(n) for n in used if n.isdigit()), default=-1) + 1


def prepare_delegation(
    delegate: str, orchestrator: str, valid_until: int, now: datetime
) -> eip712.DelegationStatement:
    """The statement an orchestrator is about to sign (a personal page asks before the wallet does): the
    same checks as :func:`verify_delegation` except the signature, on this service's chain, a fresh nonce."""
    unsigned = SignedDelegation(
        delegate, orchestrator, valid_until, next_nonce(orchestrator), settings.NAAP_ACCESS_CHAIN_ID, ""
    )
    return _check_terms(unsigned, now)


def delegations_of(orchestrator: str, limit: int = 200) -> list[Delegation]:
    """The delegations ``orchestrator`` signed, newest first."""
    rows = Delegation.objects.filter(orchestrator=orchestrator.lower()).order_by("-created_at", "-id")
    return list(rows[:limit])


def delegation_of(orchestrator: str, delegation_id: int) -> Delegation | None:
    """One delegation, only when ``orchestrator`` signed it."""
    return Delegation.objects.filter(pk=delegation_id, orchestrator=orchestrator.lower()).first()


@dataclass(frozen=True)
class DelegationView:
    """A stored delegation as a page shows it: its state at a moment and who its signature recovers to."""

    id: int
    delegate: str
    orchestrator: str
    nonce: str
    valid_until: datetime
    state: str  # active | expired | revoked
    signer: str  # recovered from the stored signature ("" when it recovers to no address)
    signer_is_orchestrator: bool
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str


def _recovered_signer(d: Delegation) -> str:
    if not d.nonce.isdigit():
        return ""
    statement = eip712.DelegationStatement(
        d.delegate, d.orchestrator, int(d.valid_until.timestamp()), int(d.nonce), d.chain_id
    )
    try:
        return eip712.recover(eip712.delegation_typed_data(statement), d.signature)
    except eip712.SignatureError:
        return ""


def delegation_view(d: Delegation, at: datetime) -> DelegationView:
    """``d`` at ``at``: revoked wins over expired; a delegation ends at ``valid_until`` exactly."""
    if d.revoked_at is not None:
        state = "revoked"
    elif d.valid_until <= at:
        state = "expired"
    else:
        state = "active"
    signer = _recovered_signer(d)
    return DelegationView(
        id=d.pk,
        delegate=d.delegate,
        orchestrator=d.orchestrator,
        nonce=d.nonce,
        valid_until=d.valid_until,
        state=state,
        signer=signer,
        signer_is_orchestrator=bool(signer) and signer == d.orchestrator.lower(),
        created_at=d.created_at,
        revoked_at=d.revoked_at,
        revoked_by=d.revoked_by,
    )


def delegation_views(orchestrator: str, at: datetime, limit: int = 200) -> list[DelegationView]:
    """The delegations ``orchestrator`` signed, newest first, as they stand at ``at``."""
    return [delegation_view(d, at) for d in delegations_of(orchestrator, limit)]


def submit_delegation(d: SignedDelegation, now: datetime) -> Delegation:
    """Verify and store a delegation (audited). The next reconcile grants the delegate."""
    statement = verify_delegation(d, now)
    existing = Delegation.objects.filter(
        orchestrator=statement.orchestrator, nonce=str(statement.nonce)
    ).first()
    if existing is not None:
        if existing.revoked_at is not None:
            raise DelegationRefused(REVOKED, f"delegation nonce {statement.nonce} was revoked")
        raise DelegationRefused(NONCE_USED, f"nonce {statement.nonce} was already used by this orchestrator")
    try:
        with transaction.atomic():
            delegation = Delegation.objects.create(
                delegate=statement.delegate,
                orchestrator=statement.orchestrator,
                valid_until=datetime.fromtimestamp(statement.valid_until, tz=UTC),
                nonce=str(statement.nonce),
                chain_id=statement.chain_id,
                signature=d.signature,
                created_at=now,
            )
            _audit(now, "delegation", statement.delegate, statement.orchestrator, statement.orchestrator,
                   f"nonce {statement.nonce}, valid until {delegation.valid_until.isoformat()}")  # fmt: skip
    except IntegrityError:
        raise DelegationRefused(NONCE_USED, f"nonce {statement.nonce} was already used") from None
    return delegation


def revoke_delegation(
    delegation_id: int, now: datetime, *, signature: str = "", admin: str = ""
) -> Delegation:
    """Revoke by the orchestrator's EIP-712 revocation signature, or by an admin (named in ``admin``)."""
    delegation = Delegation.objects.filter(pk=delegation_id).first()
    if delegation is None:
        raise DelegationRefused(NOT_FOUND, f"no delegation {delegation_id}")
    if delegation.revoked_at is not None:
        raise DelegationRefused(REVOKED, f"delegation {delegation_id} was already revoked")
    if admin:
        actor = f"admin:{admin}"
    else:
        statement = eip712.DelegationStatement(
            delegation.delegate, delegation.orchestrator, 0, int(delegation.nonce), delegation.chain_id
        )
        try:
            signer = eip712.recover(eip712.revocation_typed_data(statement), signature)
        except eip712.SignatureError as exc:
            raise DelegationRefused(BAD_SIGNATURE, str(exc)) from None
        if signer != delegation.orchestrator:
            raise DelegationRefused(
                WRONG_SIGNER, f"revocation signed by {signer}, not by {delegation.orchestrator}"
            )
        actor = signer
    with transaction.atomic():
        delegation.revoked_at = now
        delegation.revoked_by = actor
        delegation.save(update_fields=["revoked_at", "revoked_by"])
        _audit(now, "delegation_revoked", delegation.delegate, delegation.orchestrator, actor,
               f"nonce {delegation.nonce}")  # fmt: skip
    return delegation


def set_access_entry(
    address: str, kind: str, now: datetime, *, actor: str, note: str = ""
) -> AccessListEntry:
    """Allow or block ``address`` (admins). Blocking takes effect at the next reconcile and at ingest."""
    if not eip712.is_address(address) or kind not in (AccessListEntry.ALLOW, AccessListEntry.BLOCK):
        raise ValueError("an access list entry needs a 0x address and the kind allow or block")
    entry, _ = AccessListEntry.objects.get_or_create(
        address=address.lower(), kind=kind, defaults={"created_at": now, "created_by": actor, "note": note}
    )
    _audit(now, kind, entry.address, "", actor, note)
    return entry


def gather_inputs(now: datetime) -> AccessInputs:
    window = timedelta(hours=settings.NAAP_ACCESS_ACTIVE_WINDOW_H)
    gateways: dict[str, datetime] = {}
    for address, created in (
        Publisher.objects.filter(active=True).exclude(eth_address="").values_list("eth_address", "created_at")
    ):
        gateways[address.lower()] = min(created, gateways.get(address.lower(), created))
    delegations = tuple(
        ValidDelegation(d.delegate, d.orchestrator, d.created_at, d.valid_until)
        for d in Delegation.objects.filter(revoked_at__isnull=True, valid_until__gt=now)
    )
    entries = AccessListEntry.objects.filter(created_at__lte=now)
    return AccessInputs(
        now=now,
        orchestrators=active_orchestrators(now - window, now),
        gateways=gateways,
        delegations=delegations,
        allowed={e.address: e.created_at for e in entries if e.kind == AccessListEntry.ALLOW},
        blocked={e.address: e.created_at for e in entries if e.kind == AccessListEntry.BLOCK},
    )


def applied_state() -> list[Applied]:
    return [
        Applied(g.address, g.role, g.orchestrator, g.expires_at)
        for g in PublisherGrant.objects.filter(revoked_at__isnull=True)
    ]


def _describe(d: Desired) -> str:
    until = f" until {d.expires_at.isoformat()}" if d.expires_at else ""
    speaks = f" for {d.orchestrator}" if d.orchestrator else ""
    return f"{d.role}{speaks}{until}"


def reconcile(backend: PermissionBackend, now: datetime, *, dry_run: bool = False) -> Plan:
    """Compute the plan and apply it: backend first, then our state and the audit log, one address at a
    time (a failure leaves the addresses done so far recorded and the rest for the next run)."""
    result = plan(gather_inputs(now), applied_state())
    if dry_run:
        return result
    actor = f"controller:{backend.name}"
    for d in result.grants:
        ref = backend.grant(d.address, d.expires_at)
        with transaction.atomic():
            PublisherGrant.objects.create(
                address=d.address, role=d.role, orchestrator=d.orchestrator, valid_from=min(d.valid_from, now),
                expires_at=d.expires_at, granted_at=now, backend=backend.name,
            )  # fmt: skip
            _audit(now, "grant", d.address, d.orchestrator or _self(d), actor, _with_ref(_describe(d), ref))
    for d in result.changes:
        ref = backend.grant(d.address, d.expires_at)
        with transaction.atomic():
            PublisherGrant.objects.filter(address=d.address, revoked_at__isnull=True).update(revoked_at=now)
            PublisherGrant.objects.create(
                address=d.address, role=d.role, orchestrator=d.orchestrator, valid_from=now,
                expires_at=d.expires_at, granted_at=now, backend=backend.name,
            )  # fmt: skip
            _audit(now, "grant_changed", d.address, d.orchestrator or _self(d), actor,
                   _with_ref(_describe(d), ref))  # fmt: skip
    for r in result.revocations:
        ref = backend.revoke(r.address)
        with transaction.atomic():
            grant = PublisherGrant.objects.get(address=r.address, revoked_at__isnull=True)
            grant.revoked_at = max(_ended_at(grant, r), grant.valid_from)
            grant.save(update_fields=["revoked_at"])
            _audit(now, "revoke", r.address, grant.orchestrator or (r.address if grant.role == "orchestrator" else ""),
                   actor, _with_ref(r.why, ref))  # fmt: skip
    return result


def _ended_at(grant: PublisherGrant, r: Revocation) -> datetime:
    """A revoked delegation ends when the orchestrator revoked it, not when reconcile noticed."""
    if grant.role != "delegate" or r.why != "delegation revoked":
        return r.ended_at
    revoked = (
        Delegation.objects.filter(
            delegate=grant.address, orchestrator=grant.orchestrator, revoked_at__isnull=False
        )
        .order_by("-revoked_at")
        .values_list("revoked_at", flat=True)
        .first()
    )
    return min(revoked, r.ended_at) if revoked else r.ended_at


def _self(d: Desired) -> str:
    return d.address if d.role == "orchestrator" else ""


def _with_ref(text: str, ref: str) -> str:
    return f"{text} (tx {ref})" if ref else text
