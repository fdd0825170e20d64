"""The one owner of connection state: which connections are usable, verifying (one skeleton for every vendor),
activating, marking failing, recovering, disabling and resetting; and building a vendor API for a connection whose
call log keeps that state up to date.

States: draft (not verified yet) → active ⇄ failing (calls keep being tried, so a recovery is noticed) → disabled
(no calls at all until an admin resets it to draft and verifies it again).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations import rollups
from integrations.alerts import alert
from integrations.hooks import ChecksConnection, ExplainsAuthFailure, hook
from integrations.http import AuthError, CallRecord, VendorAPI, VendorError
from integrations.inbound import Refusal
from integrations.models import Client, Connection, VendorCall
from integrations.outcome import NotReady, Outcome
from integrations.queue import enqueue
from integrations.ratelimit import rate_limiter

API = TypeVar("API", bound=VendorAPI)
Status = Connection.Status
# Verified and not switched off: calls may be made. A failing connection is still tried, so that it can recover.
USABLE_STATUSES = (Status.ACTIVE, Status.FAILING)


def usable(vendor: str | None = None) -> QuerySet[Connection]:
    connections = Connection.objects.filter(status__in=USABLE_STATUSES)
    return connections.filter(vendor=vendor) if vendor else connections


def usable_connection(client: Client | int, vendor: str) -> Connection | None:
    client_id = client if isinstance(client, int) else client.pk
    return usable(vendor).filter(client_id=client_id).select_related("client").first()


def connection_of(client: Client, vendor: str) -> Connection | None:
    return Connection.objects.filter(client=client, vendor=vendor).first()


# --- Verifying ---------------------------------------------------------------------------------------------------

Check = Callable[[Connection], str]


def verify(connection: Connection, *, activate: bool = True) -> Outcome:
    """Verify a connection with its vendor's side-effect-free check (`check_connection` in the vendor's flows).

    A passed check makes a draft or failing connection active (unless `activate` is False); a failed one stores
    what to do and marks an active connection failing. A disabled connection is not called."""
    if problem := cannot_verify(connection):
        return Outcome.failure(problem)
    check = run_check(connection)
    if check.ok:
        return passed(connection, check.message, activate=activate)
    return failed(connection, check)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    message: str
    # The vendor refused the credentials (as opposed to: unreachable, erring, or the portal not ready to ask).
    refused: bool = False
    # The vendor was asked (a NotReady check never called it: nothing to record on the connection).
    asked: bool = True


def cannot_verify(connection: Connection) -> str:
    """Why the connection cannot be verified now, in words ("" when it can)."""
    if connection.status == Status.DISABLED:
        return f"{connection} is disabled: return it to draft first, then verify it."
    if vendor_check(connection) is None:
        return f"{connection.spec.label} connections cannot be verified from the portal yet."
    if missing := missing_secrets(connection):
        return f"Enter the missing secrets before verifying: {', '.join(missing)}."
    return ""


def run_check(connection: Connection) -> CheckResult:
    """Ask the vendor with the connection's secrets as they are on this instance (saved or not)."""
    check = vendor_check(connection)
    assert check is not None  # cannot_verify() first
    try:
        result = check(connection)
    except NotReady as exc:
        return CheckResult(ok=False, message=str(exc), asked=False)
    except AuthError as exc:
        return CheckResult(ok=False, message=explain_auth_failure(connection, exc), refused=True)
    except VendorError as exc:
        return CheckResult(ok=False, message=f"{connection.spec.label} could not be verified: {exc}. {exc.hint}")
    return CheckResult(ok=True, message=result)


def passed(connection: Connection, result: str, *, activate: bool) -> Outcome:
    save_check_result(connection, ok=True, result=result)
    first_activation = activate and connection.status == Status.DRAFT
    if activate or connection.status == Status.FAILING:
        mark_active(connection)
    if first_activation:
        # Members changed before the vendor was connected are sent now (by the member-state sweep).
        enqueue("members.backfill_vendor_state", connection.pk)
    return Outcome.success(result)


def failed(connection: Connection, check: CheckResult) -> Outcome:
    if check.asked:
        save_check_result(connection, ok=False, result=check.message)
        mark_failing(connection, check.message)
    return Outcome.failure(check.message)


