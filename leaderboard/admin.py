from __future__ import annotations

from django.contrib import admin

from leaderboard.models import EnsName, OrchestratorAllowlist


@admin.register(OrchestratorAllowlist)
class OrchestratorAllowlistAdmin(admin.ModelAdmin):
    list_display = ("address", "note", "added_at")
    search_fields = ("address", "note")


@admin.register(EnsName)
class EnsNameAdmin(admin.ModelAdmin):
    list_display = ("address", "name", "verified_at", "expires_at", "error")
    search_fields = ("address", "name")
    readonly_fields = ("address", "name", "verified_at", "checked_at", "expires_at", "error")
