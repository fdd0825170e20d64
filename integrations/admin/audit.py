"""The audit trail in the admin: site admins only, read-only (nobody edits or deletes what was recorded)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from integrations.admin.base import ClientFilter
from integrations.models import AuditEntry
from integrations.tenancy import is_site_admin


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "action", "subject_type", "subject", "summary"]
    list_filter = ["action", "subject_type", ClientFilter]
    search_fields = ["actor_name", "subject", "note"]
    date_hierarchy = "at"
    fields = readonly_fields = (
        "at", "actor_name", "action", "client", "subject_type", "subject", "change_lines", "note",
    )  # fmt: skip

    def has_module_permission(self, request: HttpRequest) -> bool:
        return is_site_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return is_site_admin(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="fields")
    def summary(self, entry: AuditEntry) -> str:
        """The changed fields' names; the entry's page has each change (old and new value, secrets by name)."""
        text = ", ".join(entry.fields) or "—"
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.display(description="changes")
    def change_lines(self, entry: AuditEntry) -> str:
        return format_html_join("", "<div>{}</div>", ((line,) for line in entry.changes)) or "—"
