"""Access control. Read by ``telemetry.access`` (the controller's inputs, the report-mode counter) and by
later stages (``/quality`` reads ``unauthorized_publishers``; sign-in and personal pages read ``audit_for``
and ``orchestrator_for_delegate``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

ACTIVE_ORCHESTRATORS_SQL = """
SELECT address, min(event_time)
FROM telemetry_fact_capability
WHERE event_time > %(since)s AND event_time <= %(until)s AND address <> ''
GROUP BY address
"""

UNAUTHORIZED_REPORT_UPSERT_SQL = """
INSERT INTO telemetry_access_unauthorized (hour, publisher, source, events)
SELECT * FROM unnest(%(hours)s::timestamptz[], %(publishers)s::text[], %(sources)s::text[], %(counts)s::bigint[])
ON CONFLICT (hour, publisher, source) DO UPDATE SET events = telemetry_access_unauthorized.events + EXCLUDED.events
"""

UNAUTHORIZED_PUBLISHERS_SQL = """
SELECT publisher, 'rejected' AS outcome, count(*) AS events
FROM telemetry_events_rejected
WHERE reason = 'unauthorized_publisher' AND received_at >= %(since)s AND received_at < %(until)s
GROUP BY publisher
UNION ALL
SELECT publisher, 'reported', sum(events)
FROM telemetry_access_unauthorized
WHERE hour >= date_trunc('hour', %(since)s::timestamptz) AND hour < %(until)s
GROUP BY publisher
ORDER BY 3 DESC, 1, 2
"""


@dataclass(frozen=True)
class UnauthorizedCount:
    """Events from a publisher not authorised at the event's time: ``rejected`` (enforce mode) or
    ``reported`` (report mode: accepted, counted per hour of arrival)."""

    publisher: str
    outcome: str
    events: int


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    action: str
    address: str
    orchestrator: str
    actor: str
    detail: str


def active_orchestrators(since: datetime, until: datetime) -> dict[str, datetime]:
    """On-chain orchestrator addresses listed in capability facts with event time in (since, until],
    each with its earliest such time."""
    with connection.cursor() as cursor:
        cursor.execute(ACTIVE_ORCHESTRATORS_SQL, {"since": since, "until": until})
        return {str(address): first for address, first in cursor.fetchall()}


def record_unauthorized(rows: dict[tuple[datetime, str, str], int]) -> None:
    """Add report-mode counts keyed by (hour, publisher, source)."""
    if not rows:
        return
    keys = sorted(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            UNAUTHORIZED_REPORT_UPSERT_SQL,
            {
                "hours": [k[0] for k in keys],
                "publishers": [k[1][:100] for k in keys],
                "sources": [k[2][:40] for k in keys],
                "counts": [rows[k] for k in keys],
            },
        )


def unauthorized_publishers(since: datetime, until: datetime) -> list[UnauthorizedCount]:
    """Per publisher: events refused as ``unauthorized_publisher`` and events accepted in report mode."""
    with connection.cursor() as cursor:
        cursor.execute(UNAUTHORIZED_PUBLISHERS_SQL, {"since": since, "until": until})
        return [UnauthorizedCount(str(p), str(o), int(n)) for p, o, n in cursor.fetchall()]


def audit_for(orchestrator: str, limit: int = 500) -> list[AuditEntry]:
    """The access audit log concerning ``orchestrator``: its own grants and those of its delegates."""
    from telemetry.access_models import AccessAuditLog

    address = orchestrator.lower()
    rows = AccessAuditLog.objects.filter(orchestrator=address) | AccessAuditLog.objects.filter(
        address=address
    )
    return [
        AuditEntry(r.at, r.action, r.address, r.orchestrator, r.actor, r.detail)
        for r in rows.order_by("-at", "-id")[:limit]
    ]


def orchestrator_for_delegate(address: str, at: datetime) -> str | None:
    """The orchestrator that ``address`` may act for at ``at`` through a valid delegation, if any
    (the longest-lasting one when there are several)."""
    from telemetry.access_models import Delegation

    found = (
        Delegation.objects.filter(
            delegate=address.lower(), created_at__lte=at, valid_until__gt=at, revoked_at__isnull=True
        )
        .order_by("-valid_until")
        .values_list("orchestrator", flat=True)
        .first()
    )
    return str(found) if found else None
