"""Vibes subscription callbacks: store every delivery raw first, answer fast, apply each event once and in order.

Vibes retries 3xx/5xx (older docs: every 5 minutes, 5 times, 2-second timeout) and treats 4xx as permanent, so:
a bad delivery gets a 400 with its reason (and is kept for inspection), a duplicate gets a 2xx, and a 5xx goes out
only when the delivery could not be stored. Events may come twice or out of order: the vendor's `event_id` is the
dedup key, and a callback older than the state it would change (`event_date`) is ignored.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import traceback
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.models import Connection, WebhookEvent
from members.models import Member, VibesListSubscription
from members.phones import InvalidPhone, to_e164

CALLBACK_TYPES = {"subscription_added", "subscription_removed"}
# Published source addresses of Vibes callbacks, offered as presets for a connection's IP allow-list.
VIBES_IP_PRESETS = {
    "vibes-us": ["35.155.139.143", "52.32.61.199", "35.161.244.84", "18.205.120.48", "52.22.43.57", "18.232.9.131"],
    "vibes-eu": ["34.243.232.57", "52.48.241.82", "34.249.188.130", "54.247.36.51", "34.253.250.65", "54.217.181.160"],
}
# Callbacks arriving within this many seconds are processed by one task run.
PROCESSING_WINDOW_SECONDS = 1
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Request-Id")


@dataclass(frozen=True)
class Receipt:
    status: int
    detail: str
    event: WebhookEvent | None = None


class BadDelivery(ValueError):
    """A delivery that can never be applied; the message says why."""


# --- Access checks -----------------------------------------------------------------------------------------------


def allowed_addresses(connection: Connection) -> list[str]:
    entries = connection.settings.get("callback_ip_allowlist") or []
    if isinstance(entries, str):
        entries = [e.strip() for e in entries.replace("\n", ",").split(",") if e.strip()]
    expanded: list[str] = []
    for entry in entries:
        expanded += VIBES_IP_PRESETS.get(entry, [entry])
    return expanded


def address_allowed(connection: Connection, remote_addr: str) -> bool:
    networks = allowed_addresses(connection)
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def basic_auth_ok(connection: Connection, username: str | None, password: str | None) -> bool:
    expected_user = connection.settings.get("callback_username", "")
    if not expected_user:
        return True
    return hmac.compare_digest(username or "", expected_user) and hmac.compare_digest(
        password or "", connection.secret("callback_password")
    )


# --- Receiving ----------------------------------------------------------------------------------------------------


def receive(connection: Connection, *, headers: dict[str, str], body: bytes, remote_addr: str | None) -> Receipt:
    """Store every delivery as received, in one write: a valid new event carries its event id (the dedup key), a
    repeat of it is stored as a duplicate, a bad one as rejected with the reason. New events are processed by a
    task after commit."""
    raw = {
        "connection": connection,
        "headers": {k: v for k, v in headers.items() if k in KEPT_HEADERS},
        "body": body[: settings.WEBHOOK_MAX_BODY_BYTES].decode("utf-8", "replace"),
        "remote_addr": remote_addr,
    }
    try:
        if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
            raise BadDelivery(f"Body larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes; only its start is kept.")
        payload = parse_callback(headers.get("Content-Type", ""), body)
    except BadDelivery as exc:
        event = WebhookEvent.objects.create(
            **raw, status=WebhookEvent.Status.REJECTED, error=str(exc), processed_at=timezone.now()
        )
        return Receipt(400, str(exc), event)
    return store_event(raw, str(payload["event_id"]), payload["callback_type"])


def store_event(raw: dict[str, Any], event_id: str, event_type: str) -> Receipt:
    """The unique (connection, event_id) decides between two copies, even ones arriving at the same instant: the
    loser is stored as a duplicate and answered 200."""
    try:
        with single_statement():
            event = WebhookEvent.objects.create(**raw, event_id=event_id, event_type=event_type)
    except IntegrityError:
        event = WebhookEvent.objects.create(
            **raw, event_type=event_type, status=WebhookEvent.Status.DUPLICATE, processed_at=timezone.now()
        )
        return Receipt(200, "duplicate: already received", event)
    transaction.on_commit(lambda: schedule_processing(event.connection_id))
    return Receipt(200, "accepted", event)


def single_statement() -> contextlib.AbstractContextManager[Any]:
    """Isolate one statement that may fail. In autocommit (a request) a failed INSERT harms nothing and costs one
    round trip; inside a transaction it needs a savepoint to leave the transaction usable."""
    return contextlib.nullcontext() if transaction.get_autocommit() else transaction.atomic()


def schedule_processing(connection_id: int) -> None:
    """Queue one processing run for the connection unless one is already due: a burst of callbacks costs a few
    task messages, not one each. A key that outlives a lost task expires; the minute sweep catches the rest."""
    from integrations.tasks import process_received_callbacks  # tasks import this module

    if cache.add(f"webhooks:scheduled:{connection_id}", True, timeout=PROCESSING_WINDOW_SECONDS * 5):
        process_received_callbacks.apply_async((connection_id,), countdown=PROCESSING_WINDOW_SECONDS)


def process_received(connection_id: int | None = None, limit: int = 1000) -> dict[str, int]:
    """Apply stored events that wait for processing, oldest first; each in its own transaction."""
    if connection_id is not None:
        cache.delete(f"webhooks:scheduled:{connection_id}")
    waiting = WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, event_id__isnull=False)
    if connection_id is not None:
        waiting = waiting.filter(connection_id=connection_id)
    counts = {"processed": 0, "failed": 0}
    while True:
        batch = list(waiting.select_related("connection__client").order_by("pk")[:limit])
        if not batch:
            return counts
        for event in batch:
            try:
                process(event)
                counts["processed"] += 1
            except Exception:  # stored on the event by process(); the others still run
                counts["failed"] += 1


def parse_callback(content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadDelivery(f"Content-Type must be application/json, not {content_type or 'missing'}.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDelivery(f"Body is not valid JSON: {exc}.") from exc
    if not isinstance(payload, dict):
        raise BadDelivery("Body must be a JSON object.")
    missing = [name for name in ("event_id", "callback_type", "event_date", "subscription") if not payload.get(name)]
    if missing:
        raise BadDelivery(f"Missing field(s): {', '.join(missing)}.")
    if payload["callback_type"] not in CALLBACK_TYPES:
        raise BadDelivery(f"Unknown callback_type {payload['callback_type']!r}: expected {sorted(CALLBACK_TYPES)}.")
    if parse_vibes_datetime(payload["event_date"]) is None:
        raise BadDelivery(f"event_date {payload['event_date']!r} is not a date-time.")
    subscription = payload["subscription"]
    if not isinstance(subscription, dict) or not (subscription.get("person") or {}).get("id"):
        raise BadDelivery("Missing field: subscription.person.id.")
    if not (subscription.get("subscription_list") or {}).get("id"):
        raise BadDelivery("Missing field: subscription.subscription_list.id.")
    return payload


# --- Applying -----------------------------------------------------------------------------------------------------


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


def process(event: WebhookEvent) -> str:
    """Apply one stored event and record the outcome in the same transaction. The event row is locked while it is
    applied, so two processors never apply it at once, and a processed event is left alone. Failures are stored on
    the event, with the traceback, and re-raised for the task to retry."""
    waiting = [WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED]
    try:
        with transaction.atomic():
            claimed = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event.pk, status__in=waiting)
            if not list(claimed.values_list("pk", flat=True)):
                return event.status  # done already, or being applied by another worker right now
            status, detail = apply_callback(event.connection, json.loads(event.body))
            event.status, event.error, event.traceback, event.processed_at = status, detail, "", timezone.now()
            event.save(update_fields=["status", "error", "traceback", "processed_at"])
    except Exception as exc:
        event.status, event.error = WebhookEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
        event.traceback = traceback.format_exc()[-10_000:]
        event.save(update_fields=["status", "error", "traceback"])
        raise
    return event.status


def apply_callback(connection: Connection, payload: dict[str, Any]) -> tuple[str, str]:
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


def vibes_external_id(member: Member) -> str:
    """The id the portal gives Vibes as external_person_id: the Annex Cloud id, else a portal id."""
    return member.annex_cloud_id or f"portal-{member.pk}"


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


def reprocess(events: Any) -> dict[str, int]:
    """Run failed (or any) stored events again; each is applied at most once."""
    counts = {"processed": 0, "failed": 0}
    retryable = [WebhookEvent.Status.FAILED, WebhookEvent.Status.RECEIVED]
    for event in events.filter(status__in=retryable, event_id__isnull=False).select_related("connection__client"):
        event.status = WebhookEvent.Status.RECEIVED
        try:
            process(event)
            counts["processed"] += 1
        except Exception:  # stored on the event by process()
            counts["failed"] += 1
    return counts
