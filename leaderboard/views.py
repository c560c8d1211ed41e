"""Pages: server-rendered first paint with the initial series embedded (``json_script``); data comes only
from ``sla.queries`` (and ENS names from ``leaderboard.ens``). ``live_snapshot`` gives the numbers that the
broadcast task diffs and sends to subscribed websockets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import markdown
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from leaderboard import figures
from leaderboard.consumers import NETWORK_STREAM, leaderboard_stream, orchestrator_stream
from leaderboard.ens import names_for, resolve_name
from sla import metrics, page_queries
from sla import queries as sla

PERIODS: dict[str, timedelta] = {"1h": timedelta(hours=1), "24h": timedelta(hours=24)}
WINDOW_CHOICES = ({"value": "1h", "label": "Last hour"}, {"value": "24h", "label": "Last 24 hours"})
HISTORY_CHOICES: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
METRICS_DOC = Path(settings.BASE_DIR) / "docs" / "metrics.md"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    type: str  # the number format of naap.fmt, or "text"
    unit: str
    tooltip: str
    sortable: bool = True


COLUMNS: tuple[Column, ...] = (
    Column("rank", "#", "int", "", "Rank by SLA score among orchestrators with enough sessions"),
    Column("name", "Orchestrator", "text", "", "ENS primary name (verified) or short address"),
    Column("workflow", "Workflow", "text", "", "Pipeline / model the score is for"),
    Column("score", "Score", "score", "0–100", "SLA score = 0.3·latency + 0.4·reliability + 0.3·performance"),
    Column("fps", "Output FPS", "fps", "fps", "Mean output frames per second over performance samples"),
    Column(
        "jitter", "Jitter", "ratio", "σ/μ", "Mean coefficient of variation of output FPS per session-minute"
    ),
    Column("p2ff_p95_ms", "P2FF p95", "ms", "ms", "95th percentile of prompt-to-first-frame latency"),
    Column(
        "success",
        "Effective success",
        "pct",
        "%",
        "Sessions that started and ended without an orchestrator-side fatal error ÷ sessions that started, with the 95% Wilson interval",
    ),
    Column("swap_rate", "Swap rate", "pct", "%", "Swaps away from this orchestrator ÷ streams"),
    Column("sessions", "Sessions", "int", "", "Ended sessions in the window (the sample size)"),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
ASCENDING_BY_DEFAULT = {"rank", "name", "workflow", "p2ff_p95_ms", "jitter", "swap_rate"}


# ---------------------------------------------------------------------------------------------------------
# Choices read from the query string
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    workflow: str  # "all" or a pipeline
    region: str  # "all" or a region
    window: str  # "1h" | "24h"
    sort: str
    sort_dir: str  # "asc" | "desc"

    @property
    def stream(self) -> str:
        return leaderboard_stream(self.workflow, self.region, self.window)


def _choice(request: HttpRequest) -> Choice:
    workflow = request.GET.get("workflow", "all").strip()[:80] or "all"
    region = request.GET.get("region", "all").strip()[:80] or "all"
    window = request.GET.get("window", "24h")
    if window not in PERIODS:
        window = "24h"
    sort = request.GET.get("sort", "rank")
    if sort not in COLUMN_KEYS:
        sort = "rank"
    default_dir = "asc" if sort in ASCENDING_BY_DEFAULT else "desc"
    sort_dir = request.GET.get("dir", default_dir)
    if sort_dir not in ("asc", "desc"):
        sort_dir = default_dir
    return Choice(workflow, region, window, sort, sort_dir)


# ---------------------------------------------------------------------------------------------------------
# Leaderboard data
# ---------------------------------------------------------------------------------------------------------


def _number(inputs: dict[str, Any], key: str) -> float | None:
    value = inputs.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def score_row(stored: sla.StoredScore, rank: int | None, name: str | None) -> dict[str, Any]:
    """The numbers of one leaderboard row (what the page shows and what live deltas carry)."""
    inputs = stored.inputs
    started = int(_number(inputs, "started") or 0)
    effective_ok = int(_number(inputs, "effective_ok") or 0)
    streams = int(_number(inputs, "streams") or 0)
    swaps = int(_number(inputs, "swaps") or 0)
    interval = metrics.wilson_interval(effective_ok, started)
    return {
        "key": f"{stored.orchestrator}|{stored.workflow}",
        "address": stored.orchestrator,
        "name": name,
        "workflow": stored.workflow,
        "rank": rank,
        "score": stored.score,
        "latency": stored.latency,
        "reliability": stored.reliability,
        "performance": stored.performance,
        "fps": _number(inputs, "output_fps_mean"),
        "jitter": _number(inputs, "jitter_mean"),
        "p2ff_p95_ms": _number(inputs, "p2ff_p95_ms"),
        "success": effective_ok / started if started else None,
        "success_lo": interval[0] if interval else None,
        "success_hi": interval[1] if interval else None,
        "swap_rate": swaps / streams if streams else None,
        "sessions": stored.sessions,
        "sufficient": stored.sufficient,
        "scoring_version": stored.version,
    }


@dataclass(frozen=True)
class Board:
    rows: list[dict[str, Any]]
    window_start: datetime | None
    window_end: datetime | None
    workflows: list[str]
    regions: list[str]


def board(choice: Choice) -> Board:
    """Ranked rows for a choice of workflow, region and window (newest scored window)."""
    workflow = None if choice.workflow == "all" else choice.workflow
    window_end = sla.latest_window_end(choice.window)
    if window_end is None:
        return Board([], None, None, [], [])
    window_start = window_end - PERIODS[choice.window]
    everything = sla.ranked_scores(choice.window, window_end, None, None)
    workflows = sorted({s.workflow for s in everything})
    members = (
        sla.orchestrators_in_region(choice.region, window_start, window_end)
        if choice.region != "all"
        else None
    )
    ranked = [
        s
        for s in everything
        if (workflow is None or s.workflow == workflow) and (members is None or s.orchestrator in members)
    ]
    unranked = page_queries.unranked_scores(choice.window, window_end, workflow, members)
    # a key whose newest scoring version is insufficient is not ranked on an older version's score
    newest_unranked = {(s.orchestrator, s.workflow): s.version for s in unranked}
    ranked = [s for s in ranked if newest_unranked.get((s.orchestrator, s.workflow), -1) < s.version]
    names = names_for({s.orchestrator for s in ranked} | {s.orchestrator for s in unranked})
    rows = [score_row(s, i + 1, names.get(s.orchestrator) or None) for i, s in enumerate(ranked)]
    rows += [score_row(s, None, names.get(s.orchestrator) or None) for s in unranked]
    for row in rows:
        row["live_key"] = row["address"] if workflow is not None else row["key"]
    seen = page_queries.choices(window_start, window_end)
    workflows = sorted(set(workflows) | set(seen.workflows))
    return Board(rows, window_start, window_end, workflows, list(seen.regions))


def _sorted_rows(rows: list[dict[str, Any]], key: str, direction: str) -> list[dict[str, Any]]:
    def key_of(row: dict[str, Any]) -> Any:
        return (row.get("name") or row["address"]).lower() if key == "name" else row.get(key)

    ranked = [r for r in rows if r.get("sufficient", True)]
    unranked = [r for r in rows if not r.get("sufficient", True)]
    out: list[dict[str, Any]] = []
    for group in (ranked, unranked):  # "insufficient data" rows always after the ranked ones
        present = [r for r in group if key_of(r) is not None]
        missing = [r for r in group if key_of(r) is None]
        present.sort(key=key_of, reverse=direction == "desc")
        out += present + missing  # missing values last, whatever the direction
    return out


def _columns(request: HttpRequest, choice: Choice, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for col in COLUMNS:
        if col.key not in keys:
            continue
        direction = "desc" if col.key not in ASCENDING_BY_DEFAULT else "asc"
        if col.key == choice.sort:
            direction = "asc" if choice.sort_dir == "desc" else "desc"
        query = request.GET.copy()
        query["sort"] = col.key
        query["dir"] = direction
        out.append({**col.__dict__, "sort_url": "?" + query.urlencode()})
    return out


def _leaderboard_context(request: HttpRequest, columns: tuple[str, ...]) -> dict[str, Any]:
    choice = _choice(request)
    data = board(choice)
    if choice.workflow != "all":
        columns = tuple(c for c in columns if c != "workflow")
    workflows = data.workflows
    if choice.workflow != "all" and choice.workflow not in workflows:
        workflows = [*workflows, choice.workflow]
    regions = data.regions
    if choice.region != "all" and choice.region not in regions:
        regions = [*regions, choice.region]
    return {
        "rows": _sorted_rows(data.rows, choice.sort, choice.sort_dir),
        "columns": _columns(request, choice, columns),
        "workflow": choice.workflow,
        "region": choice.region,
        "window": choice.window,
        "sort": choice.sort,
        "sort_dir": choice.sort_dir,
        "workflows": workflows,
        "regions": regions,
        "windows": WINDOW_CHOICES,
        "window_start": data.window_start,
        "window_end": data.window_end,
        "workflow_label": "all workflows" if choice.workflow == "all" else choice.workflow,
        "region_label": "all regions" if choice.region == "all" else choice.region,
        "window_label": {w["value"]: w["label"] for w in WINDOW_CHOICES}[choice.window],
        "live_streams": [choice.stream],
        "keep_params": [],
    }


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    context = _leaderboard_context(request, COLUMN_KEYS)
    context["nav"] = "leaderboard"
    return render(request, "leaderboard/leaderboard.html", context)


# ---------------------------------------------------------------------------------------------------------
# Orchestrator
# ---------------------------------------------------------------------------------------------------------


def _address_or_404(identifier: str) -> str:
    ident = identifier.strip().lower()
    if ident.endswith(".eth"):
        address = resolve_name(ident)
        if address is None:
            raise Http404(f"no verified orchestrator named {identifier}")
        return address.lower()
    if len(ident) == 42 and ident.startswith("0x") and all(c in "0123456789abcdef" for c in ident[2:]):
        if not sla.orchestrator_known(ident):
            raise Http404(f"no data for orchestrator {ident}")
        return ident
    raise Http404("not an address or an ENS name")


def _history(request: HttpRequest) -> str:
    history = request.GET.get("history", "24h")
    return history if history in HISTORY_CHOICES else "24h"


@dataclass(frozen=True)
class OrchestratorData:
    address: str
    name: str | None
    latest: list[dict[str, Any]]
    figures: dict[str, figures.Figure]
    end: datetime
    start: datetime
    overview: page_queries.OrchestratorOverview
    recent: list[page_queries.RecentSession]


HOUR = timedelta(hours=1)


def _hour_after(moment: datetime) -> datetime:
    """End of the hour bucket that holds ``moment`` (so that a window ending there includes it)."""
    return moment.replace(minute=0, second=0, microsecond=0) + HOUR


def page_end(scored_end: datetime | None, active: datetime | None) -> datetime:
    """Where a page's window ends: the newest scored window or the newest activity, whichever is later."""
    candidates = [t for t in (scored_end, _hour_after(active) if active else None) if t is not None]
    return max(candidates) if candidates else _hour_after(timezone.now())


