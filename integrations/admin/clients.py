"""Clients: who belongs to them, their connections at a glance, and the vendors' set-up pages (site admins)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse

from integrations.admin.base import AuditedAdmin, ClientScopedAdmin, collected
from integrations.models import Client, Connection
from integrations.tenancy import is_site_admin


def client_page_url(name: str, client_id: str) -> str:
    return reverse(f"admin:integrations_client_{name}", args=[client_id])


class ConnectionInline(admin.TabularInline):
    """The client's connections at a glance; each links to its own page (secrets are never shown here)."""

    model = Connection
    extra = 0
    can_delete = False
    show_change_link = True
    fields = readonly_fields = ("vendor", "environment", "status", "last_checked_at", "last_check_result")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        return super().get_queryset(request).defer("secrets")


@admin.register(Client)
class ClientAdmin(AuditedAdmin, ClientScopedAdmin):
    change_form_template = "admin/integrations/client/change_form.html"
    inlines = [ConnectionInline]
    client_path = ""
    list_display = ["name", "slug", "site_id", "default_region", "active", "connection_summary"]
    list_filter = ["active"]
    search_fields = ["name", "slug", "site_id"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["users"]

    def get_inlines(self, request: HttpRequest, obj: Client | None) -> list[Any]:
        return [*self.inlines, *collected("client_inlines")]

    def get_readonly_fields(self, request: HttpRequest, obj: Client | None = None) -> list[str]:
        # Client users may look at their client; only site admins change who belongs to it or switch it off.
        return [] if is_site_admin(request.user) else ["slug", "active", "users"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return is_site_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Client | None = None) -> bool:
        return is_site_admin(request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Client]:
        return super().get_queryset(request).prefetch_related("connections")

    @admin.display(description="connections")
    def connection_summary(self, client: Client) -> str:
        return ", ".join(f"{c.spec.label}: {c.status}" for c in client.connections.all()) or "—"

    def get_urls(self) -> list[Any]:
        """Each vendor's client pages (e.g. Attentive's activation) at <client id>/<page name>/."""
        pages = [
            path(
                f"<int:pk>/{page.name}/",
                self.admin_site.admin_view(partial(page.view, self)),
                name=f"integrations_client_{page.name}",
            )
            for page in collected("client_pages")
        ]
        return [*pages, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        buttons = []
        if is_site_admin(request.user) and object_id.isdigit():
            buttons = [
                {
                    "name": page.name,
                    "label": page.label,
                    "url": client_page_url(page.name, object_id),
                }
                for page in collected("client_pages")
            ]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "vendor_pages": buttons})
