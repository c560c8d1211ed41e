"""Reads of the telemetry tables for later stages (sla). All raw SQL of the app lives here as named constants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg
from django.db import connection
from psycopg import sql

from telemetry.tables import FACT_CAPABILITY, FACT_INGEST, FACT_PAYMENT

# --- fact relations read by the sla rollups ---
# The rollup SELECTs in ``sla/sql`` name the fact tables they read through these placeholders (substituted as
# identifiers when the SQL is composed), so renaming a telemetry table cannot silently break them.
ROLLUP_FACT_RELATIONS: dict[str, str] = {
    "fact_ingest": FACT_INGEST.name,
    "fact_payment": FACT_PAYMENT.name,
    "fact_capability": FACT_CAPABILITY.name,
}
# The fact tables whose new rows change rollups (ingest counters, payments, capabilities).
ROLLUP_FACT_TABLES: tuple[str, ...] = tuple(ROLLUP_FACT_RELATIONS.values())

# The minutes that received fact rows (not the span between the earliest and latest: one hours-late row
# among current ones must not make every level recompute the hours in between).
FACT_MINUTES_RECEIVED_SQL = """
SELECT date_bin(INTERVAL '1 minute', event_time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), max(received_at)
FROM {table} WHERE received_at > %s GROUP BY 1
"""


def fact_minutes_received(table: str, since: datetime) -> list[tuple[datetime, datetime]]:
    """(minute, newest received_at) for each event-time minute of ``table`` with rows received after ``since``."""
    if table not in ROLLUP_FACT_TABLES:
        raise ValueError(f"not a fact table read by the rollups: {table}")
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(FACT_MINUTES_RECEIVED_SQL).format(table=sql.Identifier(table)), [since])
        return [(minute, newest) for minute, newest in cursor.fetchall()]


# --- quality figures (API) ---
# Read by ``sla.queries`` for ``GET /v1/sla/quality``. Windows are on ``received_at`` (our clock), so the
# figures describe what arrived in the window, whatever time the producers stamped on it.


@dataclass(frozen=True)
class QualityCount:
    """Events counted per publisher and a second key (event type for accepted, reason for rejected)."""

    publisher: str
    key: str
    count: int


@dataclass(frozen=True)
class QualityLag:
    """Lateness ``received_at − event_time`` in seconds (negative values count as 0) for one publisher,
    or for every publisher together when ``publisher`` is None."""

    publisher: str | None
    events: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class QualitySkew:
    """Clock offset of one publisher: ``event_time − received_at`` in seconds. For a publisher that
    sends live events the median offset is its clock's lead over ours minus the delivery delay."""

    publisher: str
    events: int
    median_offset_s: float | None
    max_ahead_s: float | None
    events_ahead: int  # events stamped later than they arrived


QUALITY_ACCEPTED_SQL = """
SELECT publisher, event_type, count(*)
FROM telemetry_events_raw
WHERE received_at >= %(start)s AND received_at < %(end)s
GROUP BY publisher, event_type
ORDER BY publisher, event_type
"""

QUALITY_REJECTED_SQL = """
SELECT publisher, reason, count(*)
FROM telemetry_events_rejected
WHERE received_at >= %(start)s AND received_at < %(end)s
GROUP BY publisher, reason
ORDER BY publisher, reason
"""

QUALITY_LAG_SQL = """
WITH lag AS (
    SELECT publisher, greatest(0, extract(epoch FROM received_at - event_time))::float8 AS s
    FROM telemetry_events_raw
    WHERE received_at >= %(start)s AND received_at < %(end)s
)
SELECT publisher, grouping(publisher) = 1 AS overall, count(*),
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY s), max(s)
FROM lag
GROUP BY GROUPING SETS ((publisher), ())
ORDER BY overall DESC, publisher
"""

