-- Network per orchestrator × pipeline × region × GPU and minute, from cumulative ingest counters.
-- Fact relations (fact_ingest) are telemetry.queries.ROLLUP_FACT_RELATIONS.
-- Each sample contributes the increase since the previous sample of its session; a counter that went
-- down was reset, so that interval is skipped and counting restarts from the new value.
WITH touched AS (
  SELECT DISTINCT stream_id, request_id FROM {fact_ingest}
  WHERE event_time >= %(start)s AND event_time < %(end)s
), samples AS (
  SELECT f.stream_id, f.request_id, f.event_time,
         extract(epoch FROM f.event_time - lag(f.event_time) OVER w) AS dt,
         f.bytes_received, lag(f.bytes_received) OVER w AS p_bytes_received,
         f.bytes_sent, lag(f.bytes_sent) OVER w AS p_bytes_sent,
         f.video_packets_received, lag(f.video_packets_received) OVER w AS p_video_received,
         f.video_packets_lost, lag(f.video_packets_lost) OVER w AS p_video_lost,
         f.audio_packets_received, lag(f.audio_packets_received) OVER w AS p_audio_received,
         f.audio_packets_lost, lag(f.audio_packets_lost) OVER w AS p_audio_lost
  FROM {fact_ingest} f JOIN touched t USING (stream_id, request_id)
  WINDOW w AS (PARTITION BY f.stream_id, f.request_id ORDER BY f.event_time, f.dedup_key)
), d AS (
  SELECT s.*,
         dt > 0 AND bytes_received >= p_bytes_received AS up_ok,
         dt > 0 AND bytes_sent >= p_bytes_sent AS down_ok,
         video_packets_received >= p_video_received AND video_packets_lost >= p_video_lost AS video_ok,
         audio_packets_received >= p_audio_received AND audio_packets_lost >= p_audio_lost AS audio_ok
  FROM samples s
  WHERE s.event_time >= %(start)s AND s.event_time < %(end)s AND s.dt IS NOT NULL
), a AS (
  SELECT d.*, COALESCE(seg.orchestrator, x.orchestrator) AS orchestrator,
         COALESCE(NULLIF(seg.pipeline, ''), x.pipeline) AS pipeline,
         COALESCE(NULLIF(seg.region, ''), x.region) AS region,
         COALESCE(seg.gpu_id, '') AS gpu_id, COALESCE(seg.gpu_type, '') AS gpu_type
  FROM d
  JOIN sla_session x ON x.stream_id = d.stream_id AND x.request_id = d.request_id
  LEFT JOIN LATERAL (
    SELECT s.orchestrator, s.pipeline, s.region, s.gpu_id, s.gpu_type FROM sla_segment s
    WHERE s.session_id = x.id AND s.orchestrator <> ''
      AND (s.started_at IS NULL OR s.started_at <= d.event_time)
    ORDER BY s.ordinal DESC LIMIT 1
  ) seg ON true
)
SELECT date_trunc('minute', event_time) AS bucket,
       orchestrator, pipeline, region, gpu_id, gpu_type,
       count(*)::bigint AS samples,
       COALESCE(sum(bytes_received - p_bytes_received) FILTER (WHERE up_ok), 0)::bigint AS up_bytes,
       COALESCE(sum(dt) FILTER (WHERE up_ok), 0)::double precision AS up_seconds,
       COALESCE(sum(bytes_sent - p_bytes_sent) FILTER (WHERE down_ok), 0)::bigint AS down_bytes,
       COALESCE(sum(dt) FILTER (WHERE down_ok), 0)::double precision AS down_seconds,
       COALESCE(sum(video_packets_received - p_video_received) FILTER (WHERE video_ok), 0)::bigint AS video_received,
       COALESCE(sum(video_packets_lost - p_video_lost) FILTER (WHERE video_ok), 0)::bigint AS video_lost,
       COALESCE(sum(audio_packets_received - p_audio_received) FILTER (WHERE audio_ok), 0)::bigint AS audio_received,
       COALESCE(sum(audio_packets_lost - p_audio_lost) FILTER (WHERE audio_ok), 0)::bigint AS audio_lost
FROM a
WHERE orchestrator <> ''
GROUP BY 1, orchestrator, pipeline, region, gpu_id, gpu_type