def orchestrator_data(address: str, history: str, period: str = "1h") -> OrchestratorData:
    latest = sla.latest_scores_of(address, period) or sla.latest_scores_of(address, "24h")
    end = page_end(max((s.window_end for s in latest), default=None), page_queries.last_activity(address))
    start = end - HISTORY_CHOICES[history]
    series = sla.score_series(address, period, start, end)
    overview = page_queries.orchestrator_overview(address, start, end, "1h")
    names = names_for([address])
    return OrchestratorData(
        address=address,
        name=names.get(address) or None,
        latest=[score_row(s, None, None) for s in latest],
        figures=figures.orchestrator_figures(series, overview.series, lambda s: score_row(s, None, None)),
        end=end,
        start=start,
        overview=overview,
        recent=page_queries.recent_sessions(address, end),
    )


@require_GET
def orchestrator(request: HttpRequest, identifier: str) -> HttpResponse:
    address = _address_or_404(identifier)
    if identifier != address and not identifier.endswith(".eth"):
        return redirect("leaderboard:orchestrator", address)
    history = _history(request)
    data = orchestrator_data(address, history)
    context = {
        "nav": "orchestrator",
        "o": data,
        "history": history,
        "histories": list(HISTORY_CHOICES),
        "figures": data.figures,
        "figure_ids": list(data.figures),
        "live_streams": [orchestrator_stream(address)],
    }
    return render(request, "leaderboard/orchestrator.html", context)


