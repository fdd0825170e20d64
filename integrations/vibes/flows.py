"""Vibes use cases: verify a connection, keep a member's person at Vibes up to date (add or update, API version 2,
E.164 MDN), apply subscription callbacks to the portal's state and match callback persons to members.

Person sync is coalesced: the first edit marks the member pending and queues one delayed task; later edits see it
pending and queue nothing; the task clears the mark first and sends the member as it is then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.connections import api_for, usable_connection
from integrations.http import AuthError, NotFound
from integrations.models import Connection, WebhookEvent
from integrations.outcome import NotReady, Outcome
from integrations.queue import enqueue
from integrations.vibes.api import MdnConflict, PersonResult, Unprocessable, VibesAPI, person_payload
from members.models import Member, VibesListSubscription
from members.phones import InvalidPhone, to_e164

VENDOR = "vibes"
SYNCED_FIELDS = {"phone", "email", "first_name", "last_name", "zip_code", "annex_cloud_id"}


def vibes_api(connection: Connection) -> VibesAPI:
    return api_for(
        connection,
        VibesAPI,
        company_key=connection.settings.get("company_key", ""),
        username=connection.secret("api_username"),
        password=connection.secret("api_password"),
    )


def check_connection(connection: Connection) -> str:
    """The verify check (see connections.verify): a read that changes nothing proves the key and credentials."""
    company_key = connection.settings.get("company_key")
    if not company_key:
        raise NotReady("Enter the Vibes company key in the connection's settings.")
    vibes_api(connection).credentials_work()
    return f"Verified: the credentials work for company {company_key}."


def explain_auth_failure(error: AuthError) -> str:
    return f"Vibes rejected the API credentials ({error.message}): check the username and password. {error.hint}"


# --- Person sync --------------------------------------------------------------------------------------------------


def vibes_external_id(member: Member) -> str:
    """The id the portal gives Vibes as external_person_id: the Annex Cloud id, else a portal id."""
    return member.annex_cloud_id or f"portal-{member.pk}"


def custom_fields(member: Member) -> dict[str, str]:
    fields = {"first_name": member.first_name, "last_name": member.last_name, "email": member.email}
    fields["zip_code"] = member.zip_code
    return {name: value for name, value in fields.items() if value}


def sync_person(member: Member) -> Outcome:
    connection = usable_connection(member.client_id, VENDOR)
    if connection is None:
        return Outcome.failure(f"Vibes is not active for {member.client}.")
    api = vibes_api(connection)
    payload = person_payload(vibes_external_id(member), member.phone, custom_fields(member))
    try:
        result = update_or_add(api, member, payload)
    except MdnConflict as exc:
        return Outcome.failure(f"{member}: {mdn_holder(member)} {exc.hint}")
    except Unprocessable as exc:
        return Outcome.failure(f"{member}: Vibes could not accept the person: {exc.message}. {exc.hint}")
    if result.person_id and result.person_id != member.vibes_person_id:
        Member.objects.filter(pk=member.pk).update(vibes_person_id=result.person_id)
    verb = "created at" if result.created else "updated at"
    return Outcome.success(f"{member} {verb} Vibes (person {result.person_id or member.vibes_person_id}).")


def update_or_add(api: VibesAPI, member: Member, payload: dict) -> PersonResult:
    """Update by person id or external id; a person Vibes does not know (404) is added (merged by MDN if any)."""
    try:
        if member.vibes_person_id:
            return api.update_by_person_id(member.vibes_person_id, payload)
        return api.update_by_external_id(vibes_external_id(member), payload)
    except NotFound:
        return api.add_person(payload)


def mdn_holder(member: Member) -> str:
    other = (
        VibesListSubscription.objects.filter(client_id=member.client_id, mdn=member.phone)
        .exclude(person_id=member.vibes_person_id or "")
        .select_related("member")
        .first()
    )
    if other is not None:
        holder = f" (member {other.member})" if other.member else ""
        return f"Vibes person {other.person_id}{holder} holds {member.phone}."
    return f"another Vibes person holds {member.phone}."


def on_member_changed(connection: Connection, member: Member, changed_fields: set[str], previous: dict) -> None:
    """What a member edit means for Vibes: contact data changes reach Vibes as one (coalesced) person update."""
    if changed_fields & SYNCED_FIELDS:
        request_person_sync(member)


def request_person_sync(member: Member) -> bool:
    """Queue one delayed sync unless one is already pending; returns whether a task was queued."""
    if usable_connection(member.client_id, VENDOR) is None:
        return False
    claimed = Member.objects.filter(pk=member.pk, vibes_sync_pending=False).update(vibes_sync_pending=True)
    if claimed:
        enqueue("integrations.sync_vibes_person", member.pk, countdown=settings.VIBES_SYNC_DELAY_SECONDS)
    return bool(claimed)


def run_pending_sync(member_id: int) -> str:
    Member.objects.filter(pk=member_id).update(vibes_sync_pending=False)
    member = Member.objects.select_related("client").get(pk=member_id)
    return sync_person(member).message


# --- Subscription callbacks ---------------------------------------------------------------------------------------


def parse_vibes_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    # Vibes writes offsets both as Z and as +0000.
    text = value.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"
    parsed = parse_datetime(text)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.UTC)
    return parsed


def apply_subscription_callback(connection: Connection, payload: dict[str, Any]) -> tuple[str, str]:
    """Record a person's list subscription as the callback says, unless a later event was applied already."""
    subscription = payload["subscription"]
    person = subscription["person"]
    event_date = parse_vibes_datetime(payload["event_date"])
    assert event_date is not None  # checked on receipt
    state, created = VibesListSubscription.objects.select_for_update().get_or_create(
        client=connection.client,
        person_id=str(person["id"]),
        list_id=str(subscription["subscription_list"]["id"]),
        defaults={"state": VibesListSubscription.State.SUBSCRIBED, "last_event_date": event_date},
    )
    if not created and event_date < state.last_event_date:
        return WebhookEvent.Status.IGNORED, f"Older than the applied event {state.last_event_id}; not applied."
    state.external_id = str(person.get("external_id") or state.external_id)
    state.mdn = person_mdn(person, connection) or state.mdn
    if payload["callback_type"] == "subscription_added":
        state.state = VibesListSubscription.State.SUBSCRIBED
        state.opt_in_date = parse_vibes_datetime(subscription.get("opt_in_date")) or event_date
        state.acquisition_campaign_id = str((subscription.get("acquisition_campaign") or {}).get("id") or "")
    else:
        state.state = VibesListSubscription.State.UNSUBSCRIBED
        state.opt_out_date = parse_vibes_datetime(subscription.get("opt_out_date")) or event_date
        state.opt_out_reason = str(subscription.get("opt_out_reason") or "")
    state.last_event_date, state.last_event_id = event_date, str(payload["event_id"])
    state.member = state.member or find_member(connection, state)
    state.save()
    if state.member and not state.member.vibes_person_id:
        Member.objects.filter(pk=state.member.pk).update(vibes_person_id=state.person_id)
    matched = f"member {state.member_id}" if state.member else "no member yet (kept to match later)"
    return WebhookEvent.Status.PROCESSED, f"{state.state} on list {state.list_id}; {matched}."


