-- Demand state merged over the selected buckets.
SELECT {keys}
       sum(streams)::bigint, sum(sessions)::bigint, sum(failed_sessions)::bigint, sum(missing_capacity)::bigint,
       sum(inference_seconds), sum(capacity_seconds), sum(fees_wei), sla_text_union(orchestrators)
FROM {table}
WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
GROUP BY {group}
{order}
