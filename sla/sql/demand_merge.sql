-- Coarser demand buckets: sums, and the union of active orchestrator sets.
SELECT {bucket} AS bucket,
       gateway, pipeline, region, gpu_type,
       sum(streams)::bigint AS streams, sum(sessions)::bigint AS sessions,
       sum(failed_sessions)::bigint AS failed_sessions, sum(missing_capacity)::bigint AS missing_capacity,
       sum(inference_seconds) AS inference_seconds, sum(capacity_seconds) AS capacity_seconds,
       sum(fees_wei) AS fees_wei, sla_text_union(orchestrators) AS orchestrators
FROM {source}
{where}
GROUP BY {bucket}, gateway, pipeline, region, gpu_type
