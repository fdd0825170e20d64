"""Member state that converges: what each vendor should hold for a member, recorded with every change, and the one
reconciler that brings each vendor in line.

Every path that changes a member (admin, API, CSV import, Annex Cloud refresh, vendor callbacks, bulk actions) calls
`record_change` in the same transaction as the change: each vendor whose flows say the change matters to it
(`needs_sync`) gets its `MemberVendorState.desired_version` bumped. After commit one delayed task per burst of edits
reconciles the member (`reconcile`), and a scheduled sweep (`reconcile_pending`) picks up whatever a lost task,
a failing connection or an outage left behind. Nothing is dropped: a change stays pending until the vendor confirms
it; a vendor that refuses it says why (status rejected), a member the vendor cannot take says the portal's reason
(status not sent), and the next change tries again.

A vendor takes part by defining in its flows: `needs_sync(member, changed_fields, previous)`,
`reconcile_member(connection, member, state) -> confirmed` (raising VendorError / NotReady), and optionally
`read_member_state(connection, member) -> dict` for the drift report.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from integrations.connections import noting_calls, usable, usable_connection
from integrations.hooks import KeepsMembersInSync, ReadsMemberState, hook, hooks
from integrations.http import Rejected, VendorError
from integrations.models import Connection
from integrations.outcome import NotReady, Outcome
from integrations.queue import enqueue
from integrations.vendors import VENDORS
from members import changes
from members.models import Member, MemberVendorState

State = MemberVendorState.Status
# Longer than any one reconcile takes; a reconciler that died frees its member after this.
CLAIM_LEASE = timedelta(minutes=5)
# The calls of a reconcile linked from the member's timeline (a reconcile makes a few; a retried one a few more).
LAST_CALLS_KEPT = 10


def syncing_flows() -> dict[str, KeepsMembersInSync]:
    """The flows modules of the vendors that keep member state."""
    return hooks(KeepsMembersInSync)


# --- Recording changes -------------------------------------------------------------------------------------------


def record_change(
    member: Member,
    changed_fields: Iterable[str],
    previous: dict[str, Any] | None = None,
    *,
    configured: Collection[str] | None = None,
) -> list[str]:
    """Record, in the caller's transaction, who changed these fields (members/changes.py) and that the vendors who
    hold them must be brought in line; queue one reconcile per burst of edits after commit. Returns the vendors
    concerned. A caller changing many members of one client in one transaction (the CSV import) may pass
    `configured_vendors(client_id)`, read once."""
    changed = set(changed_fields)
    if not changed:
        return []
    if configured is None:
        configured = configured_vendors(member.client_id)
    vendors = bump_vendors(member, changed, previous or {}, configured)
    changes.record(member, changed)  # who made it, for the member's timeline
    return vendors


def bump_vendors(member: Member, changed: set[str], previous: dict[str, Any], configured: Collection[str]) -> list[str]:
    """The configured vendors that hold what changed, each recorded as pending for the member."""
    if not configured:
        return []  # no connection, no vendor to bring in line
    vendors = [
        key
        for key, flows in syncing_flows().items()
        if key in configured and can_hold(key, member, previous) and flows.needs_sync(member, changed, previous)
    ]
    for vendor in vendors:
        bump(member, vendor)
    return vendors


def can_hold(vendor: str, member: Member, previous: dict[str, Any]) -> bool:
    """Whether the vendor can use this member at all. A vendor keyed by the mobile number (`VendorSpec.
    keyed_by_mobile`) cannot use a member without one, so none is recorded for them — rather than a state that fails
    later. A member whose number was just removed still concerns those vendors (the old number leaves them), and so
    does one they already hold."""
    if not VENDORS[vendor].keyed_by_mobile or member.phone or previous.get("phone"):
        return True
    return MemberVendorState.objects.filter(member=member, vendor=vendor).exists()


def configured_vendors(client_id: int) -> set[str]:
    """The vendors the client has a connection to (in any state)."""
    return set(Connection.objects.filter(client_id=client_id).values_list("vendor", flat=True))


def bump(member: Member, vendor: str, *, queue: bool = True) -> None:
    state, created = MemberVendorState.objects.get_or_create(member=member, vendor=vendor)
    was_in_step = created or state.in_step
    MemberVendorState.objects.filter(pk=state.pk).update(
        desired_version=F("desired_version") + 1,
        status=State.PENDING,
        detail="Waiting to be sent.",
        next_attempt_at=None,
        changed_at=timezone.now(),
    )
    if was_in_step and queue:
        # The first change of a burst queues the reconcile; the later ones find it pending and queue nothing.
        enqueue("members.reconcile_member", member.pk, vendor, countdown=settings.MEMBER_SYNC_DELAY_SECONDS)


MEMBER_FIELDS = ("opted_in", "phone", "email", "first_name", "last_name", "zip_code", "annex_cloud_id")


def backfill(connection_id: int) -> dict[str, int]:
    """A connection activated for the first time: every member its vendor should hold is recorded as pending
    (changes made before the connection existed included); the sweep sends them at the vendor's pace."""
    connection = Connection.objects.select_related("client").get(pk=connection_id)
    flows = syncing_flows().get(connection.vendor)
    if flows is None:
        return {"recorded": 0}
    recorded = 0
    for member in Member.objects.filter(client_id=connection.client_id).iterator(chunk_size=2000):
        if can_hold(connection.vendor, member, {}) and flows.needs_sync(member, set(MEMBER_FIELDS), {}):
            bump(member, connection.vendor, queue=False)
            recorded += 1
    return {"recorded": recorded}


