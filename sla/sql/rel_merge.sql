-- Coarser reliability buckets: exact merge of the finer level's counts and histograms.
SELECT {bucket} AS bucket,
       orchestrator, pipeline, region, gpu_id, gpu_type,
       sum(segments)::bigint AS segments, sum(ended)::bigint AS ended, sum(started)::bigint AS started,
       sum(effective_ok)::bigint AS effective_ok, sum(clean)::bigint AS clean, sum(failed)::bigint AS failed,
       sum(failed_orchestrator)::bigint AS failed_orchestrator, sum(failed_network)::bigint AS failed_network,
       sum(failed_unknown)::bigint AS failed_unknown, sum(client_errors)::bigint AS client_errors,
       sum(streams)::bigint AS streams, sum(swaps)::bigint AS swaps,
       sum(swap_timeout)::bigint AS swap_timeout, sum(swap_model_error)::bigint AS swap_model_error,
       sum(swap_runner_disconnect)::bigint AS swap_runner_disconnect, sum(swap_capacity)::bigint AS swap_capacity,
       sum(swap_gateway_reset)::bigint AS swap_gateway_reset,
       sum(swap_orchestrator_reset)::bigint AS swap_orchestrator_reset, sum(swap_unknown)::bigint AS swap_unknown,
       sum(p2ff_n)::bigint AS p2ff_n, sum(p2ff_sum) AS p2ff_sum, sla_hist_merge(p2ff_hist) AS p2ff_hist,
       sum(startup_n)::bigint AS startup_n, sum(startup_sum) AS startup_sum, sla_hist_merge(startup_hist) AS startup_hist,
       sum(e2e_n)::bigint AS e2e_n, sum(e2e_sum) AS e2e_sum, sla_hist_merge(e2e_hist) AS e2e_hist
FROM {source}
{where}
GROUP BY {bucket}, orchestrator, pipeline, region, gpu_id, gpu_type
