from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from leaderboard import embed, views

app_name = "leaderboard"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.leaderboard, name="leaderboard"),
    path("orchestrators/<str:identifier>", views.orchestrator, name="orchestrator"),
    path("network", views.network, name="network"),
    path("methodology", views.methodology, name="methodology"),
    path("quality", views.quality, name="quality"),
    path("embed/leaderboard", embed.leaderboard, name="embed-leaderboard"),
    path("embed/orchestrators/<str:identifier>", embed.orchestrator, name="embed-orchestrator"),
    path("embed/network", embed.network, name="embed-network"),
]
