"""SessionM in the admin: each member's SessionM profile and wallet offers on the member page, the eligible
campaigns on demand (for support staff), sending a member's profile now, and read-only lists of offers,
profiles (forget requests included) and relayed transactions — scoped to the user's clients."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from integrations.admin.base import ClientFilter, ReadOnlyAdmin, VendorAdmin, first_few, run_for_each
from integrations.sessionm import flows as sessionm
from integrations.sessionm.models import SessionMOffer, SessionMProfile, SessionMTransaction
from members.models import Member


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class SessionMProfileInline(ReadOnlyInline):
    model = SessionMProfile
    verbose_name = "SessionM profile"
    fields = ["external_id", "user_id", "created_at"]
    readonly_fields = fields


class SessionMOfferInline(ReadOnlyInline):
    model = SessionMOffer
    verbose_name = "SessionM offer"
    fields = ["name", "description", "redemption_end_date", "redeemed", "first_seen", "issued_event", "expiring_event"]
    readonly_fields = fields


@admin.action(description="Show eligible SessionM campaigns", permissions=["view"])
def show_campaigns(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "looked up")
    run_for_each(model_admin, request, members, sessionm.eligible_campaigns)


@admin.action(description="Send to SessionM now", permissions=["change"])
def sync_to_sessionm(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "sent")
    run_for_each(model_admin, request, members, sessionm.sync_profile)


@admin.register(SessionMOffer)
class SessionMOfferAdmin(ReadOnlyAdmin):
    list_display = ["name", "member", "client", "redemption_end_date", "redeemed", "first_seen", "issued_event"]
    list_filter = [ClientFilter, "redeemed"]
    search_fields = ["name", "offer_id", "member__phone", "member__email"]
    list_select_related = ["member", "client", "issued_event"]


@admin.register(SessionMProfile)
class SessionMProfileAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "user_id", "member", "client", "forget_requested_at", "forgotten_at", "detail"]
    list_filter = [ClientFilter]
    search_fields = ["external_id", "user_id"]
    list_select_related = ["member", "client"]


@admin.register(SessionMTransaction)
class SessionMTransactionAdmin(ReadOnlyAdmin):
    list_display = ["request_id", "member", "client", "status", "detail", "created_at"]
    list_filter = [ClientFilter, "status"]
    search_fields = ["request_id", "member__phone", "member__email"]
    list_select_related = ["member", "client"]


ADMIN = VendorAdmin(
    member_actions=(show_campaigns, sync_to_sessionm),
    member_inlines=(SessionMProfileInline, SessionMOfferInline),
)
