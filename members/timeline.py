"""A member's whole story, newest first: what happened to them at the portal and at each vendor, each entry linked to
its record. Support answers "why didn't she get the SMS?" from it (issue 24).

Each source — the portal's own below, and each vendor's `timeline_entries` (integrations/<vendor>/timeline.py) — is
read with one bounded query (its `PER_SOURCE` newest rows, through the member's foreign key index),
so a member with 100,000 events loads as fast as one with ten; the entries are then merged and sorted. A few
sources are not linked to a member by the portal's records and are read through what is:

- callbacks (WebhookEvent has no member): each vendor that receives them says, as a filter, which set the member's
  states (its timeline module's `member_callbacks`, e.g. Vibes' by the event ids its list subscriptions keep).
- vendor calls (VendorCall has no member, and its URL is not indexed): the calls of each vendor's last attempt to
  bring the member in line (their ids noted on the member's vendor state by members/sync.py), and the call behind a
  held, uncertain or failed message, on the message's connection around its attempt (index `connection,
  -created_at`).
- changes: the admin's log of the member's page (who, when, which fields), and every other change's record
  (MemberChange: by the API's token, an import, a vendor's callback, a job; members/changes.py).
- First Orion pushes: through the members each batch was planned for (PushRecipient, indexed by member), not by
  reading the batches' destinations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, Q
from django.urls import NoReverseMatch, reverse
from django.utils.text import get_text_list

from integrations.hooks import AddsToTimeline, FindsMemberCallbacks, hooks
from integrations.http import EXPECTED_KINDS
from integrations.models import Connection, VendorCall, WebhookEvent
from integrations.vendors import VENDORS
from members import changes
from members.models import (
    ChannelSubscription,
    LoyaltyEvent,
    Member,
    MemberAction,
    MemberChange,
    MemberVendorState,
    OutboundMessage,
)

# The newest rows read per source: the page stays fast however long the member's history.
PER_SOURCE = 50
# Messages whose vendor call is looked up (one indexed query each): the newest held, uncertain or failed ones.
CALLS_LOOKED_UP = 10


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Entry:
    """One thing that happened to the member: when, what kind, at which vendor, what it says, and its record."""

    at: datetime
    # joined, change, event, vendor, action, subscription, callback, message, points, offer, transaction, review, push
    kind: str
    vendor: str  # the vendor's label, empty for the portal's own
    title: str
    status: str = ""
    detail: str = ""
    url: str = ""
    related: tuple[Link, ...] = field(default_factory=tuple)


def vendor_label(key: str) -> str:
    return VENDORS[key].label if key in VENDORS else key


def admin_url(record: Model) -> str:
    """The record's admin page ("" when its model has none)."""
    opts = record._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return ""


def timeline(member: Member, per_source: int = PER_SOURCE) -> list[Entry]:
    """Everything recorded about the member, newest first (ties keep the sources' order)."""
    sources: list[Callable[[Member, int], Iterable[Entry]]] = [
        joined,
        admin_changes,
        other_changes,
        loyalty_events,
        vendor_states,
        vendor_actions,
        subscriptions,
        callbacks,
        messages,
        # Then each vendor's own records (its timeline module), in registry order.
        *(vendor.timeline_entries for vendor in hooks(AddsToTimeline).values()),
    ]
    entries = [entry for source in sources for entry in source(member, per_source)]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


def joined(member: Member, _: int) -> Iterator[Entry]:
    how = f"Found through {member.found_through}" if member.found_through else "Joined the program"
    yield Entry(member.created_at, "joined", "", how, url=admin_url(member))


