"""Flows about a connection itself: building a vendor API for it, logging its calls, tracking its health,
saving its secrets and settings."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import F, QuerySet
from django.utils import timezone

from integrations.http import CallRecord, VendorAPI, VendorError, shared_rate_limiter
from integrations.models import Connection, JobRun, VendorCall

API = TypeVar("API", bound=VendorAPI)


class ConnectionCallLog:
    """Writes a VendorCall row per attempt and keeps the connection's health: failures in a row mark it failing,
    a success marks a failing connection active again."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def record(self, call: CallRecord) -> None:
        VendorCall.objects.create(
            connection=self.connection,
            method=call.method,
            url=call.url,
            attempt=call.attempt,
            request_headers=call.request_headers,
            request_body=call.request_body,
            status_code=call.status_code,
            response_body=call.response_body,
            latency_ms=call.latency_ms,
            error_type=call.error_type,
            error=call.error,
        )

    def succeeded(self) -> None:
        record_success(self.connection)

    def failed(self, error: VendorError) -> None:
        if error.counts_against_connection:
            record_failure(self.connection, error)


def record_success(connection: Connection) -> None:
    if connection.consecutive_failures or connection.status == Connection.Status.FAILING:
        Connection.objects.filter(pk=connection.pk).update(consecutive_failures=0)
        Connection.objects.filter(pk=connection.pk, status=Connection.Status.FAILING).update(
            status=Connection.Status.ACTIVE
        )
        connection.refresh_from_db(fields=["consecutive_failures", "status"])


def record_failure(connection: Connection, error: VendorError) -> None:
    """Count a failure; at the threshold (or at once for bad credentials) an active connection becomes failing."""
    Connection.objects.filter(pk=connection.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    connection.refresh_from_db(fields=["consecutive_failures", "status"])
    limit_reached = connection.consecutive_failures >= settings.CONNECTION_FAILURE_THRESHOLD
    if connection.status == Connection.Status.ACTIVE and (limit_reached or error.kind == "auth"):
        Connection.objects.filter(pk=connection.pk).update(
            status=Connection.Status.FAILING,
            last_check_ok=False,
            last_checked_at=timezone.now(),
            last_check_result=error.for_admin,
        )
        connection.refresh_from_db(fields=["status", "last_check_ok", "last_checked_at", "last_check_result"])


class ConnectionDisabled(Exception):
    """A disabled connection makes no calls until an admin returns it to draft and verifies it."""


def api_for(connection: Connection, api_class: type[API], **kwargs: Any) -> API:
    """A vendor API object configured from a connection: its URL, its secrets (for redaction too), its rate
    limit shared across the process, and a call log into VendorCall rows."""
    if connection.status == Connection.Status.DISABLED:
        raise ConnectionDisabled(
            f"{connection} is disabled: return it to draft in the admin and verify it to use it again."
        )
    key = f"connection:{connection.pk}"
    defaults: dict[str, Any] = {
        "secret_values": [str(v) for v in connection.secrets.values() if v],
        "call_log": ConnectionCallLog(connection),
        "rate_limiter": shared_rate_limiter(key, connection.rate_limit_per_second),
        "endpoint_rate_limiters": {
            endpoint: shared_rate_limiter(f"{key}:{endpoint}", rate)
            for endpoint, rate in api_class.endpoint_rate_limits.items()
        },
    }
    return api_class(connection.effective_base_url, **{**defaults, **kwargs})


def save_check_result(connection: Connection, *, ok: bool, result: str, activate: bool = False) -> None:
    """Store the outcome of a verification; a passed check on request makes the connection active."""
    connection.last_checked_at = timezone.now()
    connection.last_check_ok = ok
    connection.last_check_result = result
    fields = ["last_checked_at", "last_check_ok", "last_check_result", "updated_at"]
    if ok:
        connection.consecutive_failures = 0
        fields.append("consecutive_failures")
        if activate or connection.status == Connection.Status.FAILING:
            connection.status = Connection.Status.ACTIVE
            fields.append("status")
    connection.save(update_fields=fields)


def update_secrets(connection: Connection, new_values: dict[str, str]) -> list[str]:
    """Merge secrets: a blank value keeps the stored one. Returns the names that changed (never the values)."""
    changed = [name for name, value in new_values.items() if value and connection.secrets.get(name) != value]
    connection.secrets = {**connection.secrets, **{name: new_values[name] for name in changed}}
    return changed


def missing_secrets(connection: Connection) -> list[str]:
    return [spec.label for spec in connection.spec.secrets if spec.required and not connection.secrets.get(spec.name)]


def mask(value: str) -> str:
    """Show only that a secret is set and its last four characters."""
    if not value:
        return "not set"
    return f"••••{value[-4:]}" if len(value) > 8 else "••••"


def prune_old_records(older_than_days: int | None = None) -> dict[str, int]:
    """Delete vendor call rows and job runs past the retention period (the every-minute jobs write 1,440 runs a
    day), in batches so a large backlog never locks a table for long."""
    days = settings.RECORD_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return {
        "vendor_calls": delete_in_batches(VendorCall.objects.filter(created_at__lt=cutoff)),
        "job_runs": delete_in_batches(JobRun.objects.filter(started_at__lt=cutoff)),
    }


def delete_in_batches(queryset: QuerySet[Any], batch_size: int = 5000) -> int:
    deleted = 0
    while True:
        batch = list(queryset.values_list("pk", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += queryset.model.objects.filter(pk__in=batch).delete()[0]


# Callback URL token -> (connection without secrets, expiry). Busy callback endpoints resolve their connection from
# memory; a change made in this process is seen at once (save() clears the entry), elsewhere within the TTL.
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
    with _inbound_lock:
        _inbound.clear()
