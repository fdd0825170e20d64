"""Attentive webhooks (`sms.subscribed`, `sms.unsubscribed`, `email.unsubscribed`): who may deliver them, what a valid
one looks like, and applying one (see integrations/inbound.py for storing, dedup and processing).

A site admin creates one webhook per client in Attentive, gives it the connection's webhook URL and pastes its signing
key into the connection. Attentive signs the exact raw body: header `x-attentive-hmac-sha256` is the hex HMAC-SHA256
of it with that key; a delivery without a valid signature is refused (401) before anything is stored. Attentive
retries for up to 3 days and in no particular order, and its events carry no id: (type, timestamp, subscriber,
subscription type) is the dedup key, and `timestamp` (Unix milliseconds) orders them (see flows.apply_webhook_event).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from integrations.attentive.flows import AttentiveEvent, Subscriber, apply_webhook_event
from integrations.connections import secrets_unreadable_refusal
from integrations.inbound import BadDelivery, Delivery, InboundHandler, Refusal, json_object
from integrations.json_text import unstorable_string_reason
from integrations.models import Connection, WebhookEvent
from members.phones import is_e164

SIGNATURE_HEADER = "x-attentive-hmac-sha256"
SUBSCRIPTION_TYPES = ("MARKETING", "TRANSACTIONAL")
# Attentive's event types are short dotted names (sms.subscribed); the stored column holds 50 characters.
MAX_TYPE_LENGTH = 50
MAX_ID_LENGTH = 100
MAX_EMAIL_LENGTH = 254
# An event dated further ahead than this is refused: it would make every later event look older for good.
MAX_FUTURE = timedelta(days=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def signature(signing_key: str, body: bytes) -> str:
    """What Attentive sends in x-attentive-hmac-sha256: the hex HMAC-SHA256 of the raw body."""
    return hmac.new(signing_key.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(signing_key: str, body: bytes, sent: str) -> bool:
    """Compared in constant time (as bytes: a header may hold characters compare_digest refuses as text)."""
    expected = signature(signing_key, body).encode()
    return hmac.compare_digest(expected, sent.strip().lower().encode("utf-8", "replace"))


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


# --- What a valid event looks like ----------------------------------------------------------------------------------


class Problems:
    """The field-level reasons a delivery is refused, said all at once (Attentive treats a 4xx as final)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.messages.append(f"{field}: {message}")

    def raise_any(self) -> None:
        if self.messages:
            raise BadDelivery("; ".join(self.messages) + ".")


def parse_event(content_type: str, body: bytes) -> AttentiveEvent:
    """The event, or BadDelivery naming each field that is wrong (a 400 with the reasons)."""
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise BadDelivery(f"Content-Type must be application/json, not {content_type or 'missing'}.")
    payload = json_object(body, "an Attentive event")
    # A lone surrogate or a NUL anywhere (read by the portal or not) could not be stored nor shown: refused first.
    if (reason := unstorable_string_reason(payload)) is not None:
        raise BadDelivery(f"{reason}.")
    problems = Problems()
    event_type = text(payload.get("type"), "type", problems, MAX_TYPE_LENGTH, required=True)
    timestamp_ms = event_timestamp(payload.get("timestamp"), problems)
    subscriber = subscriber_of(payload.get("subscriber"), problems)
    subscription_type = subscription_type_of(payload.get("subscription"), problems)
    creative = payload.get("creative")
    source = text(creative.get("name"), "creative.name", problems, MAX_ID_LENGTH) if isinstance(creative, dict) else ""
    problems.raise_any()
    return AttentiveEvent(event_type, timestamp_ms, subscriber, subscription_type, source)


