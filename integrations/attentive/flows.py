"""Attentive use cases: activate and verify a client's connection, subscribe / check / unsubscribe a member, what a
member edit means for Attentive, and the message sender the loyalty-message job sends SMS through. Admin actions,
API views, tasks and tests all call these functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction

from integrations import connections
from integrations.attentive.api import AttentiveAPI, ChannelResult, MissingScope
from integrations.connections import api_for, update_secrets, usable_connection
from integrations.http import AuthError, NotFound, Rejected
from integrations.models import Client, Connection, SignUpSource
from integrations.outcome import NotReady, Outcome
from integrations.queue import enqueue
from members.models import ChannelSubscription, Member
from members.phones import InvalidPhone, to_e164

VENDOR = "attentive"
# A fictional number (555-01xx) for the side-effect-free eligibility probe that proves the subscriptions scope.
SCOPE_PROBE_PHONE = "+12025550100"
SUBSCRIBED_STATUSES = {"NEWLY_CREATED", "ALREADY_SUBSCRIBED", "SUBSCRIBED"}
# Attentive's unsubscribe body names both channels.
ALL_CHANNELS = [{"type": "MARKETING", "channel": "EMAIL"}, {"type": "MARKETING", "channel": "TEXT"}]


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
    api_key: str,
    legacy_token: str,
    sign_up_sources: Iterable[SignUpSourceInput],
    environment: str = "",
) -> Connection:
    """Store the credentials (encrypted; blank keeps a stored value) and the client's sign-up sources."""
    connection, _ = Connection.objects.get_or_create(client=client, vendor=VENDOR)
    update_secrets(connection, {"api_key": api_key, "legacy_token": legacy_token})
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
    sign_up_sources: Iterable[SignUpSourceInput] = (),
    environment: str = "",
) -> Outcome:
    """The site admin's first journey: store the credentials, verify them, and activate on success."""
    connection = save_activation(
        client,
        api_key=api_key,
        legacy_token=legacy_token,
        sign_up_sources=sign_up_sources,
        environment=environment,
    )
    if not connection.secret("api_key"):
        return Outcome.failure("Enter the API key of a private app from Attentive's Integrations tab.")
    return connections.verify(connection, activate=True)


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
    row = member.subscriptions.filter(vendor=VENDOR, type="MARKETING", channel="TEXT").first()
    return row.state if row else None


def record_states(member: Member, results: Iterable[ChannelResult], state_for: dict[str, str]) -> None:
    for result in results:
        if not result.channel:
            continue
        ChannelSubscription.objects.update_or_create(
            member=member,
            vendor=VENDOR,
            type=result.type or "MARKETING",
            channel=result.channel,
            defaults={"state": state_for.get(result.status, result.status.lower()[:16]), "last_result": result.status},
        )


ELIGIBILITY_STATES = {"ELIGIBLE": "eligible", "NOT_ELIGIBLE": "not_eligible"}
SUBSCRIBE_STATES = dict.fromkeys(SUBSCRIBED_STATUSES, "subscribed")
UNSUBSCRIBE_STATES = {"NEWLY_UNSUBSCRIBED": "unsubscribed", "ALREADY_UNSUBSCRIBED": "unsubscribed"}


def check_eligibility(member: Member) -> Outcome:
    phone = member_phone(member)
    connection = ready_connection(member.client)
    results = attentive_api(connection).eligibility(phone, member.email)
    record_states(member, results, ELIGIBILITY_STATES)
    summary = ", ".join(f"{r.channel} {r.status.lower().replace('_', ' ')}" for r in results) or "no channels"
    return Outcome.success(f"{member}: {summary}.")


def subscribe(member: Member, sign_up_source: SignUpSource | None = None) -> Outcome:
    """Subscribe once. Stored state or eligibility decides first: Attentive texts an existing subscriber
    "already subscribed", so a member known to be subscribed or not eligible is never sent again."""
    phone = member_phone(member)
    connection = ready_connection(member.client)
    source = sign_up_source or default_sign_up_source(member.client)
    if text_state(member) == ChannelSubscription.State.SUBSCRIBED:
        return Outcome.success(f"{member} is already subscribed to TEXT; nothing sent.")
    api = attentive_api(connection)
    eligibility = api.eligibility(phone, member.email)
    record_states(member, eligibility, ELIGIBILITY_STATES)
    if any(r.channel == "TEXT" and r.status == "NOT_ELIGIBLE" for r in eligibility):
        return Outcome.failure(f"Attentive says {member} is not eligible for TEXT (already subscribed or opted out).")
    try:
        results = api.subscribe(phone, member.email, source.source_id)
    except (Rejected, NotFound) as exc:
        return Outcome.failure(f"Attentive refused to subscribe {member}: {exc.message}. {exc.hint}")
    record_states(member, results, SUBSCRIBE_STATES)
    Member.objects.filter(pk=member.pk).update(opted_in=True)
    return Outcome.success(f"{member} subscribed with sign-up source {source.source_id}.")


def unsubscribe(member: Member) -> Outcome:
    phone = member_phone(member)
    connection = ready_connection(member.client)
    results = attentive_api(connection).unsubscribe(phone, member.email, ALL_CHANNELS)
    record_states(member, results, UNSUBSCRIBE_STATES)
    Member.objects.filter(pk=member.pk).update(opted_in=False)
    return Outcome.success(f"{member} unsubscribed from Attentive.")


def on_member_changed(connection: Connection, member: Member, changed_fields: set[str], previous: dict) -> None:
    """What a member edit means for Attentive: a changed opt-in subscribes or unsubscribes them (after commit).
    The subscribe flow decides from stored state and eligibility, so it never double-subscribes."""
    if "opted_in" in changed_fields and bool(previous.get("opted_in")) != member.opted_in and member.phone:
        enqueue(
            "integrations.attentive_subscribe" if member.opted_in else "integrations.attentive_unsubscribe", member.pk
        )


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

    def send(self, to: str, body: str) -> None:
        self.api.send_message(to, body)


def message_sender(connection: Connection) -> AttentiveSender:
    return AttentiveSender(connection)