# ---------------------------------------------------------------------------------------------------------
# Network, quality, methodology
# ---------------------------------------------------------------------------------------------------------


def network_summary(period: str = "24h") -> dict[str, Any]:
    window_end = sla.latest_window_end(period)
    if window_end is None:
        return {"scored_orchestrators": 0, "workflows": 0, "sessions": 0, "window_end": None}
    ranked = sla.ranked_scores(period, window_end, None, None)
    return {
        "scored_orchestrators": len({s.orchestrator for s in ranked}),
        "workflows": len({s.workflow for s in ranked}),
        "sessions": sum(s.sessions for s in ranked),
        "window_end": window_end,
    }


@dataclass(frozen=True)
class Demand:
    figures: dict[str, figures.Figure]
    active_orchestrators: int
    gpu_minutes: list[tuple[str, float]]
    totals: dict[str, float]


def _label(key: str) -> str:
    return key or "(unknown)"


def network_demand(end: datetime, span: timedelta = timedelta(hours=24)) -> Demand:
    """Hourly demand over [end − span, end): series, region × workflow heatmap, GPU types, active orchestrators."""
    t = sla.demand_totals(sla.Filters(), "1h", end - span, end)

    def series(name: str, fn: Any) -> list[tuple[str, list[figures.Point]]]:
        return [(name, [(b.bucket, fn(b)) for b in t.buckets])]

    heat = t.heatmap
    figs = {
        "fig-streams": figures.time_series(
            "Streams per hour", "streams", series("streams", lambda b: b.streams)
        ),
        "fig-minutes": figures.time_series(
            "Inference minutes per hour",
            "min",
            series("inference minutes", lambda b: b.inference_minutes),
            "min",
        ),
        "fig-capacity": figures.time_series(
            "Capacity rate",
            "inference ÷ advertised minutes",
            series("capacity rate", lambda b: b.capacity_rate),
        ),
        "fig-missing": figures.time_series(
            "Missing capacity", "requests", series("missing capacity", lambda b: b.missing_capacity)
        ),
        "fig-fees": figures.time_series(
            "Fees (expected value)", "ETH", series("fees", lambda b: float(b.fees_eth)), "ETH"
        ),
        "fig-heatmap": figures.heatmap(
            "Inference minutes, region × workflow",
            [_label(w) for w in heat.workflows],
            [_label(r) for r in heat.regions],
            [list(row) for row in heat.inference_minutes],
            "min",
        ),
    }
    totals = {
        "streams": float(t.streams),
        "minutes": t.inference_minutes,
        "missing": float(t.missing_capacity),
        "fees": float(t.fees_eth),
    }
    gpu_minutes = [(_label(gpu_type), minutes) for gpu_type, minutes in t.gpu_minutes]
    return Demand(figs, t.active_orchestrators, gpu_minutes, totals)


