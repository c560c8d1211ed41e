-- Reliability and latency state merged over the selected buckets.
SELECT {keys}
       sum(segments)::bigint, sum(ended)::bigint, sum(started)::bigint, sum(effective_ok)::bigint,
       sum(clean)::bigint, sum(failed)::bigint, sum(failed_orchestrator)::bigint, sum(failed_network)::bigint,
       sum(failed_unknown)::bigint, sum(client_errors)::bigint, sum(streams)::bigint, sum(swaps)::bigint,
       sum(swap_timeout)::bigint, sum(swap_model_error)::bigint, sum(swap_runner_disconnect)::bigint,
       sum(swap_capacity)::bigint, sum(swap_gateway_reset)::bigint, sum(swap_orchestrator_reset)::bigint,
       sum(swap_unknown)::bigint,
       sum(p2ff_n)::bigint, sum(p2ff_sum), sla_hist_merge(p2ff_hist),
       sum(startup_n)::bigint, sum(startup_sum), sla_hist_merge(startup_hist),
       sum(e2e_n)::bigint, sum(e2e_sum), sla_hist_merge(e2e_hist)
FROM {table}
WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
GROUP BY {group}
{order}