# The connection whose newly entered secrets are being tried: a refusal is the new secrets' fault, not the
# connection's, so its calls don't count as failures (no "failing", no alert) while they are tried.
_trying_secrets_of: ContextVar[int | None] = ContextVar("trying_secrets_of", default=None)


def save_and_verify(connection: Connection, entered: dict[str, str], *, activate: bool = True) -> Outcome:
    """ "Save and verify" for every vendor: the connection is saved with the secrets it had, the entered ones (blank =
    keep) are tried, and stored only if the vendor does not refuse them. Refused secrets are not kept: the previous
    ones stay (none, for a new connection) and an active connection is not marked failing for a key it never used.
    A vendor that cannot be reached does not judge the secrets: they are kept, to verify again later."""
    previous = {} if connection.secrets_unreadable else dict(connection.secrets)
    connection.save()
    changed = update_secrets(connection, entered)
    if not changed or cannot_verify(connection):
        connection.save()
        return verify(connection, activate=activate)
    token = _trying_secrets_of.set(connection.pk)
    try:
        check = run_check(connection)
    finally:
        _trying_secrets_of.reset(token)
    if not check.refused:
        connection.save(update_fields=["secrets", "updated_at"])
        return passed(connection, check.message, activate=activate) if check.ok else failed(connection, check)
    connection.secrets = previous
    kept = "the previous value is still stored" if any(previous.get(n) for n in changed) else "nothing is stored"
    labels = {secret.name: secret.label for secret in connection.spec.secrets}  # the form's words, not field names
    entered_words = ", ".join(labels.get(name, name) for name in changed)
    message = f"{check.message} What you entered ({entered_words}) was not kept: {kept}."
    save_check_result(connection, ok=False, result=message)
    return Outcome.failure(message)


def explain_auth_failure(connection: Connection, error: AuthError) -> str:
    """The vendor's own explanation of refused credentials (`explain_auth_failure` in its flows), else a generic one."""
    if (flows := hook(connection.spec, ExplainsAuthFailure)) is not None:
        return flows.explain_auth_failure(error)
    return f"{connection.spec.label} rejected the credentials: {error.sentence} {error.hint}"


def vendor_check(connection: Connection) -> Check | None:
    flows = hook(connection.spec, ChecksConnection)
    return flows.check_connection if flows is not None else None


def save_check_result(connection: Connection, *, ok: bool, result: str) -> None:
    connection.last_checked_at = timezone.now()
    connection.last_check_ok = ok
    connection.last_check_result = result
    connection.save(update_fields=["last_checked_at", "last_check_ok", "last_check_result", "updated_at"])


# --- Transitions -------------------------------------------------------------------------------------------------


def mark_active(connection: Connection) -> None:
    _set(connection, status=Status.ACTIVE, consecutive_failures=0)


def mark_failing(connection: Connection, reason: str) -> None:
    """An active connection becomes failing with the reason shown on the dashboard (and e-mailed to the site
    admins); other states are kept."""
    turned = Connection.objects.filter(pk=connection.pk, status=Status.ACTIVE).update(
        status=Status.FAILING, last_check_ok=False, last_checked_at=timezone.now(), last_check_result=reason
    )
    connection.refresh_from_db(fields=["status", "last_check_ok", "last_checked_at", "last_check_result"])
    if turned:
        alert(f"connection-failing:{connection.pk}", f"{connection} is failing", reason)


def recover(connection: Connection) -> None:
    """A call succeeded: the failure count restarts and a failing connection is active again, its old error cleared."""
    if not connection.consecutive_failures and connection.status != Status.FAILING:
        return
    Connection.objects.filter(pk=connection.pk).update(consecutive_failures=0)
    Connection.objects.filter(pk=connection.pk, status=Status.FAILING).update(
        status=Status.ACTIVE,
        last_check_ok=True,
        last_checked_at=timezone.now(),
        last_check_result="Recovered: calls succeed again.",
    )
    connection.refresh_from_db(fields=["consecutive_failures", "status", "last_check_ok", "last_check_result"])


