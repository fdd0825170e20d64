"""Attentive use cases: activate and verify a client's connection, subscribe / check / unsubscribe a member (by
channel: SMS, e-mail or both), what a member edit means for Attentive, what Attentive's webhooks tell the portal, and
the message sender the loyalty-message job sends SMS through. Admin actions, API views, tasks and tests all call these
functions."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils.translation import ngettext

from integrations import connections
from integrations.attentive.api import AttentiveAPI, ChannelResult, MissingScope
from integrations.attentive.models import SignUpSource
from integrations.connections import api_for, usable_connection
from integrations.http import AuthError, Rejected
from integrations.models import Client, Connection, WebhookEvent
from integrations.outcome import NotReady, Outcome
from integrations.vibes import flows as vibes
from members import sync
from members.actions import on_the_timeline
from members.models import ChannelSubscription, Member, MemberVendorState
from members.phones import InvalidPhone, to_e164

VENDOR = "attentive"
# A fictional number (555-01xx) for the side-effect-free eligibility probe that proves the subscriptions scope.
SCOPE_PROBE_PHONE = "+12025550100"
SUBSCRIBED_STATUSES = {"NEWLY_CREATED", "ALREADY_SUBSCRIBED", "SUBSCRIBED"}
# The channels a member may be unsubscribed from, as users name them, and as Attentive does (seed 000's
# `subscriptions: [{type, channel}]`: a list names only those channels, so an SMS opt-out never touches e-mail).
SMS, EMAIL = "sms", "email"
ATTENTIVE_CHANNELS = {SMS: "TEXT", EMAIL: "EMAIL"}


class AttentiveNotReady(NotReady):
    """Something to fix before any Attentive call is made (no connection, no sign-up source, no phone...)."""


@dataclass(frozen=True)
class SignUpSourceInput:
    source_id: str
    name: str = ""
    is_default: bool = False


# --- The connection -------------------------------------------------------------------------------------------


def attentive_api(connection: Connection) -> AttentiveAPI:
    return api_for(
        connection,
        AttentiveAPI,
        api_key=connection.secret("api_key"),
        legacy_token=connection.secret("legacy_token"),
        messages_path=connection.settings.get("messages_path", ""),
    )


@transaction.atomic
def save_activation(
    client: Client,
    *,
    sign_up_sources: Iterable[SignUpSourceInput],
    environment: str = "",
) -> Connection:
    """Store the connection's environment and the client's sign-up sources (the credentials are stored once
    verified, by connections.save_and_verify)."""
    connection, _ = Connection.objects.get_or_create(client=client, vendor=VENDOR)
    connection.environment = environment or connection.environment
    connections.leave_disabled(connection)
    connection.save()
    replace_sign_up_sources(client, list(sign_up_sources))
    return connection


def replace_sign_up_sources(client: Client, sources: list[SignUpSourceInput]) -> None:
    if not sources:
        return
    if sum(s.is_default for s in sources) != 1:
        sources = [SignUpSourceInput(s.source_id, s.name, i == 0) for i, s in enumerate(sources)]
    SignUpSource.objects.filter(client=client).exclude(source_id__in=[s.source_id for s in sources]).delete()
    SignUpSource.objects.filter(client=client).update(is_default=False)
    for source in sources:
        SignUpSource.objects.update_or_create(
            client=client,
            source_id=source.source_id,
            defaults={"name": source.name, "is_default": source.is_default},
        )


def activate(
    client: Client,
    *,
    api_key: str,
    legacy_token: str = "",
    webhook_signing_key: str = "",
    sign_up_sources: Iterable[SignUpSourceInput] = (),
    environment: str = "",
) -> Outcome:
    """The site admin's first journey: store the sign-up sources, verify the credentials and activate on success.
    Credentials Attentive refuses are not kept (see connections.save_and_verify)."""
    connection = save_activation(client, sign_up_sources=sign_up_sources, environment=environment)
    if not (api_key or connection.secret("api_key")):
        return Outcome.failure("Enter the API key of a private app from Attentive's Integrations tab.")
    entered = {"api_key": api_key, "legacy_token": legacy_token, "webhook_signing_key": webhook_signing_key}
    return connections.save_and_verify(connection, entered)


def check_connection(connection: Connection) -> str:
    """The verify check (see connections.verify), with calls that touch no subscriber: who the key belongs to, then
    an eligibility probe that needs the subscriptions scope."""
    api = attentive_api(connection)
    me = api.me()
    try:
        api.eligibility(SCOPE_PROBE_PHONE)
    except AuthError as exc:
        raise MissingScope(exc.vendor, exc.message, status=exc.status) from exc
    account = me.get("companyName") or me.get("name") or me.get("domain") or "your Attentive account"
    return f"Verified: the API key belongs to {account} and may manage subscriptions."


def explain_auth_failure(exc: AuthError) -> str:
    if isinstance(exc, MissingScope):
        return f"Attentive accepted the API key but refused the subscriptions call ({exc.message}). {exc.hint}"
    return (
        f"Attentive rejected the API key ({exc.message}): copy the key of a private app from Attentive's "
        "Integrations tab, enter it again and re-verify."
    )


# --- Members --------------------------------------------------------------------------------------------------


def ready_connection(client: Client) -> Connection:
    connection = usable_connection(client, VENDOR)
    if connection is None:
        raise AttentiveNotReady(f"Attentive is not active for {client}: activate it from the client's admin page.")
    return connection


def member_phone(member: Member) -> str:
    if not member.phone:
        raise AttentiveNotReady(f"{member} has no mobile number: the mobile number is the member's key at Attentive.")
    try:
        return to_e164(member.phone, member.client.default_region)
    except InvalidPhone as exc:
        raise AttentiveNotReady(f"{member}: {exc}") from exc


def default_sign_up_source(client: Client) -> SignUpSource:
    source = SignUpSource.objects.filter(client=client, is_default=True).first()
    if source is None:
        raise AttentiveNotReady(
            f"{client} has no default sign-up source: add the Attentive sign-up flow id when activating Attentive."
        )
    return source


def text_state(member: Member) -> str | None:
    return channel_state(member, "TEXT")


def channel_state(member: Member, channel: str) -> str | None:
    row = member.subscriptions.filter(vendor=VENDOR, type="MARKETING", channel=channel).first()
    return row.state if row else None


def record_states(
    member: Member, results: Iterable[ChannelResult], state_for: dict[str, str], *, only_unknown: bool = False
) -> None:
    """Store each channel's state as Attentive reported it. With `only_unknown` (eligibility answers) a confirmed
    subscription is never overwritten: eligibility fills in what the portal does not know."""
    for result in results:
        if not result.channel:
            continue
        key: dict[str, Any] = {
            "member": member,
            "vendor": VENDOR,
            "type": result.type or "MARKETING",
            "channel": result.channel,
        }
        subscribed = ChannelSubscription.objects.filter(**key, state=ChannelSubscription.State.SUBSCRIBED)
        if only_unknown and subscribed.exists():
            continue
        state = state_for.get(result.status, result.status.lower()[:16])
        ChannelSubscription.objects.update_or_create(**key, defaults={"state": state, "last_result": result.status})


ELIGIBILITY_STATES = {"ELIGIBLE": "eligible", "NOT_ELIGIBLE": "not_eligible"}
SUBSCRIBE_STATES = dict.fromkeys(SUBSCRIBED_STATUSES, "subscribed")
UNSUBSCRIBE_STATES = {"NEWLY_UNSUBSCRIBED": "unsubscribed", "ALREADY_UNSUBSCRIBED": "unsubscribed"}


@on_the_timeline(VENDOR, "Eligibility check")
def check_eligibility(member: Member) -> Outcome:
    """Ask Attentive which channels the member could be subscribed to; fills in only what the portal does not know."""
    phone = member_phone(member)
    connection = ready_connection(member.client)
    results = attentive_api(connection).eligibility(phone, member.email)
    record_states(member, results, ELIGIBILITY_STATES, only_unknown=True)
    summary = ", ".join(f"{r.channel} {r.status.lower().replace('_', ' ')}" for r in results) or "no channels"
    return Outcome.success(f"{member}: {summary}.")


def subscribe(member: Member) -> Outcome:
    """The member opts in and is subscribed at Attentive now (the same change as any other path records)."""
    return set_opt_in_now(member, opted_in=True)


def unsubscribe(member: Member, channels: Collection[str] = (SMS,)) -> Outcome:
    """Unsubscribe the member at Attentive from the chosen channels, SMS only unless told otherwise (seed 000's use
    case: "unsubscribe from the SMS services"). SMS is the member's opt-in: it is recorded and converged by the
    reconciler like any other change, so it is never lost. E-mail is not a consent the portal keeps: it is one
    unsubscribe call now (safe to repeat), its answer recorded on the member."""
    chosen = chosen_channels(channels)
    member_phone(member)
    connection = ready_connection(member.client)
    outcomes = []
    if SMS in chosen:  # first: an opt-out is recorded even if the e-mail call fails
        outcomes.append(set_opt_in_now(member, opted_in=False))
    if EMAIL in chosen:
        outcomes.append(unsubscribe_email_now(member, connection))
    return Outcome(
        all(o.ok for o in outcomes), " ".join(o.message for o in outcomes), error=any(o.error for o in outcomes)
    )


def chosen_channels(channels: Collection[str]) -> set[str]:
    unknown = set(channels) - set(ATTENTIVE_CHANNELS)
    if unknown or not channels:
        raise ValueError(f"Channels must be some of {sorted(ATTENTIVE_CHANNELS)}, not {sorted(unknown) or 'none'}.")
    return set(channels)


def subscriptions_for(*channels: str) -> list[dict[str, str]]:
    """Attentive's `subscriptions` list naming these channels (MARKETING: what loyalty messages are)."""
    return [{"type": "MARKETING", "channel": ATTENTIVE_CHANNELS[channel]} for channel in channels]


