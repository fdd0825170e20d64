"""Messaging: per-event message templates and the outbound messages they produced."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from integrations.admin.base import ClientFilter, ClientScopedAdmin
from members.models import PLACEHOLDERS, MessageTemplate, OutboundMessage


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["client", "event_type", "connection", "text", "active"]
        help_texts = {"text": "Placeholders: " + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ClientScopedAdmin):
    form = MessageTemplateForm
    list_display = ["client", "event_type", "connection", "active", "text"]
    list_filter = [ClientFilter, "event_type", "active"]
    list_select_related = ["client", "connection"]


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ClientScopedAdmin):
    client_path = "member__client"
    list_display = ["created_at", "member", "to", "status", "body", "detail", "sent_at"]
    list_filter = ["status", "template__event_type"]
    search_fields = ["to", "body", "member__email"]
    list_select_related = ["member"]
    readonly_fields = [
        "event",
        "template",
        "member",
        "connection",
        "to",
        "body",
        "status",
        "detail",
        "created_at",
        "sent_at",
    ]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Send the selected failed messages again", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        count = queryset.filter(status=OutboundMessage.Status.FAILED).update(
            status=OutboundMessage.Status.PENDING, detail="Resent from the admin.", claim=""
        )
        self.message_user(request, f"{count} message(s) will go out with the next run of the message job.")