def admin_changes(member: Member, limit: int) -> Iterator[Entry]:
    """The member's page in the admin logs who added or changed the member and which fields."""
    content_type = ContentType.objects.get_for_model(Member)
    log = LogEntry.objects.filter(content_type=content_type, object_id=str(member.pk)).select_related("user")
    for entry in log.order_by("-action_time")[:limit]:
        verb = {1: "Added", 2: "Changed", 3: "Deleted"}.get(entry.action_flag, "Edited")
        who = entry.user.get_username() if entry.user else "someone"
        yield Entry(
            entry.action_time,
            "change",
            "",
            f"{verb} by {who} in the admin",
            detail=entry.get_change_message() if entry.action_flag == 2 else "",
            url=admin_url(member),
        )


def other_changes(member: Member, limit: int) -> Iterator[Entry]:
    """Changes made other than on the member's admin page: who made them (a token, an import, a callback, a job)."""
    for change in MemberChange.objects.filter(member=member).order_by("-changed_at")[:limit]:
        title, detail = f"Changed by {change.by}", field_names(change.fields)
        yield Entry(change.changed_at, "change", "", title, detail=detail, url=source_url(change.source))


def source_url(source: str) -> str:
    """The admin page of the record a change came from ("" when it names none, or its model has no page there); a
    background import is listed on the import page."""
    if (named := changes.referenced(source)) is None:
        return ""
    app_label, model_name, pk = named
    if (app_label, model_name) == ("members", "memberimport"):
        return reverse("admin:members_member_import")
    try:
        return reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    except NoReverseMatch:
        return ""


def field_names(stored: str) -> str:
    """ "email, opted_in" as the admin names them: "Changed e-mail and SMS opt-in"."""
    names = []
    for name in filter(None, stored.split(", ")):
        try:
            names.append(str(getattr(Member._meta.get_field(name), "verbose_name", name)))
        except FieldDoesNotExist:  # a field since removed
            names.append(name)
    return f"Changed {get_text_list(names, 'and')}." if names else ""


def loyalty_events(member: Member, limit: int) -> Iterator[Entry]:
    for event in LoyaltyEvent.objects.filter(member=member).order_by("-occurred_at")[:limit]:
        yield Entry(
            event.occurred_at,
            "event",
            "",
            event.get_event_type_display(),
            detail=f"Event {event.external_id}",
            url=admin_url(event),
        )


def vendor_states(member: Member, _: int) -> Iterator[Entry]:
    """Where each vendor stands with the member (one row per vendor), with the calls its last attempt made."""
    states = list(MemberVendorState.objects.filter(member=member).order_by("vendor"))
    calls = calls_by_id([pk for state in states for pk in state.last_call_ids], member.client_id)
    for state in states:
        made = [calls[pk] for pk in state.last_call_ids if pk in calls]  # the log keeps calls for a while only
        yield Entry(
            state.confirmed_at or state.changed_at,
            "vendor",
            vendor_label(state.vendor),
            f"Member at {vendor_label(state.vendor)}",
            status=state.get_status_display(),
            detail=state.detail,
            url=admin_url(state),
            related=tuple(Link(f"Vendor call: {call}", admin_url(call)) for call in made),
        )


def vendor_actions(member: Member, limit: int) -> Iterator[Entry]:
    """One-off actions at a vendor (an eligibility check, a refresh, a points adjustment), with the calls they made."""
    actions = list(MemberAction.objects.filter(member=member).order_by("-done_at")[:limit])
    calls = calls_by_id([pk for action in actions for pk in action.call_ids], member.client_id)
    for action in actions:
        made = [calls[pk] for pk in action.call_ids if pk in calls]
        yield Entry(
            action.done_at,
            "action",
            vendor_label(action.vendor),
            action.action,
            status=action.get_result_display(),
            detail=action.said,
            related=tuple(Link(f"Vendor call: {call}", admin_url(call)) for call in made),
        )


def calls_by_id(ids: list[int], client_id: int) -> dict[int, VendorCall]:
    """The vendor calls with these ids that the call log still keeps, of the member's client's connections (one
    query: on PostgreSQL an id is found through the log's BRIN index)."""
    if not ids:
        return {}
    found = VendorCall.objects.filter(pk__in=ids, connection__client_id=client_id).defer(
        "request_headers", "request_body", "response_body"
    )
    return {call.pk: call for call in found}


