"""Embeds for the Livepeer Explorer: the same data without site chrome, sized for an iframe.

Query options: ``workflow``, ``region``, ``window`` (as on the pages), ``theme`` (light|dark) and
``columns`` (comma-separated leaderboard column keys; unknown keys are ignored). Framing is allowed for the
origins of ``NAAP_EMBED_FRAME_ANCESTORS`` by ``leaderboard.middleware.FramePolicyMiddleware``.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from leaderboard import views
from leaderboard.consumers import NETWORK_STREAM, orchestrator_stream
from sla import page_queries

DEFAULT_COLUMNS = ("rank", "name", "workflow", "score", "fps", "p2ff_p95_ms", "success", "sessions")


def theme_of(request: HttpRequest) -> str:
    return "dark" if request.GET.get("theme") == "dark" else "light"


def columns_of(request: HttpRequest) -> tuple[str, ...]:
    raw = request.GET.get("columns", "")
    wanted = [c.strip() for c in raw.split(",") if c.strip()]
    chosen = tuple(c for c in views.COLUMN_KEYS if c in wanted)
    if not chosen:
        return DEFAULT_COLUMNS
    return chosen if "name" in chosen else ("name", *chosen)


@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    context = views._leaderboard_context(request, columns_of(request))
    context.update(
        theme=theme_of(request),
        link_target="_blank",
        full_page_url=request.build_absolute_uri(
            reverse("leaderboard:leaderboard") + "?" + request.GET.urlencode()
        ),
    )
    return render(request, "leaderboard/embed/leaderboard.html", context)


@require_GET
def orchestrator(request: HttpRequest, identifier: str) -> HttpResponse:
    address = views._address_or_404(identifier)
    history = views._history(request)
    data = views.orchestrator_data(address, history)
    context = {
        "o": data,
        "theme": theme_of(request),
        "figures": data.figures,
        "figure_ids": [f for f in data.figures if f in ("fig-score", "fig-fps", "fig-p2ff", "fig-success")],
        "live_streams": [orchestrator_stream(address)],
        "window_label": f"last {history}",
        "full_page_url": request.build_absolute_uri(reverse("leaderboard:orchestrator", args=[address])),
    }
    return render(request, "leaderboard/embed/orchestrator.html", context)


@require_GET
def network(request: HttpRequest) -> HttpResponse:
    summary = views.network_summary()
    demand = views.network_demand(views.page_end(summary["window_end"], page_queries.last_activity()))
    context = {
        "summary": summary,
        "demand": demand,
        "theme": theme_of(request),
        "figures": demand.figures,
        "figure_ids": ["fig-streams", "fig-heatmap"],
        "live_streams": [NETWORK_STREAM],
        "window_label": "last 24 hours",
        "full_page_url": request.build_absolute_uri(reverse("leaderboard:network")),
    }
    return render(request, "leaderboard/embed/network.html", context)
