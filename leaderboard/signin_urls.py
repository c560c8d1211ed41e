from __future__ import annotations

from django.urls import URLPattern, path

from leaderboard import signin_views

urlpatterns: list[URLPattern] = [
    path("login", signin_views.login_page, name="signin-page"),
    path("auth/nonce", signin_views.nonce_view, name="signin-nonce"),
    path("auth/verify", signin_views.verify_view, name="signin-verify"),
    path("auth/logout", signin_views.logout_view, name="signin-logout"),
]
