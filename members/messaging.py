"""Loyalty-action messages: turn pending loyalty events into outbound messages (one per event and template) and
send them through the template's connection, with the sender its vendor's flows provide (`message_sender`).

Safe to run twice at once and safe to kill: messages are created with a unique (event, template), each run claims
the few messages it is about to send with an atomic UPDATE carrying its own token, and each message's state is
recorded before each step (see OutboundMessage): a crash before the request returns a claimed message to pending,
a crash after it makes the message uncertain, never sent again automatically.

Nothing waits silently: a message that can never go out (its template's connection cannot send SMS, or it would
state a balance the portal does not know) is skipped with the reason, and one waiting on its connection (draft,
disabled, or a run stopped by a refused token, throttling or an outage) is held: `held_since` and the reason.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import ngettext

from integrations import rollups
from integrations.alerts import alert
from integrations.connections import USABLE_STATUSES, usable
from integrations.hooks import SendsMessages, hook
from integrations.http import AuthError, RateLimited, Unavailable, VendorError
from integrations.models import Connection
from integrations.vendors import MESSAGE_VENDORS, VENDORS
from members.models import (
    LoyaltyEvent,
    Member,
    MessageTemplate,
    OutboundMessage,
    cannot_send_sms,
    is_whole_number,
    template_placeholders,
)
from members.templates_text import render_text


class MessageSender(Protocol):
    """What a vendor that sends messages provides (its flows' `message_sender(connection)`)."""

    unreachable_reason: str

    def reachable(self, member_ids: Iterable[int]) -> set[int]:
        """The members this vendor may send to (e.g. subscribed to TEXT)."""
        ...

    def send(self, to: str, body: str, leaving: Callable[[], None]) -> None:
        """Send one message; raises VendorError. `leaving` is called once the rate limit lets the message go, just
        before it leaves (it records that, or raises when the message was taken back: then nothing is sent)."""
        ...


def message_sender(connection: Connection) -> MessageSender:
    flows = hook(connection.spec, SendsMessages)
    if flows is None:  # the start-up check fails on a vendor that sends_messages without a sender
        raise LookupError(f"{connection.spec.label} does not send messages.")
    return flows.message_sender(connection)


Status = OutboundMessage.Status
# A run claims only what it is about to send: a batch per round of its send threads.
CLAIM_BATCH = 16
# Transient errors in a row after which the run stops and leaves the rest held until the next run.
MAX_TRANSIENT_IN_A_ROW = 8


# Placeholders whose value the portal may not know for a member. A message that would state an unknown one is not
# sent ("Balance: 0" to a member with 1,250 points is worse than no message).
UNKNOWN_VALUE_REASONS = {
    "points_balance": "The template states the balance, which the portal does not know for this member: send the "
    "balance in the event's data or refresh the member from Annex Cloud.",
    "tier": "The template states the tier, which the portal does not know for this member: send the tier in the "
    "event's data or refresh the member from Annex Cloud.",
}


@dataclass(frozen=True)
class Rendering:
    body: str
    # Why the message must not be sent ('' when it may): a value it states is unknown.
    unknown: str = ""


def known_balance(event: LoyaltyEvent) -> int | None:
    """The event's own balance wins (it is the balance as of this event); else the member's, but only if it was read
    from Annex Cloud: `points` of a member never refreshed is a default, not a balance."""
    for key in ("balance", "points_balance"):
        if is_whole_number(value := event.data.get(key)):
            return value
    return event.member.points if event.member.points_synced_at else None


def known_tier(event: LoyaltyEvent) -> str | None:
    return event.data.get("tier") or event.member.tier or None


def render(template: MessageTemplate, event: LoyaltyEvent) -> Rendering:
    member, data = event.member, event.data
    values = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "points": data.get("points", ""),
        "points_balance": known_balance(event),
        "tier": known_tier(event),
        "reward": data.get("reward", ""),
        "offer_name": data.get("offer_name", ""),
        "expires_on": data.get("expires_on", ""),
        "offer_description": data.get("offer_description", ""),
        "client_name": event.client.name,
    }
    used = template_placeholders(template.text)
    unknown = [name for name in UNKNOWN_VALUE_REASONS if name in used and values[name] is None]
    # An unknown value stays as its placeholder, so the stored body shows what was missing.
    values.update({name: f"{{{name}}}" for name in unknown})
    reasons = " ".join(UNKNOWN_VALUE_REASONS[name] for name in unknown)
    return Rendering(render_text(template.text, values), reasons)


