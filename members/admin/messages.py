"""Messaging: per-event message templates and the outbound messages they produced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import ngettext

from integrations.admin.base import ClientFilter, ClientScopedAdmin, clipped
from integrations.models import Connection
from integrations.tenancy import is_site_admin, scope_to_clients, visible_clients
from integrations.vendors import MESSAGE_VENDORS
from members.models import PLACEHOLDERS, EventType, MessageTemplate, OutboundMessage, cannot_send_sms
from members.phones import numbers_for
from portal.admin_filters import since_filter
from portal.admin_paging import LargeTablePaginator
from portal.admin_replica import ReplicaChangeListMixin
from portal.keyset import KeysetPagingMixin


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["client", "event_type", "connection", "text", "active"]
        help_texts = {
            "connection": "Only connections that can send SMS are offered.",
            "text": "Placeholders: " + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "connection" in self.fields:
            field = cast("forms.ModelChoiceField[Connection]", self.fields["connection"])  # the foreign key's field
            assert field.queryset is not None  # a foreign key's field always has one (scoped to the user's clients)
            field.queryset = self.connection_choices(field.queryset)

    def connection_choices(self, visible: QuerySet[Connection]) -> QuerySet[Connection]:
        """The SMS connections among those the user may see, of the template's client once it has one. A template's
        current connection stays listed even if it cannot send, so that saving it shows why (the model's clean)
        rather than an unexplained blank choice."""
        choices = visible.filter(vendor__in=MESSAGE_VENDORS)
        if self.instance.client_id:
            choices = choices.filter(client_id=self.instance.client_id)
        if self.instance.connection_id:
            choices = choices | visible.filter(pk=self.instance.connection_id)
        return choices


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ClientScopedAdmin):
    form = MessageTemplateForm
    list_display = ["client", "event_type", "connection", "active", "text", "problem"]
    list_filter = [ClientFilter, "event_type", "active"]
    list_select_related = ["client", "connection"]

    @admin.display(description="problem")
    def problem(self, template: MessageTemplate) -> str:
        """Templates saved before connections were checked: their events' messages are skipped with this reason."""
        spec = template.connection.spec
        return "" if spec.sends_messages else cannot_send_sms(spec)


class HeldFilter(admin.SimpleListFilter):
    """Messages waiting on their connection (draft, disabled, failing, throttled): `detail` says why."""

    title = "held"
    parameter_name = "held"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "held (waiting on the connection)"), ("no", "not held")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> QuerySet[OutboundMessage]:
        held = Q(status=OutboundMessage.Status.PENDING, held_since__isnull=False)
        if self.value() == "yes":
            return queryset.filter(held)
        if self.value() == "no":
            return queryset.exclude(held)
        return queryset


class EventTypeFilter(admin.SimpleListFilter):
    """The event type, resolved to its templates' ids (one template per client and event type): the list then reads
    each template's newest messages from (template, created_at) instead of walking the time index past every other
    type's messages. The parameter is Django's own, so links made before still open."""

    title = "event type"
    parameter_name = "template__event_type__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(str(value), str(label)) for value, label in EventType.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> QuerySet[OutboundMessage]:
        if not self.value():
            return queryset
        return queryset.filter(template_id__in=template_ids(MessageTemplate.objects.filter(event_type=self.value())))


def template_ids(templates: QuerySet[MessageTemplate]) -> list[int]:
    """Templates are a small table (one per client and event type): a filter on them becomes `template_id IN (…)`."""
    return list(templates.values_list("pk", flat=True))


def message_state(message: OutboundMessage) -> str:
    status = OutboundMessage.Status
    if message.status == status.PENDING and message.held_since is not None:
        if message.detail.startswith("Held since"):  # the message job writes since when and why
            return message.detail
        since = date_format(localtime(message.held_since), "DATETIME_FORMAT")
        return f"Held since {since}: {message.detail or 'waiting on its connection.'}"
    if message.status == status.PENDING:
        return f"Pending: {message.detail or 'goes out with the next run of the message job.'}"
    if message.status == status.UNCERTAIN:
        if message.detail.startswith("Uncertain:"):  # the message job's own words already say it all
            return message.detail
        return (
            f"Uncertain: {message.detail or 'it may have reached the vendor.'} Check the vendor calls of the attempt; "
            "'Send anyway' only if it did not go out."
        )
    if message.status in (status.FAILED, status.SKIPPED) and message.detail:
        return f"{message.get_status_display().capitalize()}: {message.detail}"
    return message.get_status_display().capitalize()


def message_search(term: str, regions: set[str]) -> Q:
    """What the messages' search box finds, on indexed columns only (a contains-search of the bodies scans the whole
    table): a message's id, or the number it went to however typed (`outboundmessage_to`, E.164 as stored)."""
    found = Q(to=term)
    if numbers := numbers_for(term, regions):
        found |= Q(to__in=numbers)
    return found | Q(pk=int(term)) if term.isdigit() else found


