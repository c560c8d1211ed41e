from __future__ import annotations

from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path

from naap_site.api import api


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns: list[URLPattern | URLResolver] = [
    path("v1/", api.urls),
    path("healthz", healthz),
    path("admin/", admin.site.urls),
    path("", include("leaderboard.signin_urls")),
    path("", include("leaderboard.personal_urls")),
    path("", include("leaderboard.urls")),
]