@on_the_timeline(VENDOR, "E-mail unsubscribe")
def unsubscribe_email_now(member: Member, connection: Connection) -> Outcome:
    results = attentive_api(connection).unsubscribe(member_phone(member), member.email, subscriptions_for(EMAIL))
    record_states(member, results, UNSUBSCRIBE_STATES)
    return Outcome.success(f"{member} unsubscribed from e-mail at Attentive.")


def set_opt_in_now(member: Member, *, opted_in: bool) -> Outcome:
    member_phone(member)
    ready_connection(member.client)
    if opted_in:
        default_sign_up_source(member.client)
    sync.change_member(member, opted_in=opted_in)
    sync.bump(member, VENDOR)
    return sync.reconcile_now(member, VENDOR)


# --- Convergence (members/sync.py) ------------------------------------------------------------------------------


def needs_sync(member: Member, changed_fields: set[str], previous: dict[str, Any]) -> bool:
    """Attentive holds the member's TEXT subscription, keyed by the mobile number: an opt-in or an opt-out of a
    member who was opted in matters, and so does a new number of a member who is opted in."""
    was_opted_in = bool(previous.get("opted_in"))
    if "opted_in" in changed_fields and (member.opted_in or was_opted_in):
        return True
    return "phone" in changed_fields and member.opted_in