QUALITY_SKEW_SQL = """
WITH offs AS (
    SELECT publisher, extract(epoch FROM event_time - received_at)::float8 AS s
    FROM telemetry_events_raw
    WHERE received_at >= %(start)s AND received_at < %(end)s
)
SELECT publisher, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), max(s),
       count(*) FILTER (WHERE s > 0)
FROM offs
GROUP BY publisher
ORDER BY publisher
"""


def quality_accepted(start: datetime, end: datetime) -> list[QualityCount]:
    """Accepted (raw) events received in [start, end), per publisher and event type."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_ACCEPTED_SQL, {"start": start, "end": end})
        return [QualityCount(publisher=p, key=k, count=int(n)) for p, k, n in cursor.fetchall()]


def quality_rejected(start: datetime, end: datetime) -> list[QualityCount]:
    """Rejected events received in [start, end), per publisher and reason."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_REJECTED_SQL, {"start": start, "end": end})
        return [QualityCount(publisher=p, key=k, count=int(n)) for p, k, n in cursor.fetchall()]


def quality_lag(start: datetime, end: datetime) -> list[QualityLag]:
    """Lateness percentiles of events received in [start, end): overall first, then per publisher."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_LAG_SQL, {"start": start, "end": end})
        rows = cursor.fetchall()
    out: list[QualityLag] = []
    for publisher, overall, events, pcts, max_s in rows:
        p50, p95, p99 = pcts if pcts is not None else (None, None, None)
        out.append(
            QualityLag(
                publisher=None if overall else publisher,
                events=int(events),
                p50_s=p50,
                p95_s=p95,
                p99_s=p99,
                max_s=max_s,
            )
        )
    return out


def quality_skew(start: datetime, end: datetime) -> list[QualitySkew]:
    """Clock offset per publisher over events received in [start, end)."""
    with connection.cursor() as cursor:
        cursor.execute(QUALITY_SKEW_SQL, {"start": start, "end": end})
        return [
            QualitySkew(publisher=p, events=int(n), median_offset_s=med, max_ahead_s=mx, events_ahead=int(a))
            for p, n, med, mx, a in cursor.fetchall()
        ]


# --- session facts (sla.sessions) ---
# Derivation reads facts "received since its cursor" and then every fact of the touched streams. All reads
# take an upper bound ``until`` on received_at so that one derivation run sees one consistent snapshot.

FACT_KIND_STATUS = 0
FACT_KIND_TRACE = 1
FACT_KIND_ERROR = 2

LATEST_RECEIVED_SQL = """
SELECT greatest(
    (SELECT max(received_at) FROM telemetry_fact_status),
    (SELECT max(received_at) FROM telemetry_fact_trace),
    (SELECT max(received_at) FROM telemetry_fact_error),
    (SELECT max(received_at) FROM telemetry_fact_capability)
)
"""

# Streams with facts received in (since, until], and the newest event time among those facts.
CHANGED_STREAMS_SQL = """
SELECT stream_id, max(event_time) FROM (
    SELECT stream_id, event_time FROM telemetry_fact_status
    WHERE received_at > %(since)s AND received_at <= %(until)s
    UNION ALL
    SELECT stream_id, event_time FROM telemetry_fact_trace
    WHERE received_at > %(since)s AND received_at <= %(until)s
    UNION ALL
    SELECT stream_id, event_time FROM telemetry_fact_error
    WHERE received_at > %(since)s AND received_at <= %(until)s
) f
WHERE stream_id <> ''
GROUP BY stream_id
"""

# Identity and hardware keys of capability rows received in (since, until], with their earliest event time.
CHANGED_CAPABILITIES_SQL = """
SELECT address, local_address, orchestrator_url, min(event_time), max(event_time)
FROM telemetry_fact_capability
WHERE received_at > %(since)s AND received_at <= %(until)s
GROUP BY address, local_address, orchestrator_url
"""

SESSION_FACTS_SQL = """
SELECT 0, stream_id, request_id, event_time, dedup_key, gateway, pipeline, orchestrator,
       orchestrator_url, state, output_fps, input_fps, restart_count, coalesce(last_error, ''), '',
       region
