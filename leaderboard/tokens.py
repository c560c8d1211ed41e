"""Private API tokens: created for one orchestrator, shown once, stored as a SHA-256 digest, revocable.

A token is ``naap_`` followed by 32 random bytes (URL-safe base64): its entropy makes a plain SHA-256
digest a safe lookup key (no salt or slow hash needed), and the lookup is by digest only, so comparing
secrets in Python never happens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from leaderboard.models import ApiToken

TOKEN_PREFIX = "naap_"  # noqa: S105 - the public prefix of every token
SHOWN_PREFIX_CHARS = 12
MAX_TOKENS = 20  # active tokens per orchestrator


class TokenError(ValueError):
    """A token request that cannot be honoured; the message is shown to the operator."""


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the only time the full token exists outside the client


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(orchestrator: str, created_by: str, name: str, at: datetime | None = None) -> NewToken:
    name = name.strip()
    if not name or len(name) > 80:
        raise TokenError("a token needs a name of 1 to 80 characters")
    owner = orchestrator.lower()
    if ApiToken.objects.filter(orchestrator=owner, revoked_at__isnull=True).count() >= MAX_TOKENS:
        raise TokenError(f"at most {MAX_TOKENS} active tokens: revoke one first")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        orchestrator=owner,
        created_by=created_by.lower(),
        name=name,
        prefix=secret[:SHOWN_PREFIX_CHARS],
        digest=digest_of(secret),
        created_at=at or timezone.now(),
    )
    return NewToken(token=token, secret=secret)


def tokens_of(orchestrator: str) -> list[ApiToken]:
    return list(ApiToken.objects.filter(orchestrator=orchestrator.lower()).order_by("-created_at", "-id"))


def revoke_token(orchestrator: str, token_id: int, at: datetime | None = None) -> bool:
    """Revoke one of the orchestrator's own tokens; False when it has no such (active) token."""
    updated = ApiToken.objects.filter(
        id=token_id, orchestrator=orchestrator.lower(), revoked_at__isnull=True
    ).update(revoked_at=at or timezone.now())
    return updated == 1


def authenticate(secret: str, at: datetime | None = None) -> ApiToken | None:
    """The active token with this secret, or None; records when it was last used."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = ApiToken.objects.filter(digest=digest_of(secret), revoked_at__isnull=True).first()
    if token is not None:
        moment = at or timezone.now()
        ApiToken.objects.filter(id=token.id).update(last_used_at=moment)
        token.last_used_at = moment
    return token
