"""Raw SQL of the rollup refresh (``sla.refresh``): its advisory lock, dirty ranges, refresh state and the
statements that rewrite rollup buckets."""

# One refresher at a time: a session-level advisory lock ("SLAR").
REFRESH_LOCK_KEY = 0x534C4152
TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(%s)"
UNLOCK_SQL = "SELECT pg_advisory_unlock(%s)"
DIRTY_IDS_SQL = 'SELECT id, start, "end" FROM sla_dirty_range ORDER BY id'
DELETE_DIRTY_SQL = "DELETE FROM sla_dirty_range WHERE id = ANY(%s)"
INSERT_DIRTY_SQL = 'INSERT INTO sla_dirty_range (kind, start, "end", created_at) VALUES (%s, %s, %s, %s)'
STATE_SQL = "SELECT position FROM sla_refresh_state WHERE name = %s"
UPSERT_STATE_SQL = """
INSERT INTO sla_refresh_state (name, position, pending_start, pending_end, refreshed_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET position = COALESCE(EXCLUDED.position, sla_refresh_state.position),
  pending_start = EXCLUDED.pending_start, pending_end = EXCLUDED.pending_end,
  refreshed_at = COALESCE(EXCLUDED.refreshed_at, sla_refresh_state.refreshed_at)
"""
# The span of each session updated since the last refresh, in whole minutes (one row per distinct span).
SESSION_CHANGES_SQL = """
SELECT date_bin(INTERVAL '1 minute', LEAST(request_at, first_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       date_bin(INTERVAL '1 minute', GREATEST(request_at, last_event_at, ended_at), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       max(updated_at)
FROM sla_session WHERE updated_at > %s GROUP BY 1, 2
"""
# True when every bucket from %s on is served by real-time aggregation (nothing materialized there yet).
CAGG_UNMATERIALIZED_SQL = """
SELECT %s >= COALESCE(_timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(c.mat_hypertable_id)),
                      '-infinity'::timestamptz)
FROM _timescaledb_catalog.continuous_agg c
WHERE c.user_view_schema = current_schema() AND c.user_view_name = %s
"""
REFRESH_CAGG_SQL = "CALL refresh_continuous_aggregate({name}, %s, %s)"
DELETE_BUCKETS_SQL = "DELETE FROM {name} WHERE bucket >= %s AND bucket < %s"
INSERT_ROLLUP_SQL = "INSERT INTO {name} ({columns}) {select}"
