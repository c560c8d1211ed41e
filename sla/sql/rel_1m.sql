-- Reliability and latency per orchestrator segment, in the minute of the segment's request time.
-- Outcome counts only for ended segments (swapped away or session closed); latencies as soon as known.
WITH seg AS (
  SELECT date_trunc('minute', COALESCE(s.request_at, x.request_at, s.started_at)) AS bucket,
         s.orchestrator, s.pipeline, s.region, s.gpu_id, s.gpu_type,
         s.ended,
         s.started, s.ended_cleanly, s.swapped_away, s.swap_reason, s.error_class,
         s.p2ff_ms, s.startup_ms, s.e2e_ms,
         NOT EXISTS (
           SELECT 1 FROM sla_segment s2 JOIN sla_session x2 ON x2.id = s2.session_id
           WHERE x2.stream_id = x.stream_id AND s2.orchestrator = s.orchestrator
             AND (COALESCE(s2.request_at, x2.request_at, s2.started_at), s2.session_id, s2.ordinal)
               < (COALESCE(s.request_at, x.request_at, s.started_at), s.session_id, s.ordinal)
         ) AS first_of_stream
  FROM sla_segment s JOIN sla_session x ON x.id = s.session_id
  WHERE s.orchestrator <> ''
    AND COALESCE(s.request_at, x.request_at, s.started_at) >= %(start)s
    AND COALESCE(s.request_at, x.request_at, s.started_at) < %(end)s
), o AS (
  SELECT seg.*,
         ended AND NOT (started AND (ended_cleanly OR error_class = 'client')) AND error_class <> 'client' AS failed
  FROM seg
)
SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type,
       count(*)::bigint AS segments,
       count(*) FILTER (WHERE ended)::bigint AS ended,
       count(*) FILTER (WHERE ended AND started)::bigint AS started,
       count(*) FILTER (WHERE ended AND started AND error_class <> 'orchestrator')::bigint AS effective_ok,
       count(*) FILTER (WHERE ended AND NOT failed)::bigint AS clean,
       count(*) FILTER (WHERE failed)::bigint AS failed,
       count(*) FILTER (WHERE failed AND error_class = 'orchestrator')::bigint AS failed_orchestrator,
       count(*) FILTER (WHERE failed AND error_class = 'network')::bigint AS failed_network,
       count(*) FILTER (WHERE failed AND error_class NOT IN ('orchestrator', 'network'))::bigint AS failed_unknown,
       count(*) FILTER (WHERE ended AND error_class = 'client')::bigint AS client_errors,
       count(*) FILTER (WHERE ended AND first_of_stream)::bigint AS streams,
       count(*) FILTER (WHERE ended AND swapped_away)::bigint AS swaps,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'timeout')::bigint AS swap_timeout,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'model_error')::bigint AS swap_model_error,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'runner_disconnect')::bigint AS swap_runner_disconnect,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'capacity')::bigint AS swap_capacity,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'gateway_reset')::bigint AS swap_gateway_reset,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason = 'orchestrator_reset')::bigint AS swap_orchestrator_reset,
       count(*) FILTER (WHERE ended AND swapped_away AND swap_reason NOT IN ('timeout', 'model_error',
         'runner_disconnect', 'capacity', 'gateway_reset', 'orchestrator_reset'))::bigint AS swap_unknown,
       count(p2ff_ms)::bigint AS p2ff_n,
       COALESCE(sum(p2ff_ms), 0) AS p2ff_sum,
       sla_hist(p2ff_ms) AS p2ff_hist,
       count(startup_ms)::bigint AS startup_n,
       COALESCE(sum(startup_ms), 0) AS startup_sum,
       sla_hist(startup_ms) AS startup_hist,
       count(e2e_ms)::bigint AS e2e_n,
       COALESCE(sum(e2e_ms), 0) AS e2e_sum,
       sla_hist(e2e_ms) AS e2e_hist
FROM o
GROUP BY bucket, orchestrator, pipeline, region, gpu_id, gpu_type
