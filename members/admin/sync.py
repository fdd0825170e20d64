"""Member state at each vendor: the report of what differs (pending, deferred, rejected and why), per member and
vendor, with retrying and checking against the vendor."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from integrations.admin.base import ClientScopedAdmin, clipped
from integrations.vendors import VENDORS
from members import sync
from members.models import MemberVendorState


class VendorStateInline(admin.TabularInline):
    """On a member's page: each vendor's state, and why it is not in step."""

    model = MemberVendorState
    extra = 0
    can_delete = False
    verbose_name = "state at a vendor"
    verbose_name_plural = "state at each vendor"
    fields = readonly_fields = ("vendor_label", "status", "detail", "changed_at", "confirmed_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="vendor")
    def vendor_label(self, state: MemberVendorState) -> str:
        return VENDORS[state.vendor].label if state.vendor in VENDORS else state.vendor


class DiffersFilter(admin.SimpleListFilter):
    title = "in step"
    parameter_name = "differs"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "differs from the portal"), ("no", "in step")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(desired_version__gt=F("synced_version"))
        if self.value() == "no":
            return queryset.filter(desired_version=F("synced_version"))
        return queryset


@admin.register(MemberVendorState)
class MemberVendorStateAdmin(ClientScopedAdmin):
    client_path = "member__client"
    list_display = ["member_name", "vendor_label", "status", "short_detail", "changed_at", "confirmed_at"]
    list_filter = [DiffersFilter, "status", "vendor"]
    list_select_related = ["member__client"]
    search_fields = ["member__email", "member__phone", "detail"]
    readonly_fields = [
        "member", "vendor", "status", "detail", "desired_version", "synced_version", "confirmed", "attempts",
        "next_attempt_at", "changed_at", "confirmed_at",
    ]  # fmt: skip
    actions = ["retry", "check_with_vendor"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="member", ordering="member")
    def member_name(self, state: MemberVendorState) -> str:
        return clipped(str(state.member), 40)

    @admin.display(description="detail", ordering="detail")
    def short_detail(self, state: MemberVendorState) -> str:
        return clipped(state.detail, 80)

    @admin.display(description="vendor", ordering="vendor")
    def vendor_label(self, state: MemberVendorState) -> str:
        return VENDORS[state.vendor].label

    @admin.action(description="Send the selected changes again now", permissions=["view"])
    def retry(self, request: HttpRequest, queryset: QuerySet[MemberVendorState]) -> None:
        count = sync.retry_rejected(queryset)
        changes = ngettext("change", "changes", count)
        self.message_user(request, f"{count} {changes} queued; their state updates here as they go out.")

    @admin.action(description="Check the selected members with the vendor (read only)", permissions=["view"])
    def check_with_vendor(self, request: HttpRequest, queryset: QuerySet[MemberVendorState]) -> None:
        for state in queryset.select_related("member__client")[:20]:
            found = sync.vendor_disagrees(state) if state.in_step else None
            reason = found.reason if found else (sync.drift_reason(state) if not state.in_step else "in step")
            level = messages.WARNING if found or not state.in_step else messages.SUCCESS
            self.message_user(request, f"{state.member} at {VENDORS[state.vendor].label}: {reason}", level)