@require_GET
def network(request: HttpRequest) -> HttpResponse:
    summary = network_summary()
    demand = network_demand(page_end(summary["window_end"], page_queries.last_activity()))
    context = {
        "nav": "network",
        "summary": summary,
        "demand": demand,
        "live_streams": [NETWORK_STREAM],
        "figures": demand.figures,
        "figure_ids": list(demand.figures),
    }
    return render(request, "leaderboard/network.html", context)


@require_GET
def quality(request: HttpRequest) -> HttpResponse:
    hours = request.GET.get("hours", "24")
    span = timedelta(hours=int(hours)) if hours.isdigit() and 0 < int(hours) <= 168 else timedelta(hours=24)
    end = timezone.now()
    data = sla.quality(end - span, end)
    return render(
        request,
        "leaderboard/quality.html",
        {"nav": "quality", "q": data, "hours": span // timedelta(hours=1)},
    )


@lru_cache(maxsize=4)
def _render_markdown(path: str, mtime: float) -> str:
    text = Path(path).read_text(encoding="utf-8")
    return markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])


def metrics_html() -> str:
    """docs/metrics.md — the same page the code and tests follow — rendered to HTML."""
    if not METRICS_DOC.is_file():
        raise Http404("docs/metrics.md is missing")
    return _render_markdown(str(METRICS_DOC), METRICS_DOC.stat().st_mtime)


