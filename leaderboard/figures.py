"""Plotly figure specifications as plain dicts (``{"data": [...], "layout": {...}}``).

Built without importing ``plotly.graph_objects`` (slow to import and to validate) so that a page renders in
milliseconds; the browser draws them with the plotly.min.js of the installed plotly package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sla.queries import StoredScore
from sla.rollups import Latency, ReliabilityPoint

Figure = dict[str, Any]
Point = tuple[datetime, float | None]

_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 56, "r": 16, "t": 40, "b": 40},
    "hovermode": "x unified",
    "legend": {"orientation": "h", "y": -0.2},
    "autosize": True,
}


def _layout(title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    layout = dict(_BASE_LAYOUT)
    layout["title"] = {"text": title, "font": {"size": 14}}
    layout["yaxis"] = {"title": {"text": y_title}, "rangemode": "tozero"}
    layout["xaxis"] = {"type": "date"}
    layout.update(extra)
    return layout


def time_series(
    title: str,
    y_title: str,
    series: Sequence[tuple[str, Sequence[Point]]],
    unit: str = "",
    mode: str = "lines+markers",
) -> Figure:
    """One line per named series; ``unit`` is shown in the hover text."""
    data = [
        {
            "type": "scatter",
            "mode": mode,
            "name": name,
            "x": [t.isoformat() for t, _ in points],
            "y": [v for _, v in points],
            "hovertemplate": "%{y:.4g}" + (f" {unit}" if unit else "") + "<extra>" + name + "</extra>",
            "connectgaps": False,
        }
        for name, points in series
    ]
    return {"data": data, "layout": _layout(title, y_title)}


def heatmap(
    title: str, x: Sequence[str], y: Sequence[str], z: Sequence[Sequence[float | None]], unit: str
) -> Figure:
    return {
        "data": [
            {
                "type": "heatmap",
                "x": list(x),
                "y": list(y),
                "z": [list(row) for row in z],
                "colorscale": "Viridis",
                "hovertemplate": "%{y} × %{x}: %{z:.4g} " + unit + "<extra></extra>",
                "colorbar": {"title": {"text": unit}},
            }
        ],
        "layout": {
            **_BASE_LAYOUT,
            "title": {"text": title, "font": {"size": 14}},
            "hovermode": "closest",
            "margin": {"l": 110, "r": 16, "t": 40, "b": 90},
        },
    }


# --- the orchestrator page ---------------------------------------------------------------------------------


def _per_workflow(
    scores: Sequence[StoredScore], value: Callable[[StoredScore], float | None]
) -> list[tuple[str, list[Point]]]:
    by_workflow: dict[str, list[StoredScore]] = {}
    for s in scores:
        by_workflow.setdefault(s.workflow, []).append(s)
    return [(wf, [(s.window_end, value(s)) for s in pts]) for wf, pts in sorted(by_workflow.items())]


def _percentiles(points: Sequence[tuple[datetime, Latency]]) -> list[tuple[str, list[Point]]]:
    return [
        ("p50", [(t, lat.p50) for t, lat in points]),
        ("p95", [(t, lat.p95) for t, lat in points]),
        ("p99", [(t, lat.p99) for t, lat in points]),
    ]


def orchestrator_figures(
    scores: Sequence[StoredScore],
    reliability: Sequence[ReliabilityPoint],
    row: Callable[[StoredScore], dict[str, Any]],
) -> dict[str, Figure]:
    """Score, FPS and jitter per workflow from the stored scores (x = window end); latency percentiles,
    success and swap rate of all workflows together from the hourly reliability rollup (x = bucket start)."""
    rel = [p for p in reliability if p.bucket is not None]

    def per_bucket(value: Callable[[ReliabilityPoint], float | None]) -> list[Point]:
        return [(p.bucket, value(p)) for p in rel if p.bucket is not None]

    return {
        "fig-score": time_series("SLA score", "score (0–100)", _per_workflow(scores, lambda s: s.score)),
        "fig-fps": time_series("Output FPS", "fps", _per_workflow(scores, lambda s: row(s)["fps"]), "fps"),
        "fig-jitter": time_series(
            "Jitter (σ/μ of FPS)", "ratio", _per_workflow(scores, lambda s: row(s)["jitter"])
        ),
        "fig-p2ff": time_series(
            "Prompt-to-first-frame latency",
            "ms",
            _percentiles([(p.bucket, p.p2ff_ms) for p in rel if p.bucket is not None]),
            "ms",
        ),
        "fig-e2e": time_series(
            "End-to-end latency",
            "ms",
            _percentiles([(p.bucket, p.e2e_ms) for p in rel if p.bucket is not None]),
            "ms",
        ),
        "fig-success": time_series(
            "Success per hour",
            "ratio",
            [
                ("effective success", per_bucket(lambda p: p.effective_success.value)),
                ("startup success", per_bucket(lambda p: p.startup_success.value)),
            ],
        ),
        "fig-swap": time_series(
            "Swap rate per hour", "swaps per stream", [("swap rate", per_bucket(lambda p: p.swap_rate))]
        ),
    }