FROM telemetry_fact_status
WHERE stream_id = ANY(%(streams)s) AND received_at <= %(until)s
UNION ALL
SELECT 1, stream_id, request_id, event_time, dedup_key, gateway, pipeline, orchestrator,
       orchestrator_url, trace_type, NULL, NULL, NULL, detail, '', region
FROM telemetry_fact_trace
WHERE stream_id = ANY(%(streams)s) AND received_at <= %(until)s
UNION ALL
SELECT 2, stream_id, request_id, event_time, dedup_key, gateway, pipeline, '', '', event_kind,
       NULL, NULL, NULL, message, error_class, ''
FROM telemetry_fact_error
WHERE stream_id = ANY(%(streams)s) AND received_at <= %(until)s
"""

# Signing address → on-chain address, only the rows where the mapping changes (exact for "latest at or
# before t" and for "earliest").
SIGNING_POINTS_SQL = """
SELECT key, address, event_time FROM (
    SELECT local_address AS key, address, event_time,
           lag(address) OVER (PARTITION BY local_address ORDER BY event_time, dedup_key, ord) AS prev
    FROM telemetry_fact_capability
    WHERE local_address = ANY(%(keys)s) AND address <> '' AND received_at <= %(until)s
) c
WHERE prev IS DISTINCT FROM address
ORDER BY key, event_time, address
"""

# URL → on-chain address, only the rows where the mapping changes. A discovery_results row names the node's
# *signing* address: it is resolved through the signing → on-chain mapping valid at the row's time (the
# latest network_capabilities change point at or before it; the address as sent when none is known yet), so
# a URL never maps to a signing address that capabilities have mapped elsewhere.
URL_POINTS_SQL = """
WITH url_rows AS (
    SELECT orchestrator_url AS key, origin, address, event_time, dedup_key, ord
    FROM telemetry_fact_capability
    WHERE orchestrator_url = ANY(%(keys)s) AND address <> '' AND received_at <= %(until)s
),
signing AS (
    SELECT key, address, event_time,
           lead(event_time) OVER (PARTITION BY key ORDER BY event_time, dedup_key, ord) AS next_time
    FROM (
        SELECT local_address AS key, address, event_time, dedup_key, ord,
               lag(address) OVER (PARTITION BY local_address ORDER BY event_time, dedup_key, ord) AS prev
        FROM telemetry_fact_capability
        WHERE local_address IN (SELECT address FROM url_rows WHERE origin = 'discovery_results')
              AND address <> '' AND received_at <= %(until)s
    ) p
    WHERE prev IS DISTINCT FROM address
),
resolved AS (
    SELECT r.key, coalesce(s.address, r.address) AS address, r.event_time, r.dedup_key, r.ord
    FROM url_rows r
    LEFT JOIN signing s
        ON r.origin = 'discovery_results' AND s.key = r.address AND s.event_time <= r.event_time
           AND (s.next_time IS NULL OR r.event_time < s.next_time)
)
SELECT key, address, event_time FROM (
    SELECT key, address, event_time,
           lag(address) OVER (PARTITION BY key ORDER BY event_time, dedup_key, ord) AS prev
    FROM resolved
) c
WHERE prev IS DISTINCT FROM address
ORDER BY key, event_time, address
"""

HARDWARE_POINTS_SQL = """
SELECT address, origin, pipeline, model_id, gpu_id, gpu_type, region, event_time, seq FROM (
    SELECT address, origin, pipeline, model_id, gpu_id, gpu_type, region, event_time,
           row_number() OVER (PARTITION BY address ORDER BY event_time, dedup_key, ord) AS seq,
           lag(gpu_id || '|' || gpu_type || '|' || region)
               OVER (PARTITION BY address, origin, pipeline, model_id ORDER BY event_time, dedup_key, ord) AS prev
    FROM telemetry_fact_capability
    WHERE address = ANY(%(keys)s) AND (gpu_id <> '' OR gpu_type <> '' OR region <> '')
          AND received_at <= %(until)s
) c
WHERE prev IS DISTINCT FROM gpu_id || '|' || gpu_type || '|' || region
ORDER BY address, seq
"""

ALL_STREAMS_SQL = """
SELECT stream_id, max(event_time) FROM (
    SELECT stream_id, event_time FROM telemetry_fact_status WHERE received_at <= %(until)s
    UNION ALL
    SELECT stream_id, event_time FROM telemetry_fact_trace WHERE received_at <= %(until)s
    UNION ALL
    SELECT stream_id, event_time FROM telemetry_fact_error WHERE received_at <= %(until)s
) f
WHERE stream_id <> ''
GROUP BY stream_id
"""

NEWEST_CAPABILITY_EVENT_SQL = """
SELECT max(event_time) FROM telemetry_fact_capability WHERE received_at <= %(until)s
"""


class SessionFact(NamedTuple):
    """One status, trace or error fact of a stream, in the shape session assembly needs."""

    kind: int  # FACT_KIND_STATUS | FACT_KIND_TRACE | FACT_KIND_ERROR
    stream_id: str
    request_id: str
    event_time: datetime
    dedup_key: bytes
    gateway: str
    pipeline: str
    orchestrator: str  # signing address as sent (status, trace)
    url: str  # orchestrator URL (status, trace)
    sub: str  # status state | trace type | error kind
    output_fps: float | None
    input_fps: float | None
    restart_count: int | None
    text: str  # status last error | trace detail | error message
    error_class: str  # errors only
    region: str  # NaaP v1 geo.region of status and trace events


@dataclass(frozen=True)
class CapabilityChange:
    address: str
    local_address: str
    orchestrator_url: str
    first_event_at: datetime
    last_event_at: datetime


@dataclass(frozen=True)
class IdentityPoint:
    """From ``event_time`` on (until the next point of the same key), ``key`` maps to ``address``."""

    key: str
    address: str
    event_time: datetime


@dataclass(frozen=True)
class HardwarePoint:
    address: str
    origin: str
    pipeline: str
    model_id: str
    gpu_id: str
    gpu_type: str
    region: str
    event_time: datetime
    seq: int  # order of the row among the address's capability rows


def latest_fact_received() -> datetime | None:
    """The newest received_at over the fact tables that sessions are built from."""
    with connection.cursor() as cursor:
        cursor.execute(LATEST_RECEIVED_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def changed_streams(since: datetime, until: datetime) -> dict[str, datetime]:
    """Stream ids with status/trace/error facts received in (since, until] → their newest event time."""
    with connection.cursor() as cursor:
        cursor.execute(CHANGED_STREAMS_SQL, {"since": since, "until": until})
        return dict(cursor.fetchall())


def all_streams(until: datetime) -> dict[str, datetime]:
    """Every stream id with facts received up to ``until`` → its newest event time."""
    with connection.cursor() as cursor:
        cursor.execute(ALL_STREAMS_SQL, {"until": until})
        return dict(cursor.fetchall())


def changed_capabilities(since: datetime, until: datetime) -> list[CapabilityChange]:
    with connection.cursor() as cursor:
        cursor.execute(CHANGED_CAPABILITIES_SQL, {"since": since, "until": until})
        return [CapabilityChange(*row) for row in cursor.fetchall()]


def newest_capability_event(until: datetime) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(NEWEST_CAPABILITY_EVENT_SQL, {"until": until})
        row = cursor.fetchone()
    return row[0] if row else None


def session_facts(stream_ids: list[str], until: datetime) -> list[SessionFact]:
    """Every status, trace and error fact of the given streams received up to ``until`` (unordered)."""
    connection.ensure_connection()
    # A server-binding cursor with binary results: timestamps load several times faster than as text.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(SESSION_FACTS_SQL, {"streams": stream_ids, "until": until}, binary=True)
        make = SessionFact._make
        return [make(row) for row in cursor.fetchall()]


def _points(query: str, keys: list[str], until: datetime) -> list[IdentityPoint]:
    if not keys:
        return []
    with connection.cursor() as cursor:
        cursor.execute(query, {"keys": keys, "until": until})
        return [IdentityPoint(*row) for row in cursor.fetchall()]


def signing_points(signing_addresses: list[str], until: datetime) -> list[IdentityPoint]:
    """Change points of the signing (local) address → on-chain address mapping."""
    return _points(SIGNING_POINTS_SQL, signing_addresses, until)


def url_points(urls: list[str], until: datetime) -> list[IdentityPoint]:
    """Change points of the orchestrator URL → on-chain address mapping."""
    return _points(URL_POINTS_SQL, urls, until)


def hardware_points(addresses: list[str], until: datetime) -> list[HardwarePoint]:
    """Change points of GPU and region per on-chain address, origin and pipeline."""
    if not addresses:
        return []
    with connection.cursor() as cursor:
        cursor.execute(HARDWARE_POINTS_SQL, {"keys": addresses, "until": until})
        return [HardwarePoint(*row) for row in cursor.fetchall()]


# --- orchestrator identity (sign-in) ---
# Read by ``leaderboard.auth``: an address counts as an orchestrator once network capabilities (or
# discovery results) have listed it as an on-chain address.

KNOWN_ORCHESTRATOR_SQL = """
SELECT EXISTS (SELECT 1 FROM telemetry_fact_capability WHERE address = %(address)s)
"""


def is_known_orchestrator_address(address: str) -> bool:
    """Whether ``address`` (lower-case) appears as an on-chain orchestrator address in capabilities."""
    if not address:
        return False
    with connection.cursor() as cursor:
        cursor.execute(KNOWN_ORCHESTRATOR_SQL, {"address": address.lower()})
        row = cursor.fetchone()
    return bool(row and row[0])


# --- access control ---
# Read by ``telemetry.access`` (the controller's inputs, the report-mode counter) and by later stages
# (``/quality`` reads ``unauthorized_publishers``; sign-in and personal pages read ``audit_for`` and
# ``orchestrator_for_delegate``).

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


# --- personal pages ---
# Read by ``sla.personal`` for an orchestrator's own per-session trace timeline. The caller bounds the
# time range to the part of the session that orchestrator served.

SESSION_TIMELINE_SQL = """
SELECT event_time, 'trace' AS source, trace_type, orchestrator, detail, '' AS error_class
FROM telemetry_fact_trace
WHERE stream_id = %(stream)s AND request_id = %(request)s
  AND event_time >= %(start)s AND event_time <= %(end)s
UNION ALL
SELECT event_time, 'error', event_kind, '', message, error_class
FROM telemetry_fact_error
WHERE stream_id = %(stream)s AND request_id = %(request)s
  AND event_time >= %(start)s AND event_time <= %(end)s
ORDER BY 1, 2, 3
LIMIT %(limit)s
"""


@dataclass(frozen=True)
class TimelineFact:
    """One trace or error fact of a stream request, in event time order."""

    event_time: datetime
    source: str  # trace | error
    kind: str  # trace type | error kind
    orchestrator: str  # signing address as sent on traces, "" on errors
    detail: str  # trace detail | error message
    error_class: str  # errors only


def session_timeline(
    stream_id: str, request_id: str, start: datetime, end: datetime, limit: int = 200
) -> list[TimelineFact]:
    """Traces and errors of one (stream, request) with start <= event_time <= end, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            SESSION_TIMELINE_SQL,
            {"stream": stream_id, "request": request_id, "start": start, "end": end, "limit": limit},
        )
        return [
            TimelineFact(t, str(src), str(kind), str(orch), str(detail), str(cls))
            for t, src, kind, orch, detail, cls in cursor.fetchall()
        ]