def scoring_in_force() -> dict[str, Any] | None:
    """The scoring version of the newest stored scores, with one of them as a worked example."""
    for period in ("24h", "1h"):
        window_end = sla.latest_window_end(period)
        if window_end is None:
            continue
        ranked = sla.ranked_scores(period, window_end, None, None)
        if ranked:
            example = ranked[0]
            return {
                "version": max(s.version for s in ranked),
                "period": period,
                "window_end": window_end,
                "example": example,
            }
    return None


@require_GET
def methodology(request: HttpRequest) -> HttpResponse:
    context = {
        "nav": "methodology",
        "metrics_html": metrics_html(),
        "scoring": scoring_in_force(),
    }
    return render(request, "leaderboard/methodology.html", context)


# ---------------------------------------------------------------------------------------------------------
# Live snapshots
# ---------------------------------------------------------------------------------------------------------

LIVE_FIELDS = (
    "rank",
    "score",
    "latency",
    "reliability",
    "performance",
    "fps",
    "jitter",
    "p2ff_p95_ms",
    "success",
    "success_lo",
    "success_hi",
    "swap_rate",
    "sessions",
)


def live_snapshot(kind: str, parts: tuple[str, ...]) -> dict[str, dict[str, float | int | None]]:
    """The numbers a stream's subscribers see, keyed by row; the broadcast task sends what changed."""
    if kind == "leaderboard":
        workflow, region, window = parts
        data = board(Choice(workflow, region, window, "rank", "asc"))
        return {
            r["live_key"]: {
                **{f: r[f] for f in LIVE_FIELDS},
                "sufficient": 1 if r["sufficient"] else 0,
            }
            for r in data.rows
        }
    if kind == "orchestrator":
        (address,) = parts
        o = orchestrator_data(address, "24h")
        out: dict[str, dict[str, float | int | None]] = {}
        if o.latest:
            best = max(o.latest, key=lambda r: r["sessions"])
            out["summary"] = {f: best[f] for f in LIVE_FIELDS if f != "rank"}
        for fig_id, fig in o.figures.items():
            for i, trace in enumerate(fig["data"]):
                if trace["x"]:
                    t = datetime.fromisoformat(trace["x"][-1])
                    out[f"point:{fig_id}:{i}"] = {"t": int(t.timestamp() * 1000), "y": trace["y"][-1]}
        return out
    if kind == "network":
        s = network_summary()
        d = network_demand(page_end(s["window_end"], page_queries.last_activity()))
        summary: dict[str, float | int | None] = {k: v for k, v in s.items() if isinstance(v, int | float)}
        summary.update(
            active_orchestrators=d.active_orchestrators,
            streams=d.totals["streams"],
            inference_minutes=d.totals["minutes"],
            missing_capacity=d.totals["missing"],
            fees_eth=d.totals["fees"],
        )
        return {"summary": summary}
    raise ValueError(kind)