def record_failure(connection: Connection, error: VendorError) -> None:
    """Count one failed call; at the threshold (or at once for bad credentials) an active connection is failing."""
    Connection.objects.filter(pk=connection.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    connection.refresh_from_db(fields=["consecutive_failures", "status"])
    if connection.consecutive_failures >= settings.CONNECTION_FAILURE_THRESHOLD or isinstance(error, AuthError):
        mark_failing(connection, error.for_admin)


def disable(connections: QuerySet[Connection]) -> int:
    return connections.update(status=Status.DISABLED)


def reset_to_draft(connections: QuerySet[Connection]) -> int:
    return connections.update(status=Status.DRAFT, consecutive_failures=0)


def leave_disabled(connection: Connection) -> None:
    """Re-entering credentials of a disabled connection brings it back to draft, ready to verify."""
    if connection.status == Status.DISABLED:
        connection.status = Status.DRAFT


def _set(connection: Connection, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(connection, name, value)
    connection.save(update_fields=[*fields, "updated_at"])


# --- Calls -------------------------------------------------------------------------------------------------------

# The calls recorded inside `noting_calls()`, in order; None outside it.
_noted_calls: ContextVar[list[VendorCall] | None] = ContextVar("noted_calls", default=None)


@contextmanager
def noting_calls() -> Iterator[list[VendorCall]]:
    """The vendor calls recorded in the block, as they are recorded: how a flow that works for one member (a sync)
    tells which rows of the call log were made for it — the log itself names no member."""
    noted: list[VendorCall] = []
    token = _noted_calls.set(noted)
    try:
        yield noted
    finally:
        _noted_calls.reset(token)


class ConnectionCallLog:
    """Writes a VendorCall row per attempt and keeps the connection's health."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def record(self, call: CallRecord) -> None:
        """One row per attempt. A successful call is a compact row (connection, method, endpoint, status, latency,
        time, attempt): at ~10 million calls a day its bodies and headers would be most of the log's size and are
        rarely read, and its URL keeps only its path and query (the connection says the host). All of it is kept for
        failed and uncertain calls (the evidence), and for successful ones within a debugging window
        (VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL) or a sample (VENDOR_CALL_BODY_SAMPLE_RATE)."""
        keep = bool(call.error_type) or self.keeps_successful_bodies()
        with transaction.atomic():  # the row and its rollup in one commit: at 10 M calls a day a commit is the cost
            self._write(call, keep)
            rollups.call_recorded(self.connection, call)

    def _write(self, call: CallRecord, keep: bool) -> None:
        row = VendorCall.objects.create(
            connection=self.connection,
            method=call.method,
            url=call.url if keep else endpoint(call.url),
            attempt=call.attempt,
            request_headers=call.request_headers if keep else {},
            request_body=call.request_body if keep else "",
            status_code=call.status_code,
            response_body=call.response_body if keep else "",
            latency_ms=call.latency_ms,
            error_type=call.error_type,
            error=call.error,
        )
        if (noted := _noted_calls.get()) is not None:
            noted.append(row)

    @staticmethod
    def keeps_successful_bodies() -> bool:
        try:
            until = parse_datetime(settings.VENDOR_CALL_BODIES_FOR_SUCCESS_UNTIL or "")
        except ValueError:  # well-formed but impossible ("2026-13-40T00:00"): no window, never a lost call row
            until = None
        if until is not None:
            if timezone.is_naive(until):
                until = timezone.make_aware(until, UTC)  # a moment without an offset is read as UTC
            if timezone.now() < until:
                return True
        return random.random() < settings.VENDOR_CALL_BODY_SAMPLE_RATE

    def succeeded(self) -> None:
        recover(self.connection)

    def failed(self, error: VendorError) -> None:
        if error.counts_against_connection and _trying_secrets_of.get() != self.connection.pk:
            record_failure(self.connection, error)


def endpoint(url: str) -> str:
    """A URL's path and query ("/v1/events?page=2"): what a compact call row keeps of it (the bytes of the scheme
    and host, the same on every call of a connection, would be a fifth of the row)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class ConnectionDisabled(Exception):
    """A disabled connection makes no calls until an admin returns it to draft and verifies it."""


class SecretsUnreadable(VendorError):
    """The connection's secrets are sealed with a key FIELD_ENCRYPTION_KEYS no longer holds, so they read as blank:
    no call is made (it would go out with empty credentials). A VendorError that is not a refusal, so every flow
    keeps its work waiting (deferred, pending) with this message, and tries again once the secrets are back."""

    kind = "secrets_unreadable"
    counts_against_connection = False  # no call was made; the connection is marked failing directly, with this reason
    default_hint = (
        "A site admin enters the connection's secrets again, or adds the key that sealed them back to "
        "FIELD_ENCRYPTION_KEYS (after the current one) and runs `manage.py rotate_encryption_keys`."
    )


def unreadable_secrets_message(connection: Connection) -> str:
    """Why the connection's secrets cannot be used, naming the key id that sealed them (a hash, not the key)."""
    key_id = getattr(connection.secrets, "key_id", "")
    sealed_with = f" (sealed with key {key_id}, which FIELD_ENCRYPTION_KEYS no longer holds)" if key_id else ""
    return f"The secrets of {connection} cannot be decrypted{sealed_with}; no call was made."


def secrets_unreadable_refusal(connection: Connection) -> Refusal:
    """A callback whose check needs a secret that cannot be decrypted is not judged now: a 503 makes the vendor send
    it again later (a 401 or 403 would be final), by when the secrets may be back."""
    retry_after = {"Retry-After": str(settings.WEBHOOK_RETRY_AFTER_SECONDS)}
    return Refusal(503, f"{unreadable_secrets_message(connection)} Send it again later.", retry_after)


def refuse_unreadable_secrets(connection: Connection) -> None:
    """Raise SecretsUnreadable (and mark an active connection failing with the reason, which alerts the site admins
    once) when the connection's secrets cannot be decrypted."""
    if not connection.secrets_unreadable:
        return
    error = SecretsUnreadable(connection.vendor, unreadable_secrets_message(connection))
    mark_failing(connection, error.for_admin)
    raise error


def api_for(connection: Connection, api_class: type[API], **kwargs: Any) -> API:
    """A vendor API object configured from a connection: its URL, its secrets (for redaction too), its rate
    limits (shared by every process through the cache, see integrations/ratelimit.py), and a call log into
    VendorCall rows. The vendor's default connection limit never holds an endpoint below the limit the vendor
    publishes for it (Attentive's messages: 150/s, not the default 10/s); a limit an admin chose does."""
    if connection.status == Status.DISABLED:
        raise ConnectionDisabled(
            f"{connection} is disabled: return it to draft in the admin and verify it to use it again."
        )
    refuse_unreadable_secrets(connection)
    key = f"connection:{connection.pk}"
    defaults: dict[str, Any] = {
        "secret_values": [str(v) for v in connection.secrets.values() if v],
        "call_log": ConnectionCallLog(connection),
        "rate_limiter": rate_limiter(key, connection.rate_limit_per_second),
        "endpoint_rate_limiters": {
            endpoint: rate_limiter(f"{key}:{endpoint}", rate)
            for endpoint, rate in api_class.endpoint_rate_limits.items()
        },
        "connection_limit_on_published_endpoints": connection.rate_limit_chosen,
    }
    return api_class(connection.effective_base_url, **{**defaults, **kwargs})


# --- Secrets -----------------------------------------------------------------------------------------------------


def update_secrets(connection: Connection, new_values: dict[str, str]) -> list[str]:
    """Merge secrets: a blank value keeps the stored one. Returns the names that changed (never the values)."""
    changed = [name for name, value in new_values.items() if value and connection.secrets.get(name) != value]
    connection.secrets = {**connection.secrets, **{name: new_values[name] for name in changed}}
    return changed


def missing_secrets(connection: Connection) -> list[str]:
    return [spec.label for spec in connection.spec.secrets if spec.required and not connection.secrets.get(spec.name)]


def validate_secret(value: str) -> None:
    """A secret goes into HTTP headers: no control characters (a newline would break or split the header)."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValidationError("A secret cannot contain line breaks or other control characters: paste it again.")


def mask(value: str) -> str:
    """Show only that a secret is set and its last four characters."""
    if not value:
        return "not set"
    return f"••••{value[-4:]}" if len(value) > 8 else "••••"
