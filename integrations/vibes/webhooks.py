"""Vibes subscription callbacks (`subscription_added` / `subscription_removed`): who may deliver them, what a valid
one looks like, and applying one (see integrations/inbound.py for storing, dedup and processing).

Vibes retries 3xx/5xx (every 5 minutes, 5 times, with a 2-second timeout) and treats 4xx as final. Events may come
twice or out of order: (`event_id`, `callback_type`) is the dedup key — Vibes' own examples reuse one event id for a
`subscription_added` and a `subscription_removed` — and a callback older than the state it would change
(`event_date`) is ignored. `callback_id` and `delivery_attempt` are kept on the stored event.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from integrations.connections import secrets_unreadable_refusal
from integrations.inbound import (
    BadDelivery,
    Delivery,
    InboundHandler,
    Refusal,
    client_address,
    in_networks,
    json_object,
)
from integrations.json_text import unstorable_string_reason
from integrations.models import Connection, WebhookEvent
from integrations.vibes.flows import apply_subscription_callback, parse_vibes_datetime

CALLBACK_TYPES = {"subscription_added", "subscription_removed"}
# Published source addresses of Vibes callbacks, offered as presets for a connection's IP allow-list.
VIBES_IP_PRESETS = {
    "vibes-us": ["35.155.139.143", "52.32.61.199", "35.161.244.84", "18.205.120.48", "52.22.43.57", "18.232.9.131"],
    "vibes-eu": ["34.243.232.57", "52.48.241.82", "34.249.188.130", "54.247.36.51", "34.253.250.65", "54.217.181.160"],
}


def allowed_addresses(connection: Connection) -> list[str]:
    entries = connection.settings.get("callback_ip_allowlist") or []
    if isinstance(entries, str):
        entries = [e.strip() for e in entries.replace("\n", ",").split(",") if e.strip()]
    expanded: list[str] = []
    for entry in entries:
        expanded += VIBES_IP_PRESETS.get(entry, [entry])
    return expanded


def address_allowed(connection: Connection, remote_addr: str) -> bool:
    """No list: anyone with the URL. A list: only its addresses; an entry that is not an address or network (saved
    before entries were validated) matches nothing, so a broken list refuses rather than lets everything in."""
    networks = [entry for entry in allowed_addresses(connection) if is_network(entry)]
    if not allowed_addresses(connection):
        return True
    return in_networks(remote_addr, networks)


def is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def basic_credentials(request: HttpRequest) -> tuple[str | None, str | None]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return username, password


def basic_auth_ok(connection: Connection, username: str | None, password: str | None) -> bool:
    expected_user = connection.settings.get("callback_username", "")
    if not expected_user:
        return True
    return hmac.compare_digest(username or "", expected_user) and hmac.compare_digest(
        password or "", connection.secret("callback_password")
    )


# Identifiers longer than this are not Vibes' (they are stored in 100-character columns).
MAX_ID_LENGTH = 100
# The stored opt-out reason holds 50 characters; Vibes' own reasons (user_opt_out, …) are short words.
MAX_REASON_LENGTH = 50
# An event dated further ahead than this is refused: it would make every later event look older forever.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def parse_callback(content_type: str, body: bytes) -> dict[str, Any]:
    """The callback as a dict, or BadDelivery saying in words what is wrong with it (a 400 Vibes will not retry).
    Every field processing reads is checked here, type, length and date, so a stored event never fails later for
    what it carries."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadDelivery(f"Content-Type must be application/json, not {content_type or 'missing'}.")
    payload = json_object(body, "a Vibes callback")
    if (reason := unstorable_string_reason(payload)) is not None:
        raise BadDelivery(f"{reason}.")
    missing = [name for name in ("event_id", "callback_type", "event_date", "subscription") if not payload.get(name)]
    if missing:
        raise BadDelivery(f"Missing {ngettext('field', 'fields', len(missing))}: {', '.join(missing)}.")
    identifier(payload["event_id"], "event_id")
    if not isinstance(payload["callback_type"], str) or payload["callback_type"] not in CALLBACK_TYPES:
        raise BadDelivery(f"Unknown callback_type: expected one of {sorted(CALLBACK_TYPES)}.")
    check_event_date(payload["event_date"])
    optional(payload.get("callback_id"), "callback_id", identifier)
    subscription = payload["subscription"]
    if not isinstance(subscription, dict):
        raise BadDelivery("subscription must be an object.")
    for part in ("person", "subscription_list"):
        if not isinstance(subscription.get(part), dict) or not subscription[part].get("id"):
            raise BadDelivery(f"Missing field: subscription.{part}.id (an object with an id).")
        identifier(subscription[part]["id"], f"subscription.{part}.id")
    check_person(subscription["person"])
    check_subscription_details(subscription)
    return payload