def plan_messages(batch_size: int = 1000, client_id: int | None = None) -> Counter[str]:
    """Create the outbound messages of events not yet planned (of one client, if given). Re-running creates nothing
    twice."""
    counts: Counter[str] = Counter()
    while events := unplanned_events(batch_size, client_id):
        templates = active_templates(events)
        messages = [
            plan_message(event, template)
            for event in events
            if (template := templates.get((event.client_id, event.event_type)))
        ]
        OutboundMessage.objects.bulk_create(messages, ignore_conflicts=True)
        LoyaltyEvent.objects.filter(pk__in=[e.pk for e in events]).update(messages_planned_at=timezone.now())
        counts["planned"] += len(messages)
        counts["skipped"] += sum(m.status == Status.SKIPPED for m in messages)
    return counts


def unplanned_events(batch_size: int, client_id: int | None = None) -> list[LoyaltyEvent]:
    queryset = LoyaltyEvent.objects.filter(messages_planned_at__isnull=True).select_related("member", "client")
    if client_id is not None:
        queryset = queryset.filter(client_id=client_id)
    return list(queryset.order_by("pk")[:batch_size])


def active_templates(events: list[LoyaltyEvent]) -> dict[tuple[int, str], MessageTemplate]:
    templates = MessageTemplate.objects.filter(active=True, client__in={e.client_id for e in events})
    return {(t.client_id, t.event_type): t for t in templates.select_related("connection").defer("connection__secrets")}


def plan_message(event: LoyaltyEvent, template: MessageTemplate) -> OutboundMessage:
    """The message one event causes through one template: pending, or skipped at once when it could never go out or
    would state what the portal does not know (kept, so the admin sees what happened to the event)."""
    rendering = render(template, event)
    message = OutboundMessage(
        event=event,
        template=template,
        member=event.member,
        connection_id=template.connection_id,
        to=event.member.phone,
        body=rendering.body,
    )
    if reason := skip_reason(template, rendering, event.member):
        message.status, message.detail = Status.SKIPPED, reason
    return message


LOYALTY_OPTED_OUT = "The member opted out of the loyalty program at Annex Cloud: no loyalty messages (SMS opt-in kept)."


def skip_reason(template: MessageTemplate, rendering: Rendering, member: Member) -> str:
    if not template.connection.spec.sends_messages:
        return cannot_send_sms(template.connection.spec)
    if member.loyalty_opted_in is False:
        # A loyalty opt-out is not an SMS opt-out (their consent stays as it is), but these texts are about the
        # loyalty program the member left.
        return LOYALTY_OPTED_OUT
    return rendering.unknown


def skip_unsendable() -> int:
    """Messages planned before templates were checked, on a connection that cannot send: skipped with the reason
    rather than left pending forever (no run would ever claim them)."""
    stuck = OutboundMessage.objects.filter(status=Status.PENDING).exclude(connection__vendor__in=MESSAGE_VENDORS)
    skipped = 0
    for vendor in set(stuck.order_by().values_list("connection__vendor", flat=True)):
        reason = cannot_send_sms(VENDORS[vendor])
        skipped += stuck.filter(connection__vendor=vendor).update(status=Status.SKIPPED, detail=reason)
    return skipped


