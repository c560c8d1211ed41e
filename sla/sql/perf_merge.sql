-- Coarser performance buckets: exact merge of the finer level's mergeable state.
SELECT {bucket} AS bucket,
       orchestrator, pipeline, region, gpu_id, gpu_type,
       sum(samples)::bigint AS samples,
       sum(fps_sum) AS fps_sum,
       sum(fps_sumsq) AS fps_sumsq,
       min(fps_min) AS fps_min,
       max(fps_max) AS fps_max,
       sum(in_fps_samples)::bigint AS in_fps_samples,
       sum(in_fps_sum) AS in_fps_sum,
       sum(jitter_n)::bigint AS jitter_n,
       sum(jitter_sum) AS jitter_sum,
       sla_hist_merge(jitter_hist) AS jitter_hist,
       sum(output_seconds) AS output_seconds,
       sum(restarts)::bigint AS restarts,
       sum(segment_minutes)::bigint AS segment_minutes
FROM {source}
{where}
GROUP BY {bucket}, orchestrator, pipeline, region, gpu_id, gpu_type
