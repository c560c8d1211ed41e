-- Coarser network buckets: sums of increments and elapsed seconds.
SELECT {bucket} AS bucket,
       orchestrator, pipeline, region, gpu_id, gpu_type,
       sum(samples)::bigint AS samples,
       sum(up_bytes)::bigint AS up_bytes, sum(up_seconds) AS up_seconds,
       sum(down_bytes)::bigint AS down_bytes, sum(down_seconds) AS down_seconds,
       sum(video_received)::bigint AS video_received, sum(video_lost)::bigint AS video_lost,
       sum(audio_received)::bigint AS audio_received, sum(audio_lost)::bigint AS audio_lost
FROM {source}
{where}
GROUP BY {bucket}, orchestrator, pipeline, region, gpu_id, gpu_type
