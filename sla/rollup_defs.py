"""The rollups: one SQL definition each (``sla/sql/<family>_1m.sql`` or ``_1h`` for the base level and
``<family>_merge.sql`` for every coarser level) and the columns of their mergeable state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from naap_site.timeseries import Rollup
from telemetry.queries import ROLLUP_FACT_RELATIONS

SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_text(name: str) -> str:
    return (SQL_DIR / name).read_text()


ORCH_KEYS = ("orchestrator", "pipeline", "region", "gpu_id", "gpu_type")
DEMAND_KEYS = ("gateway", "pipeline", "region", "gpu_type")
_HIST = "integer[] NOT NULL"

PERF_COLUMNS = (
    ("samples", "bigint NOT NULL"),
    ("fps_sum", "double precision NOT NULL"),
    ("fps_sumsq", "double precision NOT NULL"),
    ("fps_min", "double precision"),
    ("fps_max", "double precision"),
    ("in_fps_samples", "bigint NOT NULL"),
    ("in_fps_sum", "double precision NOT NULL"),
    ("jitter_n", "bigint NOT NULL"),
    ("jitter_sum", "double precision NOT NULL"),
    ("jitter_hist", _HIST),
    ("output_seconds", "double precision NOT NULL"),
    ("restarts", "bigint NOT NULL"),
    ("segment_minutes", "bigint NOT NULL"),
)
SWAP_REASONS = (
    "timeout",
    "model_error",
    "runner_disconnect",
    "capacity",
    "gateway_reset",
    "orchestrator_reset",
    "unknown",
)
_BIG = "bigint NOT NULL"
REL_COLUMNS = (
    *(
        (n, _BIG)
        for n in (
            "segments",
            "ended",
            "started",
            "effective_ok",
            "clean",
            "failed",
            "failed_orchestrator",
            "failed_network",
            "failed_unknown",
            "client_errors",
            "streams",
            "swaps",
            *(f"swap_{r}" for r in SWAP_REASONS),
        )
    ),
    ("p2ff_n", _BIG),
    ("p2ff_sum", "double precision NOT NULL"),
    ("p2ff_hist", _HIST),
    ("startup_n", _BIG),
    ("startup_sum", "double precision NOT NULL"),
    ("startup_hist", _HIST),
    ("e2e_n", _BIG),
    ("e2e_sum", "double precision NOT NULL"),
    ("e2e_hist", _HIST),
)
NET_COLUMNS = (
    ("samples", _BIG),
    ("up_bytes", _BIG),
    ("up_seconds", "double precision NOT NULL"),
    ("down_bytes", _BIG),
    ("down_seconds", "double precision NOT NULL"),
    ("video_received", _BIG),
    ("video_lost", _BIG),
    ("audio_received", _BIG),
    ("audio_lost", _BIG),
)
DEMAND_COLUMNS = (
    ("streams", _BIG),
    ("sessions", _BIG),
    ("failed_sessions", _BIG),
    ("missing_capacity", _BIG),
    ("inference_seconds", "double precision NOT NULL"),
    ("capacity_seconds", "double precision NOT NULL"),
    ("fees_wei", "numeric NOT NULL"),
    ("orchestrators", "text[] NOT NULL"),
)

LEVELS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
_WIDTH_SQL = {"1m": "1 minute", "5m": "5 minutes", "1h": "1 hour", "1d": "1 day"}
_POLICY = {"5m": ("2 days", "1 minute"), "1h": ("3 days", "5 minutes"), "1d": ("7 days", "1 hour")}


@dataclass(frozen=True)
class Family:
    name: str
    keys: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    levels: tuple[str, ...]

    def table(self, level: str) -> str:
        return f"sla_{self.name}_{level}"


PERF = Family("perf", ORCH_KEYS, PERF_COLUMNS, ("1m", "5m", "1h", "1d"))
REL = Family("rel", ORCH_KEYS, REL_COLUMNS, ("1m", "5m", "1h", "1d"))
NET = Family("net", ORCH_KEYS, NET_COLUMNS, ("1m", "5m", "1h", "1d"))
DEMAND = Family("demand", DEMAND_KEYS, DEMAND_COLUMNS, ("1h", "1d"))
FAMILIES = (PERF, REL, NET, DEMAND)


def _rollups(family: Family) -> list[Rollup]:
    out: list[Rollup] = []
    parent: str | None = None
    for level in family.levels:
        base = parent is None
        start, schedule = _POLICY.get(level, ("3 days", "1 minute"))
        out.append(
            Rollup(
                name=family.table(level),
                columns=family.columns,
                keys=family.keys,
                width=_WIDTH_SQL[level],
                select=sql_text(f"{family.name}_{level}.sql" if base else f"{family.name}_merge.sql"),
                parent=parent,
                policy_start=start,
                policy_schedule=schedule,
                relations=tuple(ROLLUP_FACT_RELATIONS.items()) if base else (),
            )
        )
        parent = family.table(level)
    return out


ROLLUPS: dict[str, Rollup] = {r.name: r for f in FAMILIES for r in _rollups(f)}
