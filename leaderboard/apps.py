from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _broadcast_after_refresh(sender: object, **kwargs: Any) -> None:
    """sla announces committed refreshes (``sla.signals.refresh_completed``); pages push the new numbers."""
    from leaderboard.tasks import broadcast_after_refresh

    broadcast_after_refresh()


class LeaderboardConfig(AppConfig):
    name = "leaderboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # sla never imports leaderboard (one direction): the page side subscribes to sla's signal.
        from sla.signals import refresh_completed

        refresh_completed.connect(_broadcast_after_refresh, dispatch_uid="leaderboard.live_broadcast")
        import leaderboard.tasks  # noqa: F401  (connects alert evaluation to refresh_completed)
        from leaderboard.ens import names_for
        from sla.names import set_name_provider

        set_name_provider(names_for)  # the API's ENS name slot, without sla importing leaderboard
