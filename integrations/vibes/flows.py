"""Vibes use cases: verify a connection, keep a member's person at Vibes up to date (add or update, API version 2,
E.164 MDN), apply subscription callbacks to the portal's state and match callback persons to members.

Person sync goes through the member-state reconciler (members/sync.py): edits in a burst reach Vibes as one update,
and a failing connection defers them until it works again.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import ngettext

from integrations.connections import api_for, usable_connection
from integrations.http import AuthError, NotFound
from integrations.models import Connection, WebhookEvent
from integrations.outcome import NotReady, Outcome
from integrations.vibes.api import MdnTaken, PersonResult, VibesAPI, person_payload
from integrations.vibes.models import VibesListSubscription, VibesPerson
from members import sync
from members.models import Member, MemberVendorState
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


def needs_sync(member: Member, changed_fields: set[str], previous: dict[str, Any]) -> bool:
    """Vibes holds the member's contact data (the person), not their opt-in: lists are Vibes' own."""
    return bool(changed_fields & SYNCED_FIELDS)


def reconcile_member(connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]:
    """Take the member off the lists an opt-out elsewhere left to remove (first: a STOP must not wait on a contact
    detail Vibes refuses), then send the person as the portal has it, unless Vibes already confirmed exactly this.
    Update by person id or external id; a person Vibes does not know (404) is added, which Vibes merges by MDN — so
    a retry after a lost answer finds the person and never creates a second one."""
    opted_out = send_list_opt_outs(connection, member, state)
    payload = person_payload(vibes_external_id(member), member.phone, custom_fields(member))
    if state.confirmed.get("person") == payload:
        return {**state.confirmed, "summary": opted_out} if opted_out else state.confirmed
    known = person_id_of(member)
    try:
        result = update_or_add(vibes_api(connection), member, payload, known)
    except MdnTaken as exc:
        raise MdnTaken(exc.vendor, f"{exc.message}: {mdn_holder(member, known)}", status=exc.status) from exc
    person_id = result.person_id or known
    if person_id and person_id != known:
        VibesPerson.objects.update_or_create(member=member, defaults={"person_id": person_id})
    verb = "created at" if result.created else "updated at"
    summary = f"{opted_out} {member} {verb} Vibes (person {person_id}).".strip()
    return {**state.confirmed, "person": payload, "person_id": person_id, "summary": summary}


def differs(confirmed: dict[str, Any], now: dict[str, Any]) -> str:
    sent, held = confirmed.get("person") or {}, now.get("person")
    if held is None:
        return "no person with the member's external id"
    changed = [key for key in ("mobile_phone", "custom_fields") if sent.get(key) and sent.get(key) != held.get(key)]
    return f"other {' and '.join(changed)} than the portal sent" if changed else ""


def read_member_state(connection: Connection, member: Member) -> dict[str, Any]:
    """What Vibes holds for the member now (by external id), for the drift report."""
    person = vibes_api(connection).get_by_external_id(vibes_external_id(member))
    if person is None:
        return {}
    return {"person": {key: person.get(key) for key in ("external_person_id", "mobile_phone", "custom_fields")}}


def sync_person(member: Member) -> Outcome:
    """ "Send to Vibes now": record the member as changed for Vibes and reconcile at once."""
    if usable_connection(member.client_id, VENDOR) is None:
        return Outcome.failure(f"Vibes is not active for {member.client}.")
    sync.bump(member, VENDOR)
    return sync.reconcile_now(member, VENDOR)


def person_id_of(member: Member) -> str:
    """The Vibes person id of the member, "" until Vibes has said which person the member is."""
    return VibesPerson.objects.filter(member=member).values_list("person_id", flat=True).first() or ""


def update_or_add(api: VibesAPI, member: Member, payload: dict, person_id: str) -> PersonResult:
    """Update by person id or external id; a person Vibes does not know (404) is added (merged by MDN if any)."""
    try:
        if person_id:
            return api.update_by_person_id(person_id, payload)
        return api.update_by_external_id(vibes_external_id(member), payload)
    except NotFound:
        return api.add_person(payload)


def mdn_holder(member: Member, person_id: str) -> str:
    other = (
        VibesListSubscription.objects.filter(client_id=member.client_id, mdn=member.phone)
        .exclude(person_id=person_id)
        .select_related("member")
        .first()
    )
    if other is not None:
        holder = f" (member {other.member})" if other.member else ""
        return f"Vibes person {other.person_id}{holder} holds {member.phone}."
    return f"{member.phone} may be on another Vibes person."


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
        parsed = timezone.make_aware(parsed, UTC)
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
    if state.member:
        VibesPerson.objects.get_or_create(member=state.member, defaults={"person_id": state.person_id})
    matched = f"matched to {state.member}" if state.member else "no member yet (kept to match later)"
    if state.member and state.state == VibesListSubscription.State.UNSUBSCRIBED:
        matched += honour_opt_out(connection, state.member)
    return WebhookEvent.Status.PROCESSED, f"{state.state} on list {state.list_id}; {matched}."


# Our reason on a list the portal took the member off because they opted out at another SMS vendor (Vibes' own
# reasons, e.g. user_opt_out, mean Vibes knows already); the reconciler tells Vibes.
OPTED_OUT_ELSEWHERE = "opted_out_elsewhere"


def opt_out_of_lists(member: Member, when: datetime, source: str) -> int:
    """The member opted out at another SMS vendor at `when` and the client honours opt-outs everywhere: every list
    they were subscribed to before then is marked opted out, and Vibes is told by the reconciler. A list joined
    after `when` is newer consent and stays; a Vibes callback older than `when` no longer changes these lists."""
    lists = VibesListSubscription.objects.filter(
        member=member, state=VibesListSubscription.State.SUBSCRIBED, last_event_date__lte=when
    )
    count = lists.update(
        state=VibesListSubscription.State.UNSUBSCRIBED,
        opt_out_date=when,
        opt_out_reason=OPTED_OUT_ELSEWHERE,
        last_event_date=when,
        last_event_id=source[:100],
    )
    if count and VENDOR in sync.configured_vendors(member.client_id):
        sync.bump(member, VENDOR)
    return count


def send_list_opt_outs(connection: Connection, member: Member, state: MemberVendorState) -> str:
    """Unsubscribe the person from each list marked OPTED_OUT_ELSEWHERE that Vibes was not yet told of (keyed by
    person, list and opt-out date, so a later opt-out from a list re-joined is sent again). Each one sent is kept on
    the state at once: if a later call fails, the retry does not send it twice."""
    sent = dict(state.confirmed.get("list_opt_outs") or {})
    pending = VibesListSubscription.objects.filter(
        member=member, state=VibesListSubscription.State.UNSUBSCRIBED, opt_out_reason=OPTED_OUT_ELSEWHERE
    )
    done = []
    for row in pending.order_by("pk"):
        key, when = f"{row.person_id}/{row.list_id}", row.opt_out_date.isoformat() if row.opt_out_date else ""
        if sent.get(key) == when:
            continue
        with contextlib.suppress(NotFound):  # Vibes holds no such subscription: nothing left to remove
            vibes_api(connection).unsubscribe_person(row.person_id, row.list_id)
        sent[key] = when
        state.confirmed = {**state.confirmed, "list_opt_outs": sent}
        done.append(row.list_id)
    lists = ngettext("list", "lists", len(done))
    return f"{member} unsubscribed from Vibes {lists} {', '.join(done)} (opted out elsewhere)." if done else ""


def honour_opt_out(connection: Connection, member: Member) -> str:
    """A STOP at Vibes is an opt-out at the portal, which then reaches the client's other SMS vendors (a client
    setting, on by default)."""
    if not connection.client.honour_opt_outs_everywhere or not member.opted_in:
        return ""
    sync.change_member(member, opted_in=False)
    return " Opted out at the portal and the client's other SMS vendors."


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
    match = members.filter(vibes_person__person_id=state.person_id).first()
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
