"""Django admin for access control: admins keep the allow/block list and read the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from telemetry.access.services import DelegationRefused, revoke_delegation
from telemetry.access_models import AccessAuditLog, AccessListEntry, Delegation, PublisherGrant


@admin.register(AccessListEntry)
class AccessListEntryAdmin(admin.ModelAdmin):
    list_display = ("address", "kind", "note", "created_at", "created_by")
    list_filter = ("kind",)
    search_fields = ("address", "note")
    fields = ("address", "kind", "note")

    def save_model(self, request: HttpRequest, obj: AccessListEntry, form: Any, change: bool) -> None:
        obj.address = obj.address.lower()
        if not change:
            obj.created_at = timezone.now()
            obj.created_by = f"admin:{request.user.get_username()}"
        super().save_model(request, obj, form, change)
        AccessAuditLog.objects.create(
            at=timezone.now(), action=obj.kind, address=obj.address, actor=obj.created_by, detail=obj.note
        )


@admin.register(Delegation)
class DelegationAdmin(admin.ModelAdmin):
    list_display = ("delegate", "orchestrator", "valid_until", "created_at", "revoked_at", "revoked_by")
    search_fields = ("delegate", "orchestrator")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # delegations are signed by orchestrators, not typed in

    def has_change_permission(self, request: HttpRequest, obj: Delegation | None = None) -> bool:
        return False

    @admin.action(description="Revoke the selected delegations")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Delegation]) -> None:
        for delegation in queryset.filter(revoked_at__isnull=True):
            try:
                revoke_delegation(delegation.pk, timezone.now(), admin=request.user.get_username())
            except DelegationRefused as refused:
                self.message_user(request, refused.detail)


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


@admin.register(PublisherGrant)
class PublisherGrantAdmin(_ReadOnly):
    list_display = ("address", "role", "orchestrator", "valid_from", "expires_at", "granted_at", "revoked_at")
    list_filter = ("role", "backend")
    search_fields = ("address", "orchestrator")


@admin.register(AccessAuditLog)
class AccessAuditLogAdmin(_ReadOnly):
    list_display = ("at", "action", "address", "orchestrator", "actor", "detail")
    list_filter = ("action",)
    search_fields = ("address", "orchestrator", "actor")