def reconcile_member(connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]:
    """Make Attentive's TEXT subscription match the member's opt-in, for the member's current number.

    Never a blind subscribe: Attentive texts an existing subscriber "already subscribed", and a subscribe whose
    answer was lost may have gone through. So an unknown state is asked first (eligibility): not eligible after
    our own unanswered subscribe means it did go through."""
    api = attentive_api(connection)
    confirmed = dict(state.confirmed)
    old_phone = confirmed.get("phone")
    if old_phone and member.phone != old_phone and confirmed.get("text") == ChannelSubscription.State.SUBSCRIBED:
        # The number changed: the old one leaves Attentive, the new one starts unknown.
        api.unsubscribe(old_phone, "", subscriptions_for(SMS))
        ChannelSubscription.objects.filter(member=member, vendor=VENDOR).delete()
        confirmed = {}
    if not member.opted_in:
        return converged(member, ensure_unsubscribed(api, member))
    return converged(member, ensure_subscribed(api, member, state, confirmed))


def converged(member: Member, summary: str) -> dict[str, Any]:
    """What Attentive now holds for the member, as the reconciler records it."""
    return {"phone": member.phone, "text": text_state(member) or "unknown", "summary": summary}


def ensure_subscribed(api: AttentiveAPI, member: Member, state: MemberVendorState, confirmed: dict[str, Any]) -> str:
    phone = member_phone(member)
    if text_state(member) == ChannelSubscription.State.SUBSCRIBED:
        return f"{member} is already subscribed to TEXT; nothing sent."
    eligibility = api.eligibility(phone, member.email)
    text_eligible = not any(r.channel == "TEXT" and r.status == "NOT_ELIGIBLE" for r in eligibility)
    if not text_eligible:
        if confirmed.get("subscribe_sent_to") == phone:
            # Our earlier subscribe reached Attentive although its answer was lost.
            record_states(member, [ChannelResult("MARKETING", "TEXT", "SUBSCRIBED")], SUBSCRIBE_STATES)
            return f"{member} is subscribed (Attentive had taken the earlier subscribe); nothing sent again."
        record_states(member, eligibility, ELIGIBILITY_STATES, only_unknown=True)
        raise Rejected(
            "Attentive",
            f"{member} is not eligible for TEXT (already subscribed or opted out at Attentive)",
            hint="Nothing was sent. If the member should receive SMS, check them in Attentive's Subscribers tab.",
        )
    source = default_sign_up_source(member.client)
    # Recorded before the call: if the answer is lost, the next attempt knows a subscribe may have gone through.
    state.confirmed = {**confirmed, "subscribe_sent_to": phone}
    state.save(update_fields=["confirmed"])
    # Attentive subscribes the e-mail it is given too: an address the member unsubscribed is not sent back.
    email = "" if channel_state(member, "EMAIL") == ChannelSubscription.State.UNSUBSCRIBED else member.email
    record_states(member, api.subscribe(phone, email, source.source_id), SUBSCRIBE_STATES)
    return f"{member} subscribed with sign-up source {source.source_id}."