def settle_interrupted_sends() -> dict[str, int]:
    """What a killed or cut-off run left behind. Claimed messages were never sent: they go back to pending. A
    message left attempting may have reached the vendor: it becomes uncertain, shown with the evidence, never sent
    again by itself (a second SMS is worse than a missing one; an admin can send it anyway)."""
    now = timezone.now()
    returned = OutboundMessage.objects.filter(status=Status.CLAIMED, claimed_at__lt=now - claim_lease()).update(
        status=Status.PENDING, claim=""
    )
    uncertain = OutboundMessage.objects.filter(
        status=Status.ATTEMPTING, attempted_at__lt=now - settings.MESSAGE_ATTEMPT_LEASE
    ).update(status=Status.UNCERTAIN, claim="", held_since=None, detail=INTERRUPTED_DETAIL)
    return {"returned": returned, "interrupted": uncertain}


INTERRUPTED_DETAIL = (
    "Uncertain: the run stopped while sending it, so the vendor may have it. Not resent automatically; check the "
    "vendor calls of that minute and use “Send anyway” if it did not go out."
)


def claim_lease() -> timedelta:
    """A run holds its claimed messages at most for its time budget; past that, the run is gone."""
    return timedelta(seconds=settings.MESSAGE_RUN_SECONDS + 10)


def claim_batch(connection: Connection, size: int = CLAIM_BATCH) -> list[OutboundMessage]:
    """Claim the next few pending messages of a connection for this run (only as many as it is about to send)."""
    token = uuid.uuid4().hex
    candidates = OutboundMessage.objects.filter(connection=connection, status=Status.PENDING).order_by("pk")
    ids = list(candidates.values_list("pk", flat=True)[:size])
    OutboundMessage.objects.filter(pk__in=ids, status=Status.PENDING).update(
        status=Status.CLAIMED, claim=token, claimed_at=timezone.now()
    )
    claimed = OutboundMessage.objects.filter(claim=token, status=Status.CLAIMED).select_related("member")
    return list(claimed.order_by("pk"))


class TakenBack(Exception):
    """A settle after this run's lease took the message back before it left: this run leaves it alone."""


def mark_attempting(message: OutboundMessage) -> None:
    """Recorded as the request leaves, once the rate limit let it go (a retry of a request that never left records
    it again): from here a crash makes the message uncertain, not pending; a kill while waiting for the limit leaves
    it claimed, and the settle puts it back to pending."""
    leaving = OutboundMessage.objects.filter(
        pk=message.pk, claim=message.claim, status__in=[Status.CLAIMED, Status.ATTEMPTING]
    )
    if not leaving.update(status=Status.ATTEMPTING, attempted_at=timezone.now()):
        raise TakenBack


def finish(message: OutboundMessage, status: str, detail: str = "") -> None:
    fields: dict[str, Any] = {"status": status, "detail": detail[:2000], "claim": ""}
    if status == Status.SENT:
        fields["sent_at"] = timezone.now()
    if status != Status.PENDING:
        fields["held_since"] = None  # no longer waiting; a message put back to pending keeps when it was first held

    def write() -> None:
        # The outcome and its rollup in one commit; a message taken back meanwhile (another claim) counts nothing.
        with transaction.atomic():
            if OutboundMessage.objects.filter(pk=message.pk, claim=message.claim).update(**fields):
                rollups.message_settled(message, status)

    record_patiently(write)


def record_patiently(write: Callable[[], Any], patience: float = 30.0) -> None:
    """Record what the vendor answered, waiting out a short database outage: a message the vendor accepted that
    the portal could not record would otherwise end up uncertain."""
    deadline = time.monotonic() + patience
    while True:
        try:
            write()
            return
        except (OperationalError, InterfaceError):
            if time.monotonic() > deadline:
                raise
            connections.close_all()
            time.sleep(1)