def check_person(person: dict[str, Any]) -> None:
    """The person's fields processing reads: external_id (matched to a member), and the mobile number, which Vibes
    sends as `mobile_phone.mdn` or `mdn`."""
    optional(person.get("external_id"), "subscription.person.external_id", identifier)
    mobile_phone = person.get("mobile_phone")
    if mobile_phone not in (None, ""):
        if not isinstance(mobile_phone, dict):
            raise BadDelivery("subscription.person.mobile_phone must be an object (with an mdn).")
        optional(mobile_phone.get("mdn"), "subscription.person.mobile_phone.mdn", identifier)
    optional(person.get("mdn"), "subscription.person.mdn", identifier)


def check_subscription_details(subscription: dict[str, Any]) -> None:
    """Dates, opt-out reason and acquisition campaign: optional, and when given, of the right type and size."""
    for field in ("opt_in_date", "opt_out_date"):
        optional(subscription.get(field), f"subscription.{field}", vibes_date)
    optional(subscription.get("opt_out_reason"), "subscription.opt_out_reason", reason_text)
    campaign = subscription.get("acquisition_campaign")
    if campaign not in (None, ""):
        if not isinstance(campaign, dict):
            raise BadDelivery("subscription.acquisition_campaign must be an object (with an id).")
        optional(campaign.get("id"), "subscription.acquisition_campaign.id", identifier)


def optional(value: Any, name: str, check: Callable[[Any, str], object]) -> None:
    """Absent (missing, null or "") is fine; anything else must pass `check`."""
    if value is not None and value != "":
        check(value, name)


def identifier(value: Any, name: str) -> str:
    """A Vibes id: a string or number of at most MAX_ID_LENGTH characters, without control characters."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadDelivery(f"{name} must be a string or a number.")
    text = str(value)
    if len(text) > MAX_ID_LENGTH or any(ord(ch) < 32 for ch in text):
        raise BadDelivery(f"{name} must be at most {MAX_ID_LENGTH} printable characters.")
    return text


def reason_text(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_REASON_LENGTH or any(ord(ch) < 32 for ch in value):
        raise BadDelivery(f"{name} must be a string of at most {MAX_REASON_LENGTH} printable characters.")
    return value


def check_event_date(value: Any) -> datetime:
    return vibes_date(value, "event_date")


def vibes_date(value: Any, name: str) -> datetime:
    """A date-time as Vibes writes it, between 2000 and a day from now: an impossible date (2017-02-30) or one that
    cannot be stored (year 1 with an offset) is refused at receipt, naming the field."""
    try:
        when = parse_vibes_datetime(value)
    except (ValueError, OverflowError):
        when = None
    if when is None:
        raise BadDelivery(f"{name} is not a date-time (e.g. 2017-02-15T15:42:23Z).")
    try:
        in_window = EARLIEST <= when <= timezone.now() + MAX_FUTURE
    except OverflowError:  # an offset that takes it past year 1 or 9999 in UTC
        in_window = False
    if not in_window:
        raise BadDelivery(f"{name} is outside the accepted window (from 2000 to a day from now).")
    return when


def delivery_attempt(value: Any) -> int | None:
    """Vibes sends the attempt number as a string ("1")."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 6 else None


class VibesCallbacks(InboundHandler):
    vendor = "vibes"

    def refusal(self, connection: Connection, request: HttpRequest) -> Refusal | None:
        remote_addr = client_address(request)
        if not address_allowed(connection, remote_addr):
            return Refusal(403, f"{remote_addr} may not deliver callbacks here.")
        if connection.settings.get("callback_username") and connection.secrets_unreadable:
            # Read as blank, the password would let in anyone sending an empty one; a 503 makes Vibes send the
            # callback again later (a 401 would be final), by when the secrets may be back.
            return secrets_unreadable_refusal(connection)
        if not basic_auth_ok(connection, *basic_credentials(request)):
            return Refusal(
                401, "Invalid or missing HTTP Basic credentials.", {"WWW-Authenticate": 'Basic realm="vibes-callbacks"'}
            )
        return None

    def parse(self, content_type: str, body: bytes) -> Delivery:
        payload = parse_callback(content_type, body)
        return Delivery(
            event_id=str(payload["event_id"]),
            event_type=payload["callback_type"],
            delivery_id=str(payload.get("callback_id") or "")[:100],
            delivery_attempt=delivery_attempt(payload.get("delivery_attempt")),
        )

    def apply(self, event: WebhookEvent) -> tuple[str, str]:
        return apply_subscription_callback(event.connection, json.loads(event.body))


HANDLER = VibesCallbacks()