def ensure_unsubscribed(api: AttentiveAPI, member: Member) -> str:
    """The SMS opt-out: TEXT only, whatever path it came by (admin, API, a STOP at Vibes): e-mail is left alone."""
    if not member.phone or text_state(member) == ChannelSubscription.State.UNSUBSCRIBED:
        return f"{member} is not subscribed at Attentive; nothing sent."
    phone = member_phone(member)
    if text_state(member) != ChannelSubscription.State.SUBSCRIBED:
        eligibility = api.eligibility(phone, member.email)
        if all(r.status == "ELIGIBLE" for r in eligibility if r.channel == "TEXT"):
            record_states(member, eligibility, ELIGIBILITY_STATES, only_unknown=True)
            return f"{member} is not subscribed at Attentive; nothing to undo."
    record_states(member, api.unsubscribe(phone, member.email, subscriptions_for(SMS)), UNSUBSCRIBE_STATES)
    return f"{member} unsubscribed from SMS at Attentive."


def differs(confirmed: dict[str, Any], now: dict[str, Any]) -> str:
    """Eligibility after a confirmed subscription should say not eligible (Attentive has the number)."""
    if confirmed.get("text") == ChannelSubscription.State.SUBSCRIBED and now.get("text_eligibility") == "ELIGIBLE":
        return "no TEXT subscription for the number (eligible to subscribe): the member may have opted out there"
    return ""


def read_member_state(connection: Connection, member: Member) -> dict[str, Any]:
    """What Attentive says now (eligibility: a read with no side effect), for the drift report."""
    results = attentive_api(connection).eligibility(member_phone(member), member.email)
    text = next((r.status for r in results if r.channel == "TEXT"), "unknown")
    return {"phone": member.phone, "text_eligibility": text}


# --- Attentive's webhooks (integrations/attentive/webhooks.py checks and stores them) ----------------------------


@dataclass(frozen=True)
class Subscriber:
    """Who an event is about: Attentive's subscriber id, and what the portal matches a member on."""

    external_id: str = ""
    phone: str = ""
    email: str = ""
    client_user_id: str = ""


@dataclass(frozen=True)
class AttentiveEvent:
    """One Attentive webhook event, validated (see webhooks.parse_event)."""

    type: str
    timestamp_ms: int  # when it happened at Attentive (Unix milliseconds): the order events are applied in
    subscriber: Subscriber
    subscription_type: str = "MARKETING"
    sign_up_source: str = ""  # the creative's name on a subscribe: where the consent was given

    @property
    def happened_at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


# What each event the portal acts on says about one of the member's channels at Attentive.
EVENT_EFFECTS = {
    "sms.subscribed": ("TEXT", ChannelSubscription.State.SUBSCRIBED),
    "sms.unsubscribed": ("TEXT", ChannelSubscription.State.UNSUBSCRIBED),
    "email.unsubscribed": ("EMAIL", ChannelSubscription.State.UNSUBSCRIBED),
}
# A channel state set by a webhook keeps the event's time in its last result ("sms.unsubscribed at 1714564800123"):
# Attentive retries for days and in no order, so an older event must never undo a newer one.
EVENT_RESULT = re.compile(r" at (\d{1,16})$")
Status = WebhookEvent.Status


