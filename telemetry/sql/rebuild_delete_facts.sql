-- Delete the facts derived from the raw rows of one rebuild chunk. A fact belongs to the raw row with its
-- (dedup_key, received_at); its own event_time may lie outside the chunk (trace facts take data.timestamp).
DELETE FROM {table} AS f
USING telemetry_events_raw AS r
WHERE r.event_time >= %(start)s AND r.event_time < %(end)s
  AND f.dedup_key = r.dedup_key AND f.received_at = r.received_at