class SendRun:
    """One run's sending for one connection: a thread pool within the vendor's rate limit and a time budget.

    A transient error that never reached the vendor (throttled, unavailable, could not connect) puts that message
    back, backs the whole connection off (honouring Retry-After) and the run goes on; a refused token or a budget
    spent stops the run, and what is left waits as held."""

    def __init__(self, connection: Connection, sender: MessageSender) -> None:
        self.connection = connection
        self.sender = sender
        self.counts: Counter[str] = Counter()
        self.stop = threading.Event()
        self.stop_reason: VendorError | None = None
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + settings.MESSAGE_RUN_SECONDS
        self.transient_in_a_row = 0

    def deliver(self, message: OutboundMessage, reachable: bool) -> None:
        status, detail = self._send(message, reachable)
        finish(message, status, detail)
        with self.lock:
            self.counts[status] += 1

    def _send(self, message: OutboundMessage, reachable: bool) -> tuple[str, str]:
        if self.stop.is_set() or time.monotonic() > self.deadline:
            return Status.PENDING, ""
        if not reachable:
            return Status.SKIPPED, self.sender.unreachable_reason
        if not message.to:
            return Status.SKIPPED, "The member has no mobile number."
        try:
            self.sender.send(message.to, message.body, leaving=lambda: mark_attempting(message))
        except TakenBack:
            return Status.PENDING, ""  # finish() matches this run's claim: a message taken back is left alone
        except VendorError as exc:
            return self._outcome_of(exc)
        with self.lock:
            self.transient_in_a_row = 0
        return Status.SENT, ""

    def _outcome_of(self, error: VendorError) -> tuple[str, str]:
        if error.uncertain:
            # The vendor may have sent it: never again by itself, so the member never gets it twice.
            return Status.UNCERTAIN, f"Uncertain: {error.for_admin} It may have been delivered; not resent."
        if isinstance(error, AuthError):
            self._stop(error)  # every message would be refused the same way
            return Status.PENDING, ""
        if isinstance(error, RateLimited | Unavailable):
            self._back_off(error)
            return Status.PENDING, ""
        return Status.FAILED, error.for_admin

    def _back_off(self, error: VendorError) -> None:
        """Pause the connection before the next message: Retry-After if the vendor said, else exponential."""
        with self.lock:
            self.transient_in_a_row += 1
            attempt = self.transient_in_a_row
        delay = getattr(error, "retry_after", None) or min(
            settings.MESSAGE_BACKOFF_CAP_SECONDS, settings.VENDOR_RETRY_BACKOFF_SECONDS * 2**attempt
        )
        if time.monotonic() + delay > self.deadline or attempt > MAX_TRANSIENT_IN_A_ROW:
            self._stop(error)
        else:
            time.sleep(delay)

    def _stop(self, error: VendorError) -> None:
        with self.lock:
            if not self.stop.is_set():
                self.stop_reason = error
                self.stop.set()


def close_pool_connections(pool: ThreadPoolExecutor, workers: int) -> None:
    """Close the database connection each pool thread opened: one task per thread, held at a barrier so that
    every thread takes exactly one."""
    barrier = threading.Barrier(workers)

    def close(_: int) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)
        connections.close_all()

    list(pool.map(close, range(workers)))


def send_pending(connection: Connection, concurrency: int | None = None) -> Counter[str]:
    workers = concurrency or settings.MESSAGE_SEND_CONCURRENCY
    sender = message_sender(connection)
    run = SendRun(connection, sender)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") if workers > 1 else None
    try:
        while not run.stop.is_set() and time.monotonic() < run.deadline:
            batch = claim_batch(connection, max(CLAIM_BATCH, workers))
            if not batch:
                break
            subscribed = sender.reachable(m.member_id for m in batch)
            deliveries = ((m, m.member_id in subscribed) for m in batch)
            if pool is None:
                for message, is_subscribed in deliveries:
                    run.deliver(message, is_subscribed)
            else:
                list(pool.map(lambda pair: run.deliver(*pair), deliveries))
    finally:
        if pool is not None:
            close_pool_connections(pool, workers)
            pool.shutdown()
    # The call log has already counted the stopping error against the connection (a refused token marks it
    # failing with the vendor's instruction, shown on the dashboard).
    if run.stop_reason is not None:
        run.counts["stopped"] = 1
        run.counts["held"] = hold(connection, stopped_because(connection, run.stop_reason))
    run.counts.pop(Status.PENDING, None)
    return run.counts


# --- Held messages: pending ones that wait on their connection, with the reason and since when ------------------


