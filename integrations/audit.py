"""The audit trail of people's changes to clients and connections (AuditEntry): who, when, which fields.

A change is recorded as the difference of two states, taken before and after it. A state maps field names to
printable values; secrets appear in it only as a digest (`secret_digest`), kept in memory for the comparison, so
an entry can say "api_key changed" and can never hold the value. Entry points (the admin's save paths, the vendors'
set-up pages, connection actions) call `record` with the person who acted; flows that change state by themselves
(a job finding a connection failing) do not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Model

from integrations.hooks import AuditsClientRecords, hooks
from integrations.models import AuditEntry, Client, Connection
from integrations.vendors import VENDORS

State = dict[str, str]
Action = AuditEntry.Action

SECRET_PREFIX = "secret:"
MAX_VALUE_CHARS = 200
# Digests are keyed by a random key of this process: never stored, and useless for guessing a secret.
_DIGEST_KEY = secrets.token_bytes(32)


def secret_digest(value: str) -> str:
    return hmac.new(_DIGEST_KEY, value.encode(), hashlib.sha256).hexdigest() if value else ""


def client_state(client: Client) -> State:
    """The fields of a client a person edits, with its users and the vendors' records edited on its page."""
    if client.pk is None:
        return {}
    vendor_records = {
        k: v for vendor in hooks(AuditsClientRecords).values() for k, v in vendor.client_audit_state(client).items()
    }
    return {
        "name": client.name,
        "slug": client.slug,
        "site_id": client.site_id,
        "default_region": client.default_region,
        "active": str(client.active),
        "honour_opt_outs_everywhere": str(client.honour_opt_outs_everywhere),
        "users": ", ".join(sorted(client.users.values_list("username", flat=True))),
        **vendor_records,
    }


def connection_state(connection: Connection) -> State:
    """Where a connection sends its calls, how it is set up, its status, and a digest of each secret."""
    state = {
        "client": str(connection.client_id),
        "vendor": connection.vendor,
        "environment": connection.environment,
        "base_url": connection.base_url,
        "status": connection.status,
    }
    state.update(settings_state(connection))
    names = {spec.name for spec in connection.spec.secrets} | set(connection.secrets)
    state.update({SECRET_PREFIX + name: secret_digest(connection.secret(name)) for name in sorted(names)})
    return state


def settings_state(connection: Connection) -> State:
    """The connection's settings as a person sees them: a setting left blank and one filled in with its default read
    the same ("default 72"), so a form that fills in defaults on save is not recorded as the admin's change."""
    spec = VENDORS.get(connection.vendor)
    fields = spec.settings_form_class().base_fields if spec else {}
    state: State = {}
    for name in sorted({*connection.settings, *fields}):
        value = connection.settings.get(name)
        default = fields[name].initial if name in fields else None
        if default is not None and (value in (None, "") or str(value) == str(default)):
            state[f"settings.{name}"] = f"default {default}"
        elif value not in (None, ""):
            state[f"settings.{name}"] = str(value)
    return state


def stored_state(obj: Model) -> State:
    """The state of the saved row (before an edit is saved over it); empty for a new one."""
    if obj.pk is None:
        return {}
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first()
    return state_of(fresh) if fresh is not None else {}


def state_of(obj: Model) -> State:
    if isinstance(obj, Client):
        return client_state(obj)
    if isinstance(obj, Connection):
        return connection_state(obj)
    raise TypeError(f"No audit state for {type(obj).__name__}")


def differences(before: State, after: State) -> list[tuple[str, str]]:
    """(field, line) for each field that differs; a secret's line names it and says what happened, nothing more."""
    lines = []
    for name in sorted(before.keys() | after.keys()):
        old, new = str(before.get(name, "")), str(after.get(name, ""))
        if old == new:
            continue
        if name.startswith(SECRET_PREFIX):
            secret = name.removeprefix(SECRET_PREFIX)
            lines.append((secret, f"{secret} {'set' if not old else 'cleared' if not new else 'changed'}"))
        else:
            lines.append((name, f"{name}: {shorten(old)!r} → {shorten(new)!r}"))
    return lines


def shorten(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"


def record(
    actor: Any, action: str, subject: Model, before: State, after: State, *, note: str = ""
) -> AuditEntry | None:
    """Record a person's action on a client or connection. An edit that changed nothing is not recorded; the other
    actions (verify, delete, …) are, with whatever they changed."""
    changed = differences(before, after)
    if action == Action.CHANGED and not changed:
        return None
    # Recorded before a deletion, so the client still exists; the entry outlives it (SET_NULL).
    client_id = subject.pk if isinstance(subject, Client) else getattr(subject, "client_id", None)
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=getattr(actor, "get_username", lambda: str(actor))(),
        action=action,
        client_id=client_id,
        subject_type=subject._meta.model_name or "",
        subject_id=subject.pk,
        subject=str(subject)[:255],
        fields=[name for name, _ in changed],
        changes=[line for _, line in changed],
        note=note[:2000],
    )


def record_each(
    actor: Any, action: str, connections: Iterable[Connection], change: Callable[[], object], *, note: str = ""
) -> None:
    """Run `change` on some connections and record, per connection, what it did (for the bulk actions)."""
    rows = list(connections)
    before = {c.pk: connection_state(c) for c in rows}
    change()
    for connection in Connection.objects.filter(pk__in=before).select_related("client"):
        record(actor, action, connection, before[connection.pk], connection_state(connection), note=note)
