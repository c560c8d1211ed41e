-- The raw rows of one rebuild chunk, in a stable order: what facts are re-derived from.
SELECT dedup_key, received_at, publisher, payload
FROM telemetry_events_raw
WHERE event_time >= %(start)s AND event_time < %(end)s
ORDER BY event_time, dedup_key
