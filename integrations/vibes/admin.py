"""Vibes in the admin: the connection's callback URL, each member's list subscriptions, and sending a member to
Vibes now."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from integrations.admin.base import VendorAdmin, absolute_url, copy_button, first_few, run_for_each
from integrations.models import Connection
from integrations.vibes import flows as vibes
from integrations.vibes.models import VibesListSubscription
from members.models import Member


@admin.display(description="callback URL")
def callback_url(connection: Connection) -> str:
    if not connection.inbound_token:
        return "—"
    url = absolute_url(reverse("vibes-callback", args=[connection.inbound_token]))
    return format_html(
        '<code id="vibes-callback-url">{}</code> {}<div class="help">Give Vibes this whole URL as the callback URL of '
        "your subscription lists.</div>",
        url,
        copy_button("vibes-callback-url"),
    )


class VibesSubscriptionInline(admin.TabularInline):
    model = VibesListSubscription
    extra = 0
    can_delete = False
    verbose_name = "Vibes list subscription"
    fields = readonly_fields = ("list_id", "state", "opt_in_date", "opt_out_date", "opt_out_reason", "last_event_date")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description="Send to Vibes now", permissions=["change"])
def sync_to_vibes(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]) -> None:
    members = first_few(model_admin, request, queryset.select_related("client"), "sent")
    run_for_each(model_admin, request, members, vibes.sync_person)


ADMIN = VendorAdmin(
    connection_fields=(callback_url,),
    member_actions=(sync_to_vibes,),
    member_inlines=(VibesSubscriptionInline,),
)