def subscriptions(member: Member, limit: int) -> Iterator[Entry]:
    # Shown on the member's page (an inline): the link goes there.
    for row in ChannelSubscription.objects.filter(member=member).order_by("-updated_at")[:limit]:
        yield Entry(
            row.updated_at,
            "subscription",
            vendor_label(row.vendor),
            f"{row.type} {row.channel}",
            status=row.get_state_display().lower(),
            detail=row.last_result,
            url=admin_url(member),
        )


def callbacks(member: Member, limit: int) -> Iterator[Entry]:
    """The callbacks that set the member's subscription states (the only callbacks the portal links to a member)."""
    found = Q(pk__in=[])
    for vendor in hooks(FindsMemberCallbacks).values():
        found |= vendor.member_callbacks(member, limit)
    client_connections = Connection.objects.filter(client_id=member.client_id).values("pk")
    events = WebhookEvent.objects.filter(found, connection__in=client_connections).select_related("connection")
    for event in events.order_by("-received_at")[:limit]:
        yield Entry(
            event.received_at,
            "callback",
            vendor_label(event.connection.vendor),
            f"Callback {event.event_type or 'delivery'}",
            status=event.get_status_display().lower(),
            detail=event.error,
            url=admin_url(event),
        )


def messages(member: Member, limit: int) -> Iterator[Entry]:
    rows = list(
        OutboundMessage.objects.filter(member=member)
        .select_related("connection", "template")
        .order_by("-created_at")[:limit]
    )
    troubled = [row for row in rows if needs_evidence(row)][:CALLS_LOOKED_UP]
    evidence = {row.pk: call_behind(row) for row in troubled}
    for row in rows:
        call = evidence.get(row.pk)
        related = (Link(f"Vendor call behind it: {call}", admin_url(call)),) if call else ()
        yield Entry(
            row.created_at,
            "message",
            vendor_label(row.connection.vendor),
            f"SMS {row.template.get_event_type_display().lower()} to {row.to or 'no number'}",
            status=message_status(row),
            detail=row.detail or row.body,
            url=admin_url(row),
            related=related,
        )


def message_status(message: OutboundMessage) -> str:
    if message.status == OutboundMessage.Status.PENDING and message.held_since is not None:
        return "held"
    return message.get_status_display().lower()


def needs_evidence(message: OutboundMessage) -> bool:
    Status = OutboundMessage.Status
    held = message.status == Status.PENDING and message.held_since is not None
    return held or message.status in (Status.UNCERTAIN, Status.FAILED)


def call_behind(message: OutboundMessage) -> VendorCall | None:
    """The vendor call that explains the message: for a held one, the connection's last failed call before it was
    held (e.g. the refused messages token that stopped the run); otherwise the first call of its attempt. A call's
    row is written after its answer, so a call of the attempt is never older than the attempt. An expected answer
    (a look-up's 404, a refused verify probe: `ExpectedAnswer`) carries a 4xx and an error type but did not fail, so
    it is never the evidence."""
    calls = VendorCall.objects.filter(connection_id=message.connection_id)
    if message.attempted_at is not None:
        calls = calls.filter(created_at__gte=message.attempted_at)
    if message.held_since is not None:
        failed = ~Q(error_type="") | Q(status_code__isnull=True) | Q(status_code__gte=300) | Q(status_code__lt=200)
        answered_as_expected = Q(error_type__in=list(EXPECTED_KINDS))
        held_by = (
            calls.filter(failed, ~answered_as_expected, created_at__lte=message.held_since)
            .order_by("-created_at")
            .first()
        )
        if held_by is not None:
            return held_by
    if message.attempted_at is not None:
        return calls.order_by("created_at").first()
    return None
