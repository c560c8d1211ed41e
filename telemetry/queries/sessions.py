"""Session facts (``sla.sessions``). Derivation reads facts "received since its cursor" and then every fact
of the touched streams. All reads take an upper bound ``until`` on received_at so that one derivation run
sees one consistent snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import psycopg
from django.db import connection

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
