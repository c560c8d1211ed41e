"""Ingest enforcement: is this event's publisher authorised at the event's time?

``NAAP_PUBLISHER_ENFORCEMENT``: ``off`` (no check), ``report`` (accept, count per hour and publisher),
``enforce`` (refuse with ``unauthorized_publisher``). The authorised set — grant periods per address,
the blocklist, publisher names → addresses — is loaded once per process every ``NAAP_ACCESS_CACHE_S``
seconds, so the hot path costs one dict lookup per event.

Who the publisher is: the Streamr ``publisherId`` (an address), or for an HTTP publisher (known by name)
its ``eth_address``. Messages without any publisher (Kafka, a node without payload metadata, file
replay) come from sources the operator runs and are not checked. An authorised delegate's events that
name no orchestrator are attributed to the orchestrator it speaks for.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from telemetry.access.eip712 import is_address
from telemetry.access_models import AccessListEntry, PublisherGrant
from telemetry.contracts import Event, Rejection
from telemetry.contracts import reasons as R
from telemetry.models import Publisher
from telemetry.queries import record_unauthorized

HISTORY = timedelta(days=7)  # closed grant periods kept in memory, for late events


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime | None
    orchestrator: str  # whom a delegate speaks for; "" otherwise


@dataclass(frozen=True)
class AuthorisedSet:
    periods: dict[str, tuple[Period, ...]]
    blocked: dict[str, datetime]
    addresses_by_name: dict[str, str]

    def identity(self, publisher: str) -> str:
        """The address behind a publisher: itself when it is one, else the named publisher's address."""
        if is_address(publisher):
            return publisher.lower()
        return self.addresses_by_name.get(publisher, "")

    def authorise(self, address: str, at: datetime) -> Period | None:
        blocked = self.blocked.get(address)
        if blocked is not None and blocked <= at:
            return None
        found: Period | None = None
        for p in self.periods.get(address, ()):
            if p.start <= at and (p.end is None or at < p.end) and (found is None or p.start > found.start):
                found = p
        return found


def load_authorised_set(now: datetime) -> AuthorisedSet:
    periods: dict[str, list[Period]] = {}
    grants = PublisherGrant.objects.filter(revoked_at__isnull=True) | PublisherGrant.objects.filter(
        revoked_at__gte=now - HISTORY
    )
    for g in grants.only("address", "valid_from", "expires_at", "revoked_at", "orchestrator"):
        ends = [t for t in (g.expires_at, g.revoked_at) if t is not None]
        periods.setdefault(g.address, []).append(
            Period(g.valid_from, min(ends) if ends else None, g.orchestrator)
        )
    blocked: dict[str, datetime] = dict(
        AccessListEntry.objects.filter(kind=AccessListEntry.BLOCK).values_list("address", "created_at")
    )
    names = {
        name: address.lower()
        for name, address in Publisher.objects.exclude(eth_address="").values_list("name", "eth_address")
    }
    return AuthorisedSet({a: tuple(p) for a, p in periods.items()}, blocked, names)


_cached: tuple[float, AuthorisedSet] | None = None


def authorised_set(now: datetime) -> AuthorisedSet:
    """The process-wide authorised set, reloaded when older than ``NAAP_ACCESS_CACHE_S``."""
    global _cached
    clock = time.monotonic()
    if _cached is None or clock - _cached[0] >= settings.NAAP_ACCESS_CACHE_S:
        _cached = (clock, load_authorised_set(now))
    return _cached[1]


def forget_authorised_set() -> None:
    global _cached
    _cached = None


@dataclass
class PublisherGuard:
    """One batch's view of enforcement. ``check`` per event; ``record_reports`` after the raw insert."""

    mode: str
    allowed: AuthorisedSet
    received: datetime
    reported: dict[bytes, str] = field(default_factory=dict)  # dedup key → publisher (report mode)

    def check(self, publisher: str, identity: str, event: Event) -> Rejection | None:
        period = self.allowed.authorise(identity, event.event_time) if identity else None
        if period is not None:
            if period.orchestrator and not event.orchestrator:
                event.orchestrator = period.orchestrator
            return None
        if self.mode == "report":
            self.reported[event.dedup_key] = publisher
            return None
        if not identity:
            return Rejection(R.UNAUTHORIZED_PUBLISHER, f"publisher {publisher!r} has no Ethereum address")
        return Rejection(
            R.UNAUTHORIZED_PUBLISHER,
            f"{identity} is not authorised to publish at {event.event_time.isoformat()}",
        )

    def record_reports(self, inserted: Iterable[Event], source: str) -> int:
        """Count report-mode events that were new (a re-delivered batch is not counted twice)."""
        if not self.reported:
            return 0
        hour = self.received.replace(minute=0, second=0, microsecond=0)
        counts = Counter(
            (hour, self.reported[e.dedup_key], source) for e in inserted if e.dedup_key in self.reported
        )
        record_unauthorized(dict(counts))
        return sum(counts.values())


def publisher_guard(received: datetime) -> PublisherGuard | None:
    """The guard for a batch received at ``received``, or None when enforcement is off."""
    mode = settings.NAAP_PUBLISHER_ENFORCEMENT
    if mode == "off":
        return None
    return PublisherGuard(mode, authorised_set(received), received)
