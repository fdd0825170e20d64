"""Receiving vendor callbacks, the part every vendor shares: store every delivery raw first, deduplicate on the
vendor's event id, answer fast, process each event once (oldest first) in a task after commit, and reprocess.

Each receiving vendor has a `webhooks.py` with an `InboundHandler`: what a valid delivery looks like (its event id
and type), who may deliver it, and how an event is applied. Vendors retry 3xx/5xx and treat 4xx as final, so a bad
delivery gets a 400 with its reason (and is kept for inspection), a duplicate a 2xx, and a 5xx goes out only when
the delivery could not be stored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from integrations.hooks import ReceivesCallbacks, hook
from integrations.models import Connection, WebhookEvent
from integrations.queue import task_named
from integrations.vendors import VENDORS, registry_changed
from members.changes import changed_by

logger = logging.getLogger(__name__)
# Callbacks arriving within this many seconds are processed by one task run.
PROCESSING_WINDOW_SECONDS = 1
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For", "X-Request-Id")
Status = WebhookEvent.Status


class BadDelivery(ValueError):
    """A delivery that can never be applied; the message says why."""


def json_object(body: bytes, what: str) -> dict[str, Any]:
    """A delivery's body as a JSON object, or BadDelivery saying why it is not one (`what` names the vendor's
    deliveries in the message, e.g. "a Vibes callback")."""
    if b"\x00" in body:
        raise BadDelivery("Body contains NUL bytes.")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDelivery(f"Body is not valid JSON: {exc}.") from exc
    except RecursionError as exc:
        raise BadDelivery(f"Body is nested too deeply to be {what}.") from exc
    if not isinstance(payload, dict):
        raise BadDelivery("Body must be a JSON object.")
    return payload


@dataclass(frozen=True)
class Delivery:
    """What a handler reads from a valid delivery: the dedup key (event id and type), and the vendor's id and
    attempt number of this delivery when it gives them (kept for tracing, not for dedup)."""

    event_id: str
    event_type: str
    delivery_id: str = ""
    delivery_attempt: int | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a request may not deliver to a connection (wrong address, missing credentials)."""

    status: int
    detail: str
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class Receipt:
    status: int
    detail: str
    event: WebhookEvent | None = None


class InboundHandler:
    """Base of each vendor's callback handler (in its webhooks.py)."""

    vendor: str = ""

    def refusal(self, connection: Connection, request: HttpRequest) -> Refusal | None:
        """Per-connection guards (IP allow-list, HTTP Basic); None lets the delivery in."""
        return None

    def parse(self, content_type: str, body: bytes) -> Delivery:
        """Validate a delivery; raise BadDelivery with the reason if it can never be applied."""
        raise NotImplementedError

    def apply(self, event: WebhookEvent) -> tuple[str, str]:
        """Apply one stored event (inside a transaction, the event row locked); returns (status, detail)."""
        raise NotImplementedError


def client_address(request: HttpRequest) -> str:
    """The address that delivered a request. Behind a trusted proxy (TRUSTED_PROXIES) it is the last address in
    X-Forwarded-For that is not one of those proxies; otherwise REMOTE_ADDR, since anyone can write the header."""
    remote = request.META.get("REMOTE_ADDR", "")
    if not in_networks(remote, settings.TRUSTED_PROXIES):
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    for address in reversed(forwarded):
        if not in_networks(address, settings.TRUSTED_PROXIES):
            return address
    return remote