def text(value: Any, field: str, problems: Problems, max_length: int, *, required: bool = False) -> str:
    """A string (or, for ids, a number) of printable characters; "" when absent and not required."""
    if value is None or value == "":
        if required:
            problems.add(field, "is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        problems.add(field, "must be a string")
        return ""
    found = str(value)
    if len(found) > max_length or any(ord(ch) < 32 for ch in found):
        problems.add(field, f"must be at most {max_length} printable characters")
        return ""
    return found


def event_timestamp(value: Any, problems: Problems) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add("timestamp", "is required, in Unix milliseconds (an integer, e.g. 1714564800123)")
        return 0
    try:
        when = datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        when = None
    if when is None or not EARLIEST <= when <= timezone.now() + MAX_FUTURE:
        problems.add("timestamp", "is outside the accepted window (from 2000 to a day from now, in milliseconds)")
        return 0
    return value


def subscriber_of(value: Any, problems: Problems) -> Subscriber:
    if not isinstance(value, dict):
        problems.add("subscriber", "is required (an object with phone, email or external_identifiers)")
        return Subscriber()
    phone = text(value.get("phone"), "subscriber.phone", problems, 16)
    if phone and not is_e164(phone):
        problems.add("subscriber.phone", "must be an E.164 number such as +17707651750")
    email = text(value.get("email"), "subscriber.email", problems, MAX_EMAIL_LENGTH)
    if email and "@" not in email:
        problems.add("subscriber.email", "must be an e-mail address")
    identifiers = value.get("external_identifiers")
    client_user_id = ""
    if isinstance(identifiers, dict):
        field = "subscriber.external_identifiers.client_user_id"
        client_user_id = text(identifiers.get("client_user_id"), field, problems, MAX_ID_LENGTH)
    elif identifiers is not None:
        problems.add("subscriber.external_identifiers", "must be an object")
    external_id = text(value.get("external_id"), "subscriber.external_id", problems, MAX_ID_LENGTH)
    if not (phone or email or client_user_id):
        problems.add("subscriber", "needs a phone, an email or external_identifiers.client_user_id to find the member")
    return Subscriber(external_id, phone, email, client_user_id)


def subscription_type_of(value: Any, problems: Problems) -> str:
    if value is None:
        return "MARKETING"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in SUBSCRIPTION_TYPES:
        problems.add("subscription.type", f"must be one of {', '.join(SUBSCRIPTION_TYPES)}")
        return ""
    return kind


def dedup_key(event: AttentiveEvent) -> str:
    """Attentive's events have no id: the same (timestamp, subscriber, subscription type) under one type is one
    event. Hashed when it would not fit the stored id."""
    subscriber = event.subscriber.external_id or event.subscriber.phone or event.subscriber.email
    key = f"{event.timestamp_ms}:{event.subscription_type}:{subscriber}"
    if len(key) <= MAX_ID_LENGTH:
        return key
    return f"{event.timestamp_ms}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


# --- The handler ----------------------------------------------------------------------------------------------------


class AttentiveWebhooks(InboundHandler):
    vendor = "attentive"

    def refusal(self, connection: Connection, request: HttpRequest) -> Refusal | None:
        """Only a body signed with the connection's signing key gets in; nothing is stored for one that is not."""
        if connection.secrets_unreadable:
            return secrets_unreadable_refusal(connection)  # a 503: Attentive sends it again later
        signing_key = connection.secret("webhook_signing_key")
        if not signing_key:
            return Refusal(
                403, "No webhook signing key is set on this Attentive connection: a site admin pastes it there."
            )
        if declared_length(request) > settings.WEBHOOK_MAX_BODY_BYTES:
            # Attentive's events are small; a body this large is not read to check its signature.
            return Refusal(413, f"Body larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes.")
        # Read whole here (bounded above); the view then reads the same bytes from Django's copy.
        if not signature_matches(signing_key, request.body, request.headers.get(SIGNATURE_HEADER, "")):
            return Refusal(401, f"Missing or invalid {SIGNATURE_HEADER} signature.")
        return None

    def parse(self, content_type: str, body: bytes) -> Delivery:
        event = parse_event(content_type, body)
        return Delivery(event_id=dedup_key(event), event_type=event.type)

    def apply(self, event: WebhookEvent) -> tuple[str, str]:
        return apply_webhook_event(event.connection, parse_event("application/json", event.body.encode()))


HANDLER = AttentiveWebhooks()