def change_member(member: Member, **values: Any) -> set[str]:
    """Change a member from a flow (import, refresh, callback, action): save what differs and record the change."""
    previous = {name: getattr(member, name) for name in values}
    changed = {name for name, value in values.items() if previous[name] != value}
    if not changed:
        return set()
    for name in changed:
        setattr(member, name, values[name])
    with transaction.atomic():
        member.save(update_fields=[*changed, "updated_at"])
        record_change(member, changed, previous)
    return changed


# --- Reconciling -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    status: str
    detail: str

    @property
    def outcome(self) -> Outcome:
        return Outcome(self.status == State.IN_SYNC, self.detail)


def reconcile(member_id: int, vendor: str) -> Result:
    """Bring one vendor in line with one member. The row is claimed with a lease for the call, so two reconcilers
    never work on the same member and vendor at once, and no transaction stays open while the vendor answers (what
    a vendor flow records before a risky call is committed at once). A change made meanwhile is sent next."""
    rows = MemberVendorState.objects.filter(member_id=member_id, vendor=vendor)
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if not rows.filter(free).update(claimed_until=now + CLAIM_LEASE):
        return Result(State.PENDING, "Being reconciled by another worker.")
    try:
        return reconcile_claimed(rows.select_related("member__client").get())
    finally:
        rows.update(claimed_until=None)


def reconcile_claimed(state: MemberVendorState) -> Result:
    if state.in_step:
        return Result(state.status, state.detail or "In step.")
    member, target = state.member, state.desired_version
    connection = usable_connection(member.client_id, state.vendor)
    if connection is None:
        return defer(state, waiting_reason(member.client_id, state.vendor))
    try:
        confirmed = reconcile_noting_calls(connection, member, state)
    except Rejected as exc:
        # The vendor refused this member's data: wait for a change.
        return finish(state, State.REJECTED, exc.for_admin, synced=None)
    except NotReady as exc:
        # The member lacks what the vendor needs (a mobile number): the portal's reason, no call was made.
        return finish(state, State.NOT_SENT, f"Not sent by the portal: {exc}", synced=None)
    except VendorError as exc:
        return defer(state, f"{exc.for_admin} Will retry.")
    except Exception:
        # Unexpected (a bug, the database gone): no outcome to record, and the error goes on to the task's record;
        # the calls it made are kept for the member's timeline all the same.
        keep_call_ids(state)
        raise
    # A vendor may say in its own words what it did ("created at Vibes (person …)").
    summary = confirmed.pop("summary", "") or f"Confirmed by {connection.spec.label}."
    state.confirmed = confirmed
    state.confirmed_at = timezone.now()
    return finish(state, State.IN_SYNC, summary, synced=target)


def reconcile_noting_calls(connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]:
    """The vendor's reconcile of the member; the calls it made, answered or not, are noted on the state (saved with
    the outcome) for the member's timeline."""
    with noting_calls() as calls:
        try:
            return syncing_flows()[state.vendor].reconcile_member(connection, member, state)
        finally:
            state.last_call_ids = [call.pk for call in calls[-LAST_CALLS_KEPT:]]


def keep_call_ids(state: MemberVendorState) -> None:
    with contextlib.suppress(DatabaseError):  # the database may be what failed: the original error matters more
        state.save(update_fields=["last_call_ids"])


def finish(state: MemberVendorState, status: str, detail: str, *, synced: int | None) -> Result:
    state.status, state.detail, state.next_attempt_at = status, detail[:2000], None
    fields = ["status", "detail", "next_attempt_at", "confirmed", "confirmed_at", "attempts", "last_call_ids"]
    state.attempts = 0 if status == State.IN_SYNC else state.attempts + 1
    if synced is not None:
        state.synced_version = synced
        fields.append("synced_version")
    state.save(update_fields=fields)
    # A change recorded while this one was being sent is still pending: say so, and send it next.
    newer = MemberVendorState.objects.filter(pk=state.pk, desired_version__gt=F("synced_version"))
    if status == State.IN_SYNC and newer.update(status=State.PENDING, detail="A newer change waits to be sent."):
        enqueue("members.reconcile_member", state.member_id, state.vendor)
    return Result(status, detail)