@admin.register(OutboundMessage)
class OutboundMessageAdmin(KeysetPagingMixin, ReplicaChangeListMixin, ClientScopedAdmin):
    paginator = LargeTablePaginator  # never counts the whole table (issue 22)
    show_full_result_count = False
    keyset_field = "created_at"  # newest first, "Older" pages by (created_at, id): portal/keyset.py
    # A client user's scope or an event type: read per template from (template, created_at).
    keyset_partition = "template_id"
    keyset_indexed = ("status",)  # its own index; most messages are sent, the rare statuses are few rows to sort
    # A message's template is its member's client's (messaging picks the event's client's template).
    client_path = "template__client"
    list_display = ["created_at", "short_state", "member_name", "to", "short_body", "sent_at"]
    list_filter = [HeldFilter, "status", EventTypeFilter, since_filter("sent_at", "sent")]
    search_fields = ["=id"]  # shows the box; get_search_results says what it finds
    search_help_text = "A message's id, or the number it went to (e.g. +14045550123 or (404) 555-0123)."
    list_select_related = ["member"]
    fields = readonly_fields = (
        "event",
        "template",
        "member",
        "connection",
        "to",
        "body",
        "state",
        "held_since",
        "evidence",
        "created_at",
        "attempted_at",
        "sent_at",
    )
    # A message is history: its page shows, the actions decide (send anyway, resend). The status and the reason are
    # said once, in words, by `state`: no status input, no second copy of the reason.
    actions = ["resend", "send_anyway"]

    def scope_to_user(self, queryset: QuerySet[OutboundMessage], user: Any) -> QuerySet[OutboundMessage]:
        """A client user's messages are their clients' templates' messages, named by id (no join to the templates):
        the list reads per template, and a page of them is answered by its index, never cut into stretches."""
        if is_site_admin(user):
            return queryset
        return queryset.filter(template_id__in=template_ids(scope_to_clients(MessageTemplate.objects.all(), user)))

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        return lookup == EventTypeFilter.parameter_name or super().lookup_allowed(lookup, value, request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboundMessage], search_term: str
    ) -> tuple[QuerySet[OutboundMessage], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        regions = set(visible_clients(request.user).values_list("default_region", flat=True).distinct()[:20])
        return queryset.filter(message_search(term, regions)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The list's actions need "change"; a message's own page never edits it.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def state(self, message: OutboundMessage) -> str:
        """The status in words, with its reason once: a held message says it is held and why, not a bare "Pending"."""
        words = message_state(message)
        if message.detail and message.detail not in words:
            words = f"{words}: {message.detail}"
        return words

    @admin.display(description="state", ordering="status")
    def short_state(self, message: OutboundMessage) -> str:
        return clipped(message_state(message), 90)

    @admin.display(description="member", ordering="member")
    def member_name(self, message: OutboundMessage) -> str:
        return clipped(str(message.member), 40)

    @admin.display(description="text")
    def short_body(self, message: OutboundMessage) -> str:
        return clipped(message.body, 50)

    @admin.display(description="reason", ordering="detail")
    def reason(self, message: OutboundMessage) -> str:
        """Why it was skipped or failed, or why it is held and since when."""
        return message.detail

    @admin.display(description="vendor calls of the attempt")
    def evidence(self, message: OutboundMessage) -> str:
        """For an uncertain message: the connection's calls around the attempt, to see whether it went out."""
        if message.attempted_at is None:
            return "—"
        window = {
            "connection__id__exact": message.connection_id,
            "created_at__gte": (message.attempted_at - timedelta(seconds=5)).isoformat(),
            "created_at__lt": (message.attempted_at + timedelta(minutes=2)).isoformat(),
        }
        url = f"{reverse('admin:integrations_vendorcall_changelist')}?{urlencode(window)}"
        return format_html('<a href="{}">Calls to the vendor from the attempt on</a>', url)

    @admin.action(description="Send the selected uncertain messages anyway", permissions=["change"])
    def send_anyway(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        """An admin who checked the evidence and found the message did not go out sends it again."""
        count = queryset.filter(status=OutboundMessage.Status.UNCERTAIN).update(
            status=OutboundMessage.Status.PENDING,
            detail=f"Sent anyway by {request.user}, who checked that it had not gone out.",
            claim="",
        )
        self.message_user(
            request,
            f"{count} {ngettext('message', 'messages', count)} will go out with the next run of the message job.",
        )

    @admin.action(description="Send the selected failed messages again", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        count = queryset.filter(status=OutboundMessage.Status.FAILED).update(
            status=OutboundMessage.Status.PENDING, detail="Resent from the admin.", claim=""
        )
        self.message_user(
            request,
            f"{count} {ngettext('message', 'messages', count)} will go out with the next run of the message job.",
        )
