-- Performance state merged over the selected buckets ({keys}: grouping columns, {filters}: AND clauses).
SELECT {keys}
       sum(samples)::bigint, sum(fps_sum), sum(fps_sumsq), min(fps_min), max(fps_max),
       sum(in_fps_samples)::bigint, sum(in_fps_sum), sum(jitter_n)::bigint, sum(jitter_sum),
       sla_hist_merge(jitter_hist), sum(output_seconds), sum(restarts)::bigint
FROM {table}
WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
GROUP BY {group}
{order}
