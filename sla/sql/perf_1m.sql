-- Performance per orchestrator × pipeline × region × GPU and minute, from segment-minutes.
SELECT m.bucket AS bucket,
       m.orchestrator, m.pipeline, m.region, m.gpu_id, m.gpu_type,
       sum(m.samples)::bigint AS samples,
       sum(m.fps_sum) AS fps_sum,
       sum(m.fps_sumsq) AS fps_sumsq,
       min(m.fps_min) AS fps_min,
       max(m.fps_max) AS fps_max,
       sum(m.in_fps_samples)::bigint AS in_fps_samples,
       sum(m.in_fps_sum) AS in_fps_sum,
       count(m.jitter)::bigint AS jitter_n,
       COALESCE(sum(m.jitter), 0) AS jitter_sum,
       sla_hist(m.jitter * 10000.0) AS jitter_hist,
       sum(m.output_seconds) AS output_seconds,
       sum(m.restarts)::bigint AS restarts,
       count(*)::bigint AS segment_minutes
FROM sla_segment_minute m
WHERE m.bucket >= %(start)s AND m.bucket < %(end)s AND m.orchestrator <> ''
GROUP BY m.bucket, m.orchestrator, m.pipeline, m.region, m.gpu_id, m.gpu_type
