"""The time tables of the telemetry app: the raw event log and one fact table per event family.

These definitions are the contract between ingest (which writes them) and `sla` (which reads them through
``telemetry.queries``). Every fact row carries the raw row's ``dedup_key`` and ``received_at`` so that
facts can be rebuilt from the raw log and derivation can read "what arrived since".
"""

from __future__ import annotations

from naap_site.timeseries import TimeTable

_COMMON = (
    ("event_time", "timestamptz NOT NULL"),
    ("dedup_key", "bytea NOT NULL"),
    ("received_at", "timestamptz NOT NULL"),
)
# Tables the sla rollups read by event-time range (``telemetry.queries.ROLLUP_FACT_RELATIONS``). Hypertables
# already have this index (TimescaleDB's default, same name); plain partitioned tables otherwise only have
# (dedup_key, event_time), which a time range cannot seek into.
_TIME_INDEX = ("event_time",)

RAW = TimeTable(
    name="telemetry_events_raw",
    columns=(
        *_COMMON,
        ("source", "text NOT NULL"),
        ("publisher", "text NOT NULL DEFAULT ''"),
        ("event_type", "text NOT NULL"),
        ("known_type", "boolean NOT NULL"),
        ("event_id", "text NOT NULL DEFAULT ''"),
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("orchestrator", "text NOT NULL DEFAULT ''"),
        ("stream_id", "text NOT NULL DEFAULT ''"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("pipeline", "text NOT NULL DEFAULT ''"),
        ("payload", "jsonb NOT NULL"),
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    # Only what a query reads: every index costs on the hot ingest path (the quality figures read by
    # received_at; rebuilds read whole days, which partition pruning finds).
    indexes=(("received_at",),),
    compress_segment_by="event_type",
)

# ai_stream_status (and NaaP v1 runner.metrics.sample): one performance sample.
FACT_STATUS = TimeTable(
    name="telemetry_fact_status",
    columns=(
        *_COMMON,
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("stream_id", "text NOT NULL"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("pipeline", "text NOT NULL DEFAULT ''"),
        ("orchestrator", "text NOT NULL DEFAULT ''"),  # signing address as sent, lower-case
        ("orchestrator_url", "text NOT NULL DEFAULT ''"),
        ("state", "text NOT NULL DEFAULT ''"),
        ("output_fps", "double precision"),
        ("input_fps", "double precision"),
        ("restart_count", "integer"),
        ("last_error", "text"),
        ("last_output_time", "timestamptz"),
        ("region", "text NOT NULL DEFAULT ''"),  # added in 0003: NaaP v1 geo.region
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",), ("stream_id", "request_id")),
)

# stream_trace (all subtypes), NaaP v1 gateway.request.* and gateway.swap mapped onto the same subtypes.
FACT_TRACE = TimeTable(
    name="telemetry_fact_trace",
    columns=(
        *_COMMON,
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("stream_id", "text NOT NULL"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("pipeline", "text NOT NULL DEFAULT ''"),
        ("trace_type", "text NOT NULL"),
        ("orchestrator", "text NOT NULL DEFAULT ''"),
        ("orchestrator_url", "text NOT NULL DEFAULT ''"),
        ("detail", "text NOT NULL DEFAULT ''"),  # e.g. swap reason, failure reason
        ("region", "text NOT NULL DEFAULT ''"),  # added in 0003: NaaP v1 geo.region
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",), ("stream_id", "request_id")),
)

# stream_ingest_metrics: cumulative counters of one session's ingest connection.
FACT_INGEST = TimeTable(
    name="telemetry_fact_ingest",
    columns=(
        *_COMMON,
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("stream_id", "text NOT NULL"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("conn_quality", "text NOT NULL DEFAULT ''"),
        ("bytes_received", "bigint"),
        ("bytes_sent", "bigint"),
        ("video_packets_received", "bigint"),
        ("video_packets_lost", "bigint"),
        ("audio_packets_received", "bigint"),
        ("audio_packets_lost", "bigint"),
        ("video_jitter_ms", "double precision"),
        ("rtt_ms", "double precision"),
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",), ("stream_id", "request_id"), _TIME_INDEX),
)

# ai_stream_events (type error and others).
FACT_ERROR = TimeTable(
    name="telemetry_fact_error",
    columns=(
        *_COMMON,
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("stream_id", "text NOT NULL"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("pipeline", "text NOT NULL DEFAULT ''"),
        ("event_kind", "text NOT NULL DEFAULT ''"),
        ("message", "text NOT NULL DEFAULT ''"),
        ("error_class", "text NOT NULL DEFAULT 'unknown'"),  # orchestrator | network | client | unknown
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",), ("stream_id", "request_id")),
)

# create_new_payment, values parsed exactly (numeric, never float).
FACT_PAYMENT = TimeTable(
    name="telemetry_fact_payment",
    columns=(
        *_COMMON,
        ("gateway", "text NOT NULL DEFAULT ''"),
        ("orchestrator_url", "text NOT NULL DEFAULT ''"),
        ("recipient", "text NOT NULL DEFAULT ''"),
        ("sender", "text NOT NULL DEFAULT ''"),
        ("request_id", "text NOT NULL DEFAULT ''"),
        ("session_id", "text NOT NULL DEFAULT ''"),
        ("manifest_id", "text NOT NULL DEFAULT ''"),
        ("num_tickets", "bigint NOT NULL DEFAULT 0"),
        ("face_value_wei", "numeric NOT NULL DEFAULT 0"),
        ("win_prob", "numeric NOT NULL DEFAULT 0"),
        ("price_wei_per_pixel", "numeric"),
        ("expected_value_wei", "numeric NOT NULL DEFAULT 0"),  # num_tickets × face value × win prob
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",), _TIME_INDEX),
)

# network_capabilities / discovery_results / NaaP v1 orch.health: who is who, where, on which GPU.
# One row per (event, orchestrator, pipeline, GPU); ``ord`` numbers the rows of one event.
FACT_CAPABILITY = TimeTable(
    name="telemetry_fact_capability",
    columns=(
        *_COMMON,
        ("ord", "integer NOT NULL"),
        ("origin", "text NOT NULL"),  # network_capabilities | discovery_results | naap
        ("address", "text NOT NULL DEFAULT ''"),  # on-chain address, lower-case
        ("local_address", "text NOT NULL DEFAULT ''"),  # signing address, lower-case
        ("orchestrator_url", "text NOT NULL DEFAULT ''"),
        ("pipeline", "text NOT NULL DEFAULT ''"),
        ("model_id", "text NOT NULL DEFAULT ''"),
        ("gpu_id", "text NOT NULL DEFAULT ''"),
        ("gpu_type", "text NOT NULL DEFAULT ''"),
        ("region", "text NOT NULL DEFAULT ''"),
        ("capacity", "integer"),
        ("version", "text NOT NULL DEFAULT ''"),
        ("latency_ms", "double precision"),
    ),
    time_column="event_time",
    primary_key=("dedup_key", "ord", "event_time"),
    indexes=(("received_at",), ("address",), ("local_address",), _TIME_INDEX),
)

# Open-pool job-processed (request/response jobs) and worker connection events.
FACT_JOB = TimeTable(
    name="telemetry_fact_job",
    columns=(
        *_COMMON,
        ("event_type", "text NOT NULL"),
        ("address", "text NOT NULL DEFAULT ''"),
        ("duration_ms", "double precision"),
        ("response_time_ms", "double precision"),
        ("compute_units", "bigint"),
        ("fees_wei", "numeric"),
        ("real_time_ratio", "double precision"),
    ),
    time_column="event_time",
    primary_key=("dedup_key", "event_time"),
    indexes=(("received_at",),),
)

FACT_TABLES = (FACT_STATUS, FACT_TRACE, FACT_INGEST, FACT_ERROR, FACT_PAYMENT, FACT_CAPABILITY, FACT_JOB)
ALL_TABLES = (RAW, *FACT_TABLES)