def defer(state: MemberVendorState, reason: str) -> Result:
    state.attempts += 1
    state.status, state.detail = State.DEFERRED, reason[:2000]
    state.next_attempt_at = timezone.now() + settings.MEMBER_SYNC_RETRY_INTERVAL
    state.save(update_fields=["status", "detail", "attempts", "next_attempt_at", "confirmed", "last_call_ids"])
    return Result(State.DEFERRED, reason)


def waiting_reason(client_id: int, vendor: str) -> str:
    connection = Connection.objects.filter(client_id=client_id, vendor=vendor).defer("secrets").first()
    label = VENDORS[vendor].label
    if connection is None:
        return f"Waiting: the client has no {label} connection."
    return f"Waiting: the {label} connection is {connection.status}; the change goes out once it is active."


def reconcile_now(member: Member, vendor: str) -> Outcome:
    """For actions that report at once: reconcile this member with this vendor now and say what happened."""
    return reconcile(member.pk, vendor).outcome


# --- The sweep ---------------------------------------------------------------------------------------------------


# Left alone by the sweep until the member changes (or an admin retries): sending again would fail the same way.
WAITING_FOR_A_CHANGE = (State.REJECTED, State.NOT_SENT)


def pending_states(vendor: str | None = None, client_id: int | None = None) -> QuerySet[MemberVendorState]:
    states = MemberVendorState.objects.filter(desired_version__gt=F("synced_version")).exclude(
        status__in=WAITING_FOR_A_CHANGE
    )
    if vendor:
        states = states.filter(vendor=vendor)
    if client_id:
        states = states.filter(member__client_id=client_id)
    return states


def reconcile_pending(client_id: int | None = None, limit: int = 5000) -> dict[str, int]:
    """The scheduled sweep: every pending change whose retry time has come, per usable connection. A connection
    whose vendor fails transiently is left for the next run after one probe, so an outage costs one call per
    connection per run, and nothing is dropped."""
    counts: Counter[str] = Counter()
    now = timezone.now()
    for connection in usable().filter(**({"client_id": client_id} if client_id else {})):
        if connection.vendor not in syncing_flows():
            continue
        due = pending_states(connection.vendor, connection.client_id).filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        )
        for member_id in list(due.order_by("pk").values_list("member_id", flat=True)[:limit]):
            result = reconcile(member_id, connection.vendor)
            counts[result.status] += 1
            if result.status == State.DEFERRED:
                break  # the vendor is in trouble: one probe per run is enough
    counted = (State.IN_SYNC, State.DEFERRED, State.REJECTED, State.PENDING)
    swept: dict[str, int] = {key: counts.get(key, 0) for key in counted}
    if n := counts[State.NOT_SENT]:
        swept[State.NOT_SENT] = n
    return swept


def retry_rejected(states: QuerySet[MemberVendorState]) -> int:
    """An admin fixed what the vendor refused (or the set-up): try those members again."""
    count = 0
    for state in states.filter(desired_version__gt=F("synced_version")).select_related("member"):
        MemberVendorState.objects.filter(pk=state.pk).update(status=State.PENDING, next_attempt_at=None)
        enqueue("members.reconcile_member", state.member_id, state.vendor)
        count += 1
    return count


# --- The drift report --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    member: Member
    vendor: str
    reason: str


def drift(client_id: int | None = None, *, read_vendors: bool = False) -> list[Drift]:
    """Members whose vendor state differs from what the portal says it should be, with the reason: pending,
    deferred (and why), rejected by the vendor (and why). With `read_vendors`, members the portal believes in step
    are also checked against what the vendor says now, where the vendor has a read."""
    states = MemberVendorState.objects.select_related("member__client").order_by("member_id", "vendor")
    if client_id:
        states = states.filter(member__client_id=client_id)
    found = [
        Drift(s.member, s.vendor, drift_reason(s)) for s in states if not s.in_step or s.status in WAITING_FOR_A_CHANGE
    ]
    if read_vendors:
        found += [d for s in states if s.in_step and (d := vendor_disagrees(s)) is not None]
    return found


def drift_reason(state: MemberVendorState) -> str:
    label = VENDORS[state.vendor].label
    if state.status == State.REJECTED:
        return f"rejected by {label}: {state.detail}"
    if state.status == State.NOT_SENT:
        return f"not sent to {label} (the portal's reason): {state.detail}"
    if state.status == State.DEFERRED:
        return f"deferred: {state.detail}"
    return f"pending since {state.changed_at:%Y-%m-%d %H:%M} UTC: {state.detail}"


def vendor_disagrees(state: MemberVendorState) -> Drift | None:
    """Ask the vendor (a read, no side effect) whether it still holds what it confirmed."""
    reader = hook(VENDORS[state.vendor], ReadsMemberState)
    connection = usable_connection(state.member.client_id, state.vendor)
    if reader is None or connection is None:
        return None
    try:
        now = reader.read_member_state(connection, state.member)
    except (VendorError, NotReady) as exc:
        return Drift(state.member, state.vendor, f"could not be read: {exc}")
    differs = reader.differs(state.confirmed, now)
    return Drift(state.member, state.vendor, f"the vendor holds {differs}") if differs else None
