-- One page of (bucket × orchestrator × pipeline × region × GPU) rows present in any of the three orchestrator
-- rollups of one level, with the total across pages. {filters}: one "AND <key> = <placeholder>" clause per filter.
WITH keys AS (
  SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type FROM {perf}
  WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
  UNION
  SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type FROM {rel}
  WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
  UNION
  SELECT bucket, orchestrator, pipeline, region, gpu_id, gpu_type FROM {net}
  WHERE bucket >= %(start)s AND bucket < %(end)s {filters}
)
SELECT t.total, k.bucket, k.orchestrator, k.pipeline, k.region, k.gpu_id, k.gpu_type
FROM (SELECT count(*) AS total FROM keys) t
LEFT JOIN LATERAL (
  SELECT * FROM keys ORDER BY bucket, orchestrator, gpu_id, pipeline, region, gpu_type
  LIMIT %(limit)s OFFSET %(offset)s
) k ON true
