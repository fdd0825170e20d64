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
from typing import Any

from django.http import HttpRequest

from integrations.inbound import BadDelivery, Delivery, InboundHandler, Refusal
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
    networks = allowed_addresses(connection)
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


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


def delivery_attempt(value: Any) -> int | None:
    """Vibes sends the attempt number as a string ("1")."""
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 6 else None


class VibesCallbacks(InboundHandler):
    vendor = "vibes"

    def refusal(self, connection: Connection, request: HttpRequest) -> Refusal | None:
        remote_addr = request.META.get("REMOTE_ADDR", "")
        if not address_allowed(connection, remote_addr):
            return Refusal(403, f"{remote_addr} may not deliver callbacks here.")
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