def in_networks(address: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def handler_for(vendor: str) -> InboundHandler:
    handler = _handlers.get(vendor)
    if handler is None:
        # Checking a module against its capability (a runtime Protocol) costs more than storing a delivery's row:
        # once per vendor, until the registry changes.
        module = hook(VENDORS[vendor], ReceivesCallbacks)
        if module is None:
            raise LookupError(f"{VENDORS[vendor].label} does not deliver callbacks.")
        handler = _handlers[vendor] = module.HANDLER
    return handler


_handlers: dict[str, InboundHandler] = {}


def forget_handlers(**kwargs: Any) -> None:
    _handlers.clear()


registry_changed.connect(forget_handlers, dispatch_uid="integrations.inbound.forget_handlers")


# --- Receiving ----------------------------------------------------------------------------------------------------


def receive(connection: Connection, *, headers: dict[str, str], body: bytes, remote_addr: str | None) -> Receipt:
    """Store every delivery as received, in one write: a valid new event carries its event id (the dedup key), a
    repeat of it is stored as a duplicate, a bad one as rejected with the reason. New events are processed by a
    task after commit."""
    raw = {
        "connection": connection,
        "headers": {k: v for k, v in headers.items() if k in KEPT_HEADERS},
        # Stored as text: undecodable bytes and NUL (which PostgreSQL text cannot hold) become U+FFFD.
        "body": body[: settings.WEBHOOK_MAX_BODY_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd"),
        "remote_addr": remote_addr,
    }
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return reject(raw, f"Body larger than {settings.WEBHOOK_MAX_BODY_BYTES} bytes; only its start is kept.", 413)
    try:
        delivery = handler_for(connection.vendor).parse(headers.get("Content-Type", ""), body)
    except BadDelivery as exc:
        return reject(raw, str(exc))
    return store_event(raw, delivery)


def reject(raw: dict[str, Any], reason: str, status: int = 400) -> Receipt:
    """Kept for inspection, answered 4xx (final for the vendor: it would only send the same again)."""
    event = WebhookEvent.objects.create(**raw, status=Status.REJECTED, error=reason, processed_at=timezone.now())
    return Receipt(status, reason, event)


def store_event(raw: dict[str, Any], delivery: Delivery) -> Receipt:
    """The unique (connection, event_id, event_type) decides between two copies, even ones arriving at the same
    instant: the loser is stored as a duplicate and answered 200. On PostgreSQL the INSERT itself stores a repeat as
    a duplicate (the dedup key's trigger, migration 0020) and returns that status; SQLite's unique constraint fails
    it, and the repeat is stored by a second INSERT."""
    fields = {
        **raw,
        "event_type": delivery.event_type,
        "delivery_id": delivery.delivery_id,
        "delivery_attempt": delivery.delivery_attempt,
    }
    try:
        with single_statement():
            event = WebhookEvent.objects.create(**fields, event_id=delivery.event_id)
    except IntegrityError:
        event = WebhookEvent.objects.create(**fields, status=Status.DUPLICATE, processed_at=timezone.now())
    if event.status == Status.DUPLICATE:
        event.event_id = None  # as stored: the event's id is its first delivery's
        return Receipt(200, "duplicate: already received", event)
    # Stored is answered 2xx whatever fails after it: `robust` logs an error of the queueing instead of raising it.
    transaction.on_commit(lambda: schedule_processing(event.connection_id), robust=True)
    return Receipt(200, "accepted", event)


def single_statement() -> contextlib.AbstractContextManager[Any]:
    """Isolate one statement that may fail. In autocommit (a request) a failed INSERT harms nothing and costs one
    round trip; inside a transaction it needs a savepoint to leave the transaction usable."""
    return contextlib.nullcontext() if transaction.get_autocommit() else transaction.atomic()


# Per process: when it last made sure a processing run is queued for a connection (see schedule_processing).
_scheduled_here: dict[int, float] = {}


def schedule_processing(connection_id: int) -> None:
    """Queue one processing run for the connection unless one is already due: a burst of callbacks costs a few
    task messages, not one each. A key that outlives a lost task expires; the minute sweep catches the rest."""
    now = time.monotonic()
    if _scheduled_here.get(connection_id, 0.0) > now:
        return  # this process queued the run that will apply it: no round trip to the cache per delivery
    # Half the run's countdown: a delivery this process skips is stored well before that run reads the waiting ones.
    _scheduled_here[connection_id] = now + PROCESSING_WINDOW_SECONDS / 2
    key = f"webhooks:scheduled:{connection_id}"
    try:
        if not cache.add(key, True, timeout=PROCESSING_WINDOW_SECONDS * 5):
            return
        task = task_named("integrations.process_received_callbacks")
        task.apply_async((connection_id,), countdown=PROCESSING_WINDOW_SECONDS, retry=False)
    except Exception:  # the cache or the broker is down: the delivery is stored, the minute sweep applies it
        with contextlib.suppress(Exception):
            cache.delete(key)
        logger.warning("Could not queue callback processing for connection %s; the sweep will.", connection_id)


# --- Processing ---------------------------------------------------------------------------------------------------


def process_received(
    connection_id: int | None = None, *, client_id: int | None = None, limit: int = 1000
) -> dict[str, int]:
    """Apply stored events that wait for processing, oldest first; each in its own transaction. Walks forward by
    id, so rows another processor holds are skipped, not waited on; counts only what this processor applied."""
    if connection_id is not None:
        _scheduled_here.pop(connection_id, None)
        cache.delete(f"webhooks:scheduled:{connection_id}")
    waiting = WebhookEvent.objects.filter(status=Status.RECEIVED, event_id__isnull=False)
    if connection_id is not None:
        waiting = waiting.filter(connection_id=connection_id)
    if client_id is not None:
        waiting = waiting.filter(connection__client_id=client_id)
    counts = {"processed": 0, "failed": 0, "skipped": 0}
    last_pk = 0
    while batch := list(waiting.filter(pk__gt=last_pk).select_related("connection__client").order_by("pk")[:limit]):
        last_pk = batch[-1].pk
        for event in batch:
            try:
                applied = process(event)
            except Exception:  # stored on the event by process(); the others still run
                counts["failed"] += 1
            else:
                counts["processed" if applied else "skipped"] += 1
    return counts


def process(event: WebhookEvent) -> bool:
    """Apply one stored event with its vendor's handler and record the outcome in the same transaction; returns
    whether this call applied it. The event row is locked (SKIP LOCKED) while it is applied, so two processors
    never apply it at once, and a processed event is left alone. Failures are stored on the event, with the
    traceback, and re-raised for the task to retry."""
    waiting = [Status.RECEIVED, Status.FAILED]
    try:
        with transaction.atomic():
            claimed = WebhookEvent.objects.select_for_update(skip_locked=True).filter(pk=event.pk, status__in=waiting)
            if not list(claimed.values_list("pk", flat=True)):
                return False  # done already, or being applied by another worker right now
            with changed_by(callback_label(event), source=event):
                status, detail = handler_for(event.connection.vendor).apply(event)
            event.status, event.error, event.traceback, event.processed_at = status, detail, "", timezone.now()
            event.save(update_fields=["status", "error", "traceback", "processed_at"])
    except Exception as exc:
        event.status, event.error = Status.FAILED, f"{type(exc).__name__}: {exc}"
        event.traceback = traceback.format_exc()[-10_000:]
        event.save(update_fields=["status", "error", "traceback"])
        raise
    return True


def callback_label(event: WebhookEvent) -> str:
    """Who a callback's changes to members are by, on their timeline."""
    return f"a {VENDORS[event.connection.vendor].label} callback (event {event.event_id or event.pk})"


def reprocess(events: QuerySet[WebhookEvent]) -> dict[str, int]:
    """Run failed (or waiting) stored events again, whatever their vendor; each is applied at most once."""
    counts = {"processed": 0, "failed": 0}
    retryable = [Status.FAILED, Status.RECEIVED]
    for event in events.filter(status__in=retryable, event_id__isnull=False).select_related("connection__client"):
        event.status = Status.RECEIVED
        try:
            counts["processed"] += process(event)
        except Exception:  # stored on the event by process()
            counts["failed"] += 1
    return counts


# --- Finding the connection of a callback URL ---------------------------------------------------------------------

# Callback URL token -> (connection without secrets, expiry). Busy callback endpoints resolve their connection from
# memory; a change made in this process is seen at once (a saved connection clears the cache), elsewhere within
# the TTL.
INBOUND_LOOKUP_TTL_SECONDS = 5.0
_inbound: dict[tuple[str, str], tuple[Connection | None, float]] = {}
_inbound_lock = threading.Lock()


def connection_for_inbound_token(vendor: str, token: str) -> Connection | None:
    key = (vendor, token)
    now = time.monotonic()
    cached = _inbound.get(key)
    if cached is not None and cached[1] > now:
        return cached[0]
    connection = Connection.objects.defer("secrets").filter(vendor=vendor, inbound_token=token).first()
    with _inbound_lock:
        _inbound[key] = (connection, now + INBOUND_LOOKUP_TTL_SECONDS)
    return connection


def forget_inbound_lookups() -> None:
    """Drop every cached token lookup (a connection was saved: its token or status may have changed)."""
    with _inbound_lock:
        _inbound.clear()