def hold(connection: Connection, reason: str) -> int:
    """Mark the connection's pending messages held: `held_since` is set once (the first time they waited) and the
    detail says why. Only details that do not already state this reason are rewritten, so a connection that stays
    down costs the same few queries each run, however long it has been held."""
    pending = OutboundMessage.objects.filter(connection=connection, status=Status.PENDING)
    pending.filter(held_since__isnull=True).update(held_since=timezone.now())
    reason = reason[:1500]
    outdated = pending.filter(held_since__isnull=False).exclude(detail__endswith=f": {reason}")
    for since in outdated.order_by().values_list("held_since", flat=True).distinct():
        assert since is not None  # outdated has held_since set
        outdated.filter(held_since=since).update(detail=held_detail(since, reason))
    return pending.count()


def held_detail(since: datetime, reason: str) -> str:
    return f"Held since {since.astimezone(UTC):%Y-%m-%d %H:%M} UTC: {reason}"


def unusable_because(connection: Connection) -> str:
    """Why a draft or disabled connection sends nothing, and what the admin does about it (a draft whose check
    failed says what the check found)."""
    label = connection.spec.label
    if connection.status == Connection.Status.DISABLED:
        return f"the {label} connection is disabled — return it to draft and verify it to send the messages."
    if connection.last_check_ok is False and connection.last_check_result:
        return f"the {label} connection is a draft — {connection.last_check_result}"
    return f"the {label} connection is a draft (not verified yet) — verify it to send the messages."


def stopped_because(connection: Connection, error: VendorError) -> str:
    """Why a run stopped sending on this connection; the error's own text carries the vendor's instruction (for a
    refused messages token: ask Attentive to activate the legacy token)."""
    label = connection.spec.label
    connection.refresh_from_db(fields=["status"])  # the call log may just have marked it failing
    if connection.status == Connection.Status.FAILING:
        return f"the {label} connection is failing — {error.for_admin}"
    if isinstance(error, RateLimited):
        return f"{label} is throttling the messages — {error.for_admin}"
    return f"{label} could not take the messages — {error.for_admin}"


def hold_on_unusable_connections() -> int:
    """Pending messages of draft or disabled connections are never claimed: say why they wait."""
    waiting = (
        Connection.objects.defer("secrets")
        .filter(vendor__in=MESSAGE_VENDORS, messages__status=Status.PENDING)
        .exclude(status__in=USABLE_STATUSES)
        .distinct()
    )
    return sum(hold(connection, unusable_because(connection)) for connection in waiting)


def connections_with_pending_messages(client_id: int | None = None) -> QuerySet[Connection]:
    connections = usable() if client_id is None else usable().filter(client_id=client_id)
    return connections.filter(
        vendor__in=MESSAGE_VENDORS,
        pk__in=OutboundMessage.objects.filter(status=Status.PENDING).values("connection_id"),
    )


def dispatch_messages(client_id: int | None = None) -> dict[str, int]:
    """The scheduled job: plan new events' messages, settle interrupted sends, send what is pending — for every
    client, or for one (`client_id`, e.g. "run now" for a client's run)."""
    counts = plan_messages(client_id=client_id)
    counts.update(settle_interrupted_sends())
    counts.update(skipped=skip_unsendable(), held=hold_on_unusable_connections())
    for connection in connections_with_pending_messages(client_id):
        counts.update(send_pending(connection))
    if uncertain := counts.get("uncertain", 0) + counts.get("interrupted", 0):
        alert(
            "messages-uncertain",
            f"{uncertain} {ngettext('message is', 'messages are', uncertain)} uncertain",
            f"The vendor may or may not have sent {ngettext('it', 'them', uncertain)}. Check Outbound messages (status "
            "uncertain): each links to the vendor calls of its attempt; use “Send anyway” for those that did not go "
            "out.",
        )
    keys = ("planned", "sent", "skipped", "failed", "uncertain", "interrupted", "returned", "stopped", "held")
    return {key: counts.get(key, 0) for key in keys}