def person_mdn(person: dict[str, Any], connection: Connection) -> str:
    raw = (person.get("mobile_phone") or {}).get("mdn") or person.get("mdn") or ""
    try:
        return to_e164(str(raw), connection.client.default_region) if raw else ""
    except InvalidPhone:
        return ""


def find_member(connection: Connection, state: VibesListSubscription) -> Member | None:
    """Match by external id, then by Vibes person id, then by mobile number."""
    members = Member.objects.filter(client=connection.client)
    if state.external_id:
        match = members.filter(annex_cloud_id=state.external_id).first()
        if match is None and state.external_id.startswith("portal-") and state.external_id[7:].isdigit():
            match = members.filter(pk=int(state.external_id[7:])).first()
        if match is not None:
            return match
    match = members.filter(vibes_person_id=state.person_id).first()
    if match is None and state.mdn:
        match = members.filter(phone=state.mdn).first()
    return match


def match_unmatched(client_id: int | None = None) -> dict[str, int]:
    """Attach kept subscriptions to members that have appeared since (the scheduled matcher)."""
    pending = VibesListSubscription.objects.filter(member__isnull=True).select_related("client")
    if client_id:
        pending = pending.filter(client_id=client_id)
    matched = 0
    for state in pending.iterator():
        connection = Connection(client=state.client)
        member = find_member(connection, state)
        if member is not None:
            VibesListSubscription.objects.filter(pk=state.pk, member__isnull=True).update(member=member)
            matched += 1
    return {"matched": matched}
