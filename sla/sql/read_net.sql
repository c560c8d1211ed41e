-- Network state merged over the selected buckets.
SELECT {keys}
       sum(samples)::bigint, sum(up_bytes)::bigint, sum(up_seconds), sum(down_bytes)::bigint, sum(down_seconds),
       sum(video_received)::bigint, sum(video_lost)::bigint, sum(audio_received)::bigint, sum(audio_lost)::bigint
FROM {table}
WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
GROUP BY {group}
{order}
