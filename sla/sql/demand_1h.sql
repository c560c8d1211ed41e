-- Demand and supply per gateway × pipeline × region × GPU type and hour.
-- Fact relations (fact_payment and fact_capability) are telemetry.queries.ROLLUP_FACT_RELATIONS.
-- streams: a stream counts in the hour of its first request (so hours add up to days);
-- inference seconds: output time inside the hour only (no rollover tails);
-- failed sessions: once, in the hour the session ended; capacity: each capability snapshot advertises
-- its slots until the next snapshot of the same orchestrator/pipeline/GPU, at most 5 minutes.
WITH sess AS (
  SELECT x.id, x.stream_id, x.request_at, x.ended_at, x.gateway, x.pipeline, x.region, x.outcome,
         x.orchestrator, x.started, x.status,
         COALESCE((SELECT s.gpu_type FROM sla_segment s WHERE s.session_id = x.id
                   ORDER BY s.ordinal DESC LIMIT 1), '') AS gpu_type
  FROM sla_session x
  WHERE (x.request_at >= %(start)s AND x.request_at < %(end)s)
     OR (x.ended_at >= %(start)s AND x.ended_at < %(end)s)
), pay AS (
  -- Payments summed per hour, gateway and request first, then each request joined once to its session.
  SELECT date_trunc('hour', p.event_time) AS bucket, p.gateway, p.request_id,
         sum(p.expected_value_wei) AS fees_wei
  FROM {fact_payment} p
  WHERE p.event_time >= %(start)s AND p.event_time < %(end)s
  GROUP BY 1, p.gateway, p.request_id
), pay_sess AS (
  -- The earliest session of each paid request (by request time, then id).
  SELECT DISTINCT ON (x.request_id) x.request_id, x.gateway, x.pipeline, x.region,
         COALESCE((SELECT s.gpu_type FROM sla_segment s WHERE s.session_id = x.id
                   ORDER BY s.ordinal DESC LIMIT 1), '') AS gpu_type
  FROM sla_session x
  WHERE x.request_id IN (SELECT pay.request_id FROM pay WHERE pay.request_id <> '')
  ORDER BY x.request_id, x.request_at NULLS LAST, x.id
), parts AS (
  SELECT date_trunc('hour', request_at) AS bucket, gateway, pipeline, region, gpu_type,
         1 AS sessions,
         CASE WHEN NOT EXISTS (
           SELECT 1 FROM sla_session y WHERE y.stream_id = sess.stream_id
             AND (y.request_at, y.id) < (sess.request_at, sess.id)) THEN 1 ELSE 0 END AS streams,
         CASE WHEN outcome = 'no_orchestrator'
                OR (status = 'closed' AND orchestrator = '' AND NOT started) THEN 1 ELSE 0 END AS missing_capacity,
         0 AS failed_sessions, 0::double precision AS inference_seconds,
         0::double precision AS capacity_seconds, 0::numeric AS fees_wei, NULL::text AS orchestrator
  FROM sess WHERE request_at >= %(start)s AND request_at < %(end)s
  UNION ALL
  SELECT date_trunc('hour', ended_at), gateway, pipeline, region, gpu_type, 0, 0, 0, 1, 0, 0, 0, NULL
  FROM sess
  WHERE ended_at >= %(start)s AND ended_at < %(end)s AND outcome IN ('startup_failed', 'failed')
  UNION ALL
  SELECT date_trunc('hour', m.bucket), m.gateway, m.pipeline, m.region, m.gpu_type, 0, 0, 0, 0,
         m.output_seconds, 0, 0, CASE WHEN m.output_seconds > 0 AND m.orchestrator <> '' THEN m.orchestrator END
  FROM sla_segment_minute m WHERE m.bucket >= %(start)s AND m.bucket < %(end)s
  UNION ALL
  SELECT pay.bucket, COALESCE(NULLIF(ps.gateway, ''), pay.gateway), COALESCE(ps.pipeline, ''),
         COALESCE(ps.region, ''), COALESCE(ps.gpu_type, ''), 0, 0, 0, 0, 0, 0, pay.fees_wei, NULL
  FROM pay LEFT JOIN pay_sess ps ON ps.request_id = pay.request_id
  UNION ALL
  SELECT h.hour, '', c.pipeline, c.region, c.gpu_type, 0, 0, 0, 0, 0,
         c.capacity * extract(epoch FROM LEAST(c.until, h.hour + INTERVAL '1 hour') - GREATEST(c.since, h.hour)),
         0, NULL
  FROM (
    SELECT event_time AS since,
           LEAST(COALESCE(lead(event_time) OVER w, event_time + INTERVAL '5 minutes'),
                 event_time + INTERVAL '5 minutes') AS until,
           pipeline, region, gpu_type, capacity
    FROM (
      SELECT DISTINCT ON (COALESCE(NULLIF(address, ''), local_address, orchestrator_url), pipeline, gpu_id, event_time)
             COALESCE(NULLIF(address, ''), local_address, orchestrator_url) AS who, pipeline, gpu_id,
             region, gpu_type, capacity, event_time
      FROM {fact_capability}
      WHERE capacity IS NOT NULL AND capacity > 0 AND pipeline <> ''
        AND event_time >= %(start)s - INTERVAL '5 minutes' AND event_time < %(end)s + INTERVAL '5 minutes'
      ORDER BY COALESCE(NULLIF(address, ''), local_address, orchestrator_url), pipeline, gpu_id, event_time, capacity DESC
    ) snaps
    WINDOW w AS (PARTITION BY who, pipeline, gpu_id ORDER BY event_time)
  ) c
  CROSS JOIN LATERAL (SELECT DISTINCT hour FROM (VALUES (date_trunc('hour', c.since)),
                                                   (date_trunc('hour', c.until - INTERVAL '1 microsecond'))) v(hour)) h
  WHERE c.until > c.since AND h.hour >= %(start)s AND h.hour < %(end)s
)
SELECT bucket, gateway, pipeline, region, gpu_type,
       sum(streams)::bigint AS streams,
       sum(sessions)::bigint AS sessions,
       sum(failed_sessions)::bigint AS failed_sessions,
       sum(missing_capacity)::bigint AS missing_capacity,
       sum(inference_seconds)::double precision AS inference_seconds,
       sum(capacity_seconds)::double precision AS capacity_seconds,
       sum(fees_wei)::numeric AS fees_wei,
       COALESCE(array_agg(DISTINCT orchestrator ORDER BY orchestrator) FILTER (WHERE orchestrator IS NOT NULL),
                ARRAY[]::text[]) AS orchestrators
FROM parts
GROUP BY bucket, gateway, pipeline, region, gpu_type
