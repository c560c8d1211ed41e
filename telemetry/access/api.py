"""``/v1/access``: submit a signed delegation, revoke it, list delegations, read one's audit log.

Delegations are public statements (anyone may verify the signature), so listing them needs no sign-in.
A revocation carries the orchestrator's EIP-712 revocation signature, or comes from a signed-in admin.
The audit log answers to an admin, or to the signed-in orchestrator it concerns.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema

from telemetry.access.services import (
    DelegationRefused,
    SignedDelegation,
    revoke_delegation,
    submit_delegation,
)
from telemetry.access_models import Delegation
from telemetry.queries import audit_for

router = Router(tags=["access"])


class DelegationIn(Schema):
    delegate: str = Field(description="address allowed to publish, 0x-prefixed")
    orchestrator: str = Field(description="on-chain orchestrator address that signs")
    validUntil: int = Field(description="seconds since the epoch")  # noqa: N815 (EIP-712 field name)
    nonce: int = Field(ge=0)
    chainId: int  # noqa: N815
    signature: str = Field(description="EIP-712 signature of the Delegation typed data, 0x-prefixed hex")


class RevocationIn(Schema):
    signature: str = Field(
        "", description="EIP-712 signature of DelegationRevocation by the orchestrator (empty for an admin)"
    )


class DelegationOut(Schema):
    id: int
    delegate: str
    orchestrator: str
    valid_until: datetime
    nonce: str
    chain_id: int
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str


class AuditOut(Schema):
    at: datetime
    action: str
    address: str
    orchestrator: str
    actor: str
    detail: str


class RefusedOut(Schema):
    reason: str
    detail: str


_STATUS = {"not_found": 404}


@router.post(
    "/delegations", response={201: DelegationOut, 400: RefusedOut}, summary="Submit a signed delegation"
)
def submit(request: HttpRequest, body: DelegationIn) -> tuple[int, object]:
    signed = SignedDelegation(
        delegate=body.delegate,
        orchestrator=body.orchestrator,
        valid_until=body.validUntil,
        nonce=body.nonce,
        chain_id=body.chainId,
        signature=body.signature,
    )
    try:
        return 201, submit_delegation(signed, timezone.now())
    except DelegationRefused as refused:
        return 400, {"reason": refused.reason, "detail": refused.detail}


@router.post(
    "/delegations/{delegation_id}/revoke",
    response={200: DelegationOut, 400: RefusedOut, 404: RefusedOut},
    summary="Revoke a delegation",
)
def revoke(request: HttpRequest, delegation_id: int, body: RevocationIn) -> tuple[int, object]:
    user = getattr(request, "user", None)
    admin = user.get_username() if user is not None and user.is_authenticated and user.is_staff else ""
    try:
        if body.signature:
            admin = ""  # a signature speaks for itself, even from an admin's browser
        elif not admin:
            return 400, {
                "reason": "bad_signature",
                "detail": "a revocation needs the orchestrator's signature",
            }
        return 200, revoke_delegation(delegation_id, timezone.now(), signature=body.signature, admin=admin)
    except DelegationRefused as refused:
        return _STATUS.get(refused.reason, 400), {"reason": refused.reason, "detail": refused.detail}


@router.get("/delegations", response=list[DelegationOut], summary="List delegations")
def list_delegations(
    request: HttpRequest, orchestrator: str = "", delegate: str = "", active: bool = False
) -> list[Delegation]:
    rows = Delegation.objects.order_by("-created_at", "-id")
    if orchestrator:
        rows = rows.filter(orchestrator=orchestrator.lower())
    if delegate:
        rows = rows.filter(delegate=delegate.lower())
    if active:
        rows = rows.filter(revoked_at__isnull=True, valid_until__gt=timezone.now())
    return list(rows[:500])


@router.get(
    "/audit/{orchestrator}",
    response={200: list[AuditOut], 403: RefusedOut},
    summary="Access audit log of one orchestrator (that orchestrator signed in, or an admin)",
)
def audit(request: HttpRequest, orchestrator: str) -> tuple[int, object]:
    user = getattr(request, "user", None)
    allowed = (
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.get_username().lower() == orchestrator.lower())
    )
    if not allowed:
        return 403, {"reason": "forbidden", "detail": "sign in as this orchestrator (or as an admin)"}
    return 200, audit_for(orchestrator)
