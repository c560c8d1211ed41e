from __future__ import annotations

from django.urls import URLPattern, path

from leaderboard import exports, personal_views

urlpatterns: list[URLPattern] = [
    path("me", personal_views.me, name="me"),
    path("me/alerts", personal_views.alert_create, name="me-alert-create"),
    path("me/alerts/<int:alert_id>/test", personal_views.alert_test, name="me-alert-test"),
    path("me/alerts/<int:alert_id>/delete", personal_views.alert_delete, name="me-alert-delete"),
    path("me/tokens", personal_views.token_create, name="me-token-create"),
    path("me/tokens/<int:token_id>/revoke", personal_views.token_revoke, name="me-token-revoke"),
    path("me/delegations", personal_views.delegation_submit, name="me-delegation-submit"),
    path("me/delegations/typed-data", personal_views.delegation_typed_data, name="me-delegation-typed-data"),
    path(
        "me/delegations/<int:delegation_id>/revocation",
        personal_views.delegation_revocation_typed_data,
        name="me-delegation-revocation",
    ),
    path(
        "me/delegations/<int:delegation_id>/revoke",
        personal_views.delegation_revoke,
        name="me-delegation-revoke",
    ),
    path("me/export/<str:kind>.<str:fmt>", exports.export, name="me-export"),
]
