from django.apps import AppConfig


class SlaConfig(AppConfig):
    name = "sla"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from sla.http import drop_cached_responses
        from sla.signals import refresh_completed

        refresh_completed.connect(drop_cached_responses, dispatch_uid="sla-drop-cached-responses")