def apply_webhook_event(connection: Connection, event: AttentiveEvent) -> tuple[str, str]:
    """Record what the event says about the member's channel at Attentive, unless the portal holds something newer
    for that channel. A STOP (`sms.unsubscribed`) turns the member's SMS opt-in off, and with the client's "honour an
    SMS opt-out everywhere" reaches Vibes too; `sms.subscribed` is an SMS opt-in given at Attentive;
    `email.unsubscribed` changes the e-mail channel only."""
    effect = EVENT_EFFECTS.get(event.type)
    if effect is None:
        return Status.IGNORED, f"{event.type} is not an event the portal acts on."
    if event.subscription_type != "MARKETING":
        return Status.IGNORED, f"A {event.subscription_type} subscription: the portal keeps MARKETING ones only."
    member = find_member(connection.client, event.subscriber)
    if member is None:
        return Status.IGNORED, f"No member of {connection.client} matches {describe(event.subscriber)}; not applied."
    channel, state = effect
    key: dict[str, Any] = {"member": member, "vendor": VENDOR, "type": "MARKETING", "channel": channel}
    held = ChannelSubscription.objects.select_for_update().filter(**key).first()
    if held is not None and known_since_ms(held) > event.timestamp_ms:
        return Status.IGNORED, f"Older than what the portal holds for {member}'s {channel} ({held.state}); not applied."
    result = f"{event.type} at {event.timestamp_ms}"
    ChannelSubscription.objects.update_or_create(**key, defaults={"state": state, "last_result": result})
    detail = f"{member}: {channel} {state} at Attentive."
    if channel == "TEXT":
        detail += follow_sms_consent(connection, member, event)
    return Status.PROCESSED, detail


def known_since_ms(row: ChannelSubscription) -> int:
    """When what a channel state says became true: the event's time for a webhook's, else when Attentive answered."""
    found = EVENT_RESULT.search(row.last_result)
    return int(found.group(1)) if found else int(row.updated_at.timestamp() * 1000)


def follow_sms_consent(connection: Connection, member: Member, event: AttentiveEvent) -> str:
    """The SMS channel at Attentive is the member's SMS consent. Its TEXT state is recorded first, so the reconciler
    that follows the opt-in change finds Attentive in step and calls it for nothing."""
    if event.type == "sms.subscribed":
        source = f" (sign-up source {event.sign_up_source})" if event.sign_up_source else ""
        changed = sync.change_member(member, opted_in=True)
        return f" SMS opt-in given at Attentive{source}." if changed else " Already opted in to SMS."
    changed = sync.change_member(member, opted_in=False)
    detail = " Opted out of SMS at the portal (a STOP at Attentive)." if changed else " Already opted out of SMS."
    if connection.client.honour_opt_outs_everywhere:
        lists = vibes.opt_out_of_lists(member, event.happened_at, f"attentive {event.type} {event.timestamp_ms}")
        detail += f" Opted out of {lists} Vibes {ngettext('list', 'lists', lists)}." if lists else ""
    return detail


def find_member(client: Client, subscriber: Subscriber) -> Member | None:
    """Match by the loyalty id Attentive holds (client user id), then by mobile number, then by a unique e-mail."""
    members = Member.objects.filter(client=client)
    if (user_id := subscriber.client_user_id) and (match := members.filter(annex_cloud_id=user_id).first()):
        return match
    if subscriber.phone:
        try:
            phone = to_e164(subscriber.phone, client.default_region)
        except InvalidPhone:
            phone = ""
        if phone and (match := members.filter(phone=phone).first()):
            return match
    if subscriber.email:
        matches = list(members.filter(email__iexact=subscriber.email)[:2])
        return matches[0] if len(matches) == 1 else None
    return None


def describe(subscriber: Subscriber) -> str:
    known = {"client user id": subscriber.client_user_id, "phone": subscriber.phone, "e-mail": subscriber.email}
    return ", ".join(f"{name} {value}" for name, value in known.items() if value) or "the subscriber"


# --- Sending loyalty messages ---------------------------------------------------------------------------------


class AttentiveSender:
    """How the loyalty-message job (members/messaging.py) sends through Attentive: an SMS to a TEXT subscriber,
    with the legacy messages token."""

    unreachable_reason = "The member is not subscribed to TEXT at Attentive."

    def __init__(self, connection: Connection) -> None:
        self.api = attentive_api(connection)

    def reachable(self, member_ids: Iterable[int]) -> set[int]:
        return set(
            ChannelSubscription.objects.filter(
                member__in=list(member_ids),
                vendor=VENDOR,
                channel="TEXT",
                state=ChannelSubscription.State.SUBSCRIBED,
            ).values_list("member_id", flat=True)
        )

    def send(self, to: str, body: str, leaving: Callable[[], None]) -> None:
        self.api.send_message(to, body, before_send=lambda _request: leaving())


def message_sender(connection: Connection) -> AttentiveSender:
    return AttentiveSender(connection)
