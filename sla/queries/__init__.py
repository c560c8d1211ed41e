"""Reads behind the public API and the pages: a thin layer over the rollup and score query functions,
plus the data-quality figures read from ``telemetry.queries``. Frozen dataclasses out, no HTTP here.

One module per concern; every public name is re-exported here, so callers keep importing ``sla.queries``
(and tests patch names on it where callers look them up as ``queries.<name>``)."""

from sla.queries.demand import (
    DemandBucketTotals,
    DemandHeatmap,
    DemandRow,
    DemandTotals,
    capacity_rate,
    demand_rows,
    demand_totals,
    eth_text,
    fold_demand_totals,
)
from sla.queries.gpu_metrics import (
    GPU_ROW_KEYS_SQL,
    MetricPage,
    MetricRow,
    RowKey,
    gpu_metric_page,
)
from sla.queries.orchestrators import (
    ORCHESTRATOR_IN_ROLLUPS_SQL,
    GpuServed,
    OrchestratorProfile,
    known_orchestrators,
    orchestrator_known,
    orchestrator_profile,
    orchestrators_in_region,
)
from sla.queries.quality import (
    Quality,
    quality,
)
from sla.queries.refresh_sql import (
    CAGG_UNMATERIALIZED_SQL,
    DELETE_BUCKETS_SQL,
    DELETE_DIRTY_SQL,
    DIRTY_IDS_SQL,
    INSERT_DIRTY_SQL,
    INSERT_ROLLUP_SQL,
    REFRESH_CAGG_SQL,
    REFRESH_LOCK_KEY,
    SESSION_CHANGES_SQL,
    STATE_SQL,
    TRY_LOCK_SQL,
    UNLOCK_SQL,
    UPSERT_STATE_SQL,
)
from sla.queries.scores import (
    StoredScore,
    latest_scores_of,
    latest_window_end,
    ranked_scores,
    score_series,
)
from sla.rollups import Filters  # callers build demand filters from here

__all__ = [
    "CAGG_UNMATERIALIZED_SQL",
    "DELETE_BUCKETS_SQL",
    "DELETE_DIRTY_SQL",
    "DIRTY_IDS_SQL",
    "DemandBucketTotals",
    "DemandHeatmap",
    "DemandRow",
    "DemandTotals",
    "Filters",
    "GPU_ROW_KEYS_SQL",
    "GpuServed",
    "INSERT_DIRTY_SQL",
    "INSERT_ROLLUP_SQL",
    "MetricPage",
    "MetricRow",
    "ORCHESTRATOR_IN_ROLLUPS_SQL",
    "OrchestratorProfile",
    "Quality",
    "REFRESH_CAGG_SQL",
    "REFRESH_LOCK_KEY",
    "RowKey",
    "SESSION_CHANGES_SQL",
    "STATE_SQL",
    "StoredScore",
    "TRY_LOCK_SQL",
    "UNLOCK_SQL",
    "UPSERT_STATE_SQL",
    "capacity_rate",
    "demand_rows",
    "demand_totals",
    "eth_text",
    "fold_demand_totals",
    "gpu_metric_page",
    "known_orchestrators",
    "latest_scores_of",
    "latest_window_end",
    "orchestrator_known",
    "orchestrator_profile",
    "orchestrators_in_region",
    "quality",
    "ranked_scores",
    "score_series",
]
