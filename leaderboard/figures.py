"""Plotly figure specifications as plain dicts (``{"data": [...], "layout": {...}}``).

Built without importing ``plotly.graph_objects`` (slow to import and to validate) so that a page renders in
milliseconds; the browser draws them with the plotly.min.js of the installed plotly package.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

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


def bars(title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> Figure:
    return {
        "data": [
            {
                "type": "bar",
                "x": list(labels),
                "y": list(values),
                "hovertemplate": "%{x}: %{y:.4g} " + unit + "<extra></extra>",
            }
        ],
        "layout": {**_layout(title, unit), "xaxis": {"type": "category"}, "hovermode": "closest"},
    }
