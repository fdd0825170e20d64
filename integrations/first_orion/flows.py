"""First Orion use cases: verify a connection, plan and create a push of a program content to a segment, a member
selection or a list of numbers, run a push batch by batch (resumable, each batch sent at most once), and the pushes
the dashboard shows. Admin actions, API views, tasks and tests all call these functions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import ngettext

from integrations import rollups
from integrations.activity import ActivitySeries, CountedIn
from integrations.alerts import alert
from integrations.connections import ConnectionDisabled, api_for, usable_connection
from integrations.first_orion.api import BatchAnswer, FirstOrionAPI, batch_body
from integrations.first_orion.destinations import (
    MEMBER_CHUNK,
    Plan,
    member_chunks,
    member_destinations,
    member_pk_of,
    member_rows,
    number_destinations,
    plan_for_members,
)
from integrations.first_orion.models import (
    MAX_PERSONALIZATION_LENGTH,
    LongValues,
    ProgramContent,
    Push,
    PushBatch,
    PushRecipient,
    personalization_errors,
)
from integrations.first_orion.spec import DEFAULT_BATCH_SIZE
from integrations.first_orion.tokens import TokenSource
from integrations.http import AuthError, RateLimited, Unavailable, VendorError
from integrations.job_runs import (
    current_run,
    lease_holder,
    release_leases_of,
    report_progress,
    running_since,
)
from integrations.models import Client, Connection
from integrations.outcome import NotReady
from integrations.queue import enqueue
from members.models import Member, Segment

VENDOR = "first_orion"
# A push's runner holds it this long past each batch it starts; a killed runner's push is resumed after it (at once
# when its run is closed as interrupted: the claim is released then). Three times the read timeout of one batch's
# call (15 s, plus 3 s to connect). A batch that waits out a 429's Retry-After can outlast it: another runner may
# then take the push over, and this one stops at its next batch (the batch itself goes once: `leaving` is a
# compare-and-set on its status).
CLAIM_SECONDS = 45


class FirstOrionNotReady(NotReady):
    """Something to fix before a push can be made (no usable connection, nothing to push to...)."""


# --- The connection -------------------------------------------------------------------------------------------


def first_orion_api(connection: Connection) -> FirstOrionAPI:
    return api_for(
        connection,
        FirstOrionAPI,
        client_id=str(connection.settings.get("client_id") or ""),
        client_secret=connection.secret("client_secret"),
    )


def token_source(connection: Connection, api: FirstOrionAPI | None = None) -> TokenSource:
    return TokenSource(connection, api or first_orion_api(connection))


def check_connection(connection: Connection) -> str:
    """The verify check: a new token (the stored one may predate the credentials being checked) and its health.
    No push is made."""
    source = token_source(connection)
    source.forget()
    health = source.with_token(source.api.token_health)
    return f"Verified: First Orion granted a token for client id {connection.settings.get('client_id')} ({health})."


def explain_auth_failure(exc: AuthError) -> str:
    return f"First Orion refused the credentials ({exc.message}). {exc.hint}"


def batch_size(connection: Connection) -> int:
    return int(connection.settings.get("batch_size") or DEFAULT_BATCH_SIZE)


def ready_connection(client: Client) -> Connection:
    connection = usable_connection(client, VENDOR)
    if connection is None:
        raise FirstOrionNotReady(
            f"First Orion ENGAGE is not active for {client}: add its connection (client id and secret) and verify it."
        )
    return connection


# --- Planning destinations (the rules are in destinations.py) ---------------------------------------------------


def preview(
    content: ProgramContent,
    *,
    segment: Segment | None = None,
    members: QuerySet[Member] | None = None,
    long_values: str = LongValues.LEAVE_OUT,
) -> Plan:
    """What a push would do (the admin's confirmation page), without creating it."""
    chosen = segment_members(segment) if segment is not None else members
    assert chosen is not None, "preview() needs a segment or members"
    return plan_for_members(content, chosen, push_id="N", long_values=long_values)


def segment_members(segment: Segment) -> QuerySet[Member]:
    return Member.objects.filter(segment_links__segment=segment)


def long_personalization_examples(content: ProgramContent, limit: int = 3) -> list[str]:
    """Real members of the client whose personalised values would exceed 20 characters (for the admin's warning)."""
    members = Member.objects.filter(client_id=content.client_id).exclude(phone="")[:500]
    plan = plan_for_members(content, Member.objects.filter(pk__in=[m.pk for m in members]))
    return plan.long_values[:limit]


# --- Creating a push ---------------------------------------------------------------------------------------------


class LongValuesNotAllowed(PermissionError):
    """Sending personalised values over 20 characters as they are was asked by someone who is not a site admin."""


def check_long_values_choice(long_values: str, *, site_admin: bool) -> None:
    if long_values not in LongValues.values:
        raise ValueError(f"long_values must be one of {', '.join(LongValues.values)}.")
    if long_values == LongValues.AS_IS and not site_admin:
        raise LongValuesNotAllowed(
            f"Only a site admin may send personalised values over {MAX_PERSONALIZATION_LENGTH} characters as they are "
            f"(they may not display on every phone): choose {LongValues.LEAVE_OUT} or {LongValues.SHORTEN}."
        )


def create_push(
    content: ProgramContent,
    *,
    segment: Segment | None = None,
    members: QuerySet[Member] | Iterable[int] | None = None,
    numbers: list[str] | None = None,
    not_before: datetime | None = None,
    requested_by: str = "",
    long_values: str = LongValues.LEAVE_OUT,
    site_admin: bool = False,
) -> Push:
    """Record a push as `planning` and queue its task (after commit), which builds its destinations and batches and
    then sends them: nothing here reads a member, so the web request's time and memory do not grow with the push.
    `members` are a queryset or member ids; `long_values` says what becomes of personalised values over 20
    characters (sending them as they are is a site admin's choice)."""
    if (segment is not None) + (members is not None) + (numbers is not None) != 1:
        raise ValueError("Push to exactly one of: a segment, members, numbers.")
    check_long_values_choice(long_values, site_admin=site_admin)
    ready_connection(content.client)
    if segment is not None and segment.client_id != content.client_id:
        raise FirstOrionNotReady(f"Segment {segment} is not a segment of {content.client}.")
    check_personalization(content)
    requested = member_ids(members) if members is not None else list(numbers or [])
    with transaction.atomic():
        push = Push.objects.create(
            client=content.client,
            program_content=content,
            source=source_of(segment, members),
            segment=segment,
            not_before=not_before,
            requested_by=requested_by,
            long_values=long_values,
            status=Push.Status.PLANNING,
            requested=requested,
            planning_total=len(requested),
        )
        enqueue("first_orion.run_push", push.pk)
    return push


def check_personalization(content: ProgramContent) -> None:
    """A content stored before the bounds at entry may exceed them: it is not pushed until it is fixed (its
    personalization is copied into every destination)."""
    if problems := personalization_errors(content.personalization):
        raise FirstOrionNotReady(f"Fix the personalization of {content} before pushing it: {' '.join(problems)}")


def member_ids(members: QuerySet[Member] | Iterable[int]) -> list[int]:
    if isinstance(members, QuerySet):
        return list(members.order_by("pk").values_list("pk", flat=True))
    return sorted(set(members))


def source_of(segment: Segment | None, members: QuerySet[Member] | Iterable[int] | None) -> str:
    if segment is not None:
        return Push.Source.SEGMENT
    return Push.Source.MEMBERS if members is not None else Push.Source.NUMBERS


# --- Planning a push (in its task) -------------------------------------------------------------------------------

# Batches written per insert while planning: with destinations of at most ~2 KB (the bounds at entry) and batches of
# at most 500, one insert carries a few MB at most.
BATCHES_PER_INSERT = 5


def build_batches(push: Push, size: int) -> bool:
    """Plan the push's destinations and write its batches as they come, a few at a time (memory stays bounded: one
    chunk of members and a few batches), renewing the push's claim and showing progress as it goes. Batches of an
    interrupted planning are deleted first (none was sent: sending starts once the push is planned). A push with no
    destination left fails, saying why. False when another runner took the push over meanwhile."""
    PushBatch.objects.filter(push=push).delete()
    plan, total = Plan(), planning_total(push)
    Push.objects.filter(pk=push.pk).update(status=Push.Status.PLANNING, planning_total=total, planning_read=0)
    writer = BatchWriter(push, size)
    for read, destinations in planned_chunks(push, plan):
        for item in destinations:
            writer.add(item)
        writer.flush(complete_only=True)
        if not renew(push):
            return False  # another runner took the push over: the planning is its to do
        show_planning_progress(push, read, total)
    writer.flush()
    return planned(push, plan, writer.batches)


def planning_total(push: Push) -> int:
    """How many members or numbers planning reads (a segment's members are counted as planning starts)."""
    if push.source == Push.Source.SEGMENT:
        return segment_members(push.segment).count() if push.segment is not None else 0
    return len(push.requested)


def planned_chunks(push: Push, plan: Plan) -> Iterator[tuple[int, Iterator[dict[str, Any]]]]:
    """(members or numbers read once this chunk is planned, the chunk's destinations), chunk by chunk."""
    content, pk, long_values = push.program_content, push.pk, push.long_values
    if push.source == Push.Source.NUMBERS:
        for start, numbers in slices(push.requested):
            positions = enumerate(numbers, start=start)
            yield start + len(numbers), number_destinations(plan, content, positions, pk, long_values)
    elif push.source == Push.Source.MEMBERS:
        # Ids were checked against the client when asked; checked again here (by the query), a slice at a time.
        for start, ids in slices(push.requested):
            rows = member_rows(Member.objects.filter(pk__in=ids, client_id=push.client_id))
            yield start + len(ids), member_destinations(plan, content, rows, pk, long_values)
    else:
        # A segment deleted before planning reaches no one (the push then fails, saying so).
        members = segment_members(push.segment) if push.segment is not None else Member.objects.none()
        read = 0
        for rows in member_chunks(members):
            read += len(rows)
            yield read, member_destinations(plan, content, rows, pk, long_values)


def slices(items: list[Any], size: int = MEMBER_CHUNK) -> Iterator[tuple[int, list[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


class BatchWriter:
    """Destinations into batches of `size`, written a few batches per insert."""

    def __init__(self, push: Push, size: int) -> None:
        self.push, self.size = push, size
        self.batches = 0
        self.current: list[dict[str, Any]] = []
        self.ready: list[PushBatch] = []

    def add(self, item: dict[str, Any]) -> None:
        self.current.append(item)
        if len(self.current) == self.size:
            self.close_batch()
            if len(self.ready) >= BATCHES_PER_INSERT:
                self.flush(complete_only=True)

    def close_batch(self) -> None:
        self.ready.append(
            PushBatch(push=self.push, index=self.batches, size=len(self.current), destinations=self.current)
        )
        self.batches += 1
        self.current = []

    def flush(self, *, complete_only: bool = False) -> None:
        """Write the batches made; with complete_only, an unfilled last batch waits for more destinations."""
        if self.current and not complete_only:
            self.close_batch()
        if self.ready:
            batches = PushBatch.objects.bulk_create(self.ready)
            PushRecipient.objects.bulk_create(
                PushRecipient(batch=batch, member_id=member_pk)
                for batch in batches
                for member_pk in map(member_pk_of, batch.destinations)
                if member_pk is not None
            )
            self.ready = []


def show_planning_progress(push: Push, read: int, total: int) -> None:
    Push.objects.filter(pk=push.pk).update(planning_read=read)
    report_progress({"planning_read": read, "planning_total": total}, done=read, total=total)


def planned(push: Push, plan: Plan, batches: int) -> bool:
    """The push's plan is complete: its counts, and `sending` (its runner goes on) — or `failed` when no one is
    left. Only while this runner holds the push (a compare-and-set on the holder): False when another took it over
    and is planning it again."""
    fields: dict[str, Any] = {
        "destinations": plan.count,
        "batches_total": batches,
        "skipped": dict(plan.skipped),
        "shortened": plan.shortened,
        "warnings": dict(plan.warnings),
        "planning_read": F("planning_total"),
        "planned_at": timezone.now(),
        "requested": [],
        "status": Push.Status.SENDING,
    }
    if not plan.count:
        reasons = ", ".join(f"{n} {reason}" for reason, n in plan.skipped.items()) or "none given"
        fields.update(
            status=Push.Status.FAILED,
            error=f"Nothing to push to: no destination is left ({reasons}).",
            finished_at=timezone.now(),
        )
    if not Push.objects.filter(pk=push.pk, holder=push.holder).update(**fields):
        return False
    push.refresh_from_db()
    return True


# --- Running a push ----------------------------------------------------------------------------------------------


def claim_seconds() -> float:
    """How long a claim lasts past its last renewal (a setting only so that benches and tests can change it)."""
    return float(getattr(settings, "FIRST_ORION_CLAIM_SECONDS", CLAIM_SECONDS))


def claim(push: Push) -> bool:
    """Only one runner per push: a compare-and-set on `claimed_until` (free, or left by a runner that died, or held
    under this runner's own task id: its killed earlier execution's). `push.holder` is this runner's, from then on."""
    now = timezone.now()
    holder = lease_holder()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now) | Q(holder=holder)
    unfinished = ~Q(status__in=[Push.Status.SENT, Push.Status.FAILED, Push.Status.UNCERTAIN])
    # A push not planned yet is shown `planning` while its runner builds its batches.
    status = Case(When(planned_at__isnull=True, then=Value(Push.Status.PLANNING)), default=Value(Push.Status.SENDING))
    claimed = Push.objects.filter(free, unfinished, pk=push.pk).update(
        claimed_until=now + timedelta(seconds=claim_seconds()), holder=holder, status=status
    )
    if claimed:
        push.holder = holder
    return bool(claimed)


def renew(push: Push) -> bool:
    """Hold the push for another claim from now; False when another runner holds it (this one lapsed, or was closed
    as interrupted): this runner then stops."""
    until = timezone.now() + timedelta(seconds=claim_seconds())
    return bool(Push.objects.filter(pk=push.pk, holder=push.holder).update(claimed_until=until))


def release(push: Push) -> None:
    """Free the push, unless another runner holds it now."""
    Push.objects.filter(pk=push.pk, holder=push.holder).update(claimed_until=None, holder="")


def release_pushes_of(task_ids: list[str]) -> None:
    """Runs closed as interrupted send no more: their pushes are free for the next runner at once."""
    release_leases_of(Push, task_ids, "claimed_until")


def push_running_since(push: Push) -> str:
    """ "running since …" while a runner holds the push, else "" (for the admin)."""
    if push.claimed_until is None or push.claimed_until < timezone.now():
        return ""
    return running_since(push.holder, push.client)


def run_push(push_id: int) -> dict[str, int]:
    """Send a push's pending batches in order. Each batch goes in this order: it waits for the rate limit, takes
    the token, is committed `sending`, and leaves; it is settled after. So a push killed midway resumes with the
    batches it had not sent (one killed while waiting for the limit is still pending), and a batch found `sending`
    here was being sent by a runner that died during its call, and may have reached First Orion: it becomes
    uncertain, never resent."""
    push = Push.objects.select_related("program_content", "client").get(pk=push_id)
    if not claim(push):
        return counts_of(push)
    Push.objects.filter(pk=push.pk).update(job_run=current_run())
    try:
        orphaned_sending_batches_are_uncertain(push)
        connection = usable_connection(push.client_id, VENDOR)
        if connection is None:
            return wait(push, "The First Orion connection is not active: verify it and the push continues.")
        if push.planned_at is None and not (build_batches(push, batch_size(connection)) and not push.finished):
            return counts_of(push)  # taken over while planning, or nothing to push to (failed, saying why)
        send_pending_batches(push, connection)
    finally:
        release(push)
    return counts_of(push)


def orphaned_sending_batches_are_uncertain(push: Push) -> None:
    now = timezone.now()
    lost = push.batches.filter(status=PushBatch.Status.SENDING).update(
        status=PushBatch.Status.UNCERTAIN,
        settled_at=now,
        error="The worker sending this batch stopped before First Orion's answer was recorded: it may have been "
        "pushed. Not resent automatically; check with First Orion (customTrackingId) before pushing these numbers "
        "again.",
    )
    if lost:
        Push.objects.filter(pk=push.pk).update(failures=F("failures") + lost)
        alert_uncertain_batches(push, lost)


def alert_uncertain_batches(push: Push, count: int) -> None:
    """Uncertain batches are never resent automatically: they wait for a person to check with First Orion, so the
    site admins hear of them (throttled per client, as every alert is)."""
    alert(
        f"first-orion-uncertain:{push.client_id}",
        f"{count} First Orion {ngettext('batch is', 'batches are', count)} uncertain",
        f"Push {push.pk} for {push.client}: First Orion may or may not have pushed {ngettext('it', 'them', count)} "
        "(its answer was lost, or the worker sending it stopped during the call). Check with First Orion by "
        "customTrackingId; if they were not pushed, use “Send uncertain batches again” on the push.",
    )


def send_pending_batches(push: Push, connection: Connection) -> None:
    try:
        source = token_source(connection)
    except ConnectionDisabled as exc:
        wait(push, str(exc))
        return
    # Destinations are read per batch as it leaves (body_for), not a chunk of batches at a time: a worker holds one
    # batch's destinations, whatever the push's size.
    pending = push.batches.filter(status=PushBatch.Status.PENDING).order_by("index").defer("destinations")
    for batch in pending.iterator():
        if not renew(push):
            return  # another runner took the push over: the batches left are its to send
        flight = BatchFlight(batch.pk)
        try:
            answer = push_one_batch(source, push, batch, flight)
        except TakenBack:
            continue  # another runner took the push over while this one waited: the batch is its to send
        except VendorError as exc:
            if not settle_failed_batch(push, batch, exc, left=flight.in_flight):
                return
        else:
            settle(push, batch, PushBatch.Status.SENT, request_id=answer.request_id)
        counts = counts_of(push)
        report_progress(counts, done=counts["batches_sent"] + counts["failures"], total=counts["batches"])
    finish(push)


def push_one_batch(source: TokenSource, push: Push, batch: PushBatch, flight: BatchFlight) -> BatchAnswer:
    """One batch's call: the token is taken and the batch committed `sending` only once the rate limit lets the
    request go (a 401 puts it back to pending, and the call is made once more with a new token)."""
    content = push.program_content

    def call(take_token: Callable[[], str]) -> BatchAnswer:
        # A retry inside the HTTP layer follows a 429 or 503, which First Orion did not act on: the batch is back to
        # pending while the call waits to try again, so neither a kill during the wait nor a token call that fails
        # then leaves it uncertain.
        return source.api.push_batch(
            take_token,
            content.program_content_uuid,
            body_for(content, push, batch),
            leaving=flight.leaving,
            not_acted_on=flight.landed,
        )

    return source.with_token_as_it_leaves(call, refused=flight.landed)


def body_for(content: ProgramContent, push: Push, batch: PushBatch) -> dict[str, Any]:
    return batch_body(
        batch.destinations,
        a_numbers=content.a_numbers,
        a_number_group_id=content.a_number_group_id,
        ttl_seconds=content.ttl_seconds,
        keep_after_call=content.keep_after_call,
        not_before=push.not_before,
    )


class TakenBack(Exception):
    """The batch is no longer pending as its request would leave: another runner took the push over (this one's
    claim lapsed while it waited) and has it. Nothing is sent."""


class BatchFlight:
    """A batch's `sending` mark, committed (autocommit) just before its request leaves: from then on a lost worker
    leaves evidence (the batch becomes uncertain), and only then, so the uncertain window is the call itself."""

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        self.attempted_at: datetime | None = None

    @property
    def in_flight(self) -> bool:
        return self.attempted_at is not None

    def leaving(self) -> None:
        """Pending → sending, or raise TakenBack when the batch is not pending any more."""
        now = timezone.now()
        marked = PushBatch.objects.filter(pk=self.batch_id, status=PushBatch.Status.PENDING).update(
            status=PushBatch.Status.SENDING, attempted_at=now
        )
        if not marked:
            raise TakenBack
        self.attempted_at = now

    def landed(self) -> None:
        """The request was answered and not acted on (a 401, a 429, a 503): back to pending, if still ours."""
        if self.attempted_at is None:
            return
        PushBatch.objects.filter(
            pk=self.batch_id, status=PushBatch.Status.SENDING, attempted_at=self.attempted_at
        ).update(status=PushBatch.Status.PENDING)
        self.attempted_at = None


FAILURE_STATUSES = frozenset({PushBatch.Status.FAILED, PushBatch.Status.UNCERTAIN})


def settle(push: Push, batch: PushBatch, status: str, *, request_id: str = "", error: str = "") -> bool:
    """Record a batch's outcome and keep the push's counters in step with its batches. Only our own `sending`
    batch is settled; if our claim expired during the call and another runner marked the batch uncertain (already
    counted as a failure), the answer we did get is the truth and replaces that guess. Any other state (the batch
    was sent again by a site admin's choice) is left alone. Returns whether the outcome was recorded."""
    fields = {"status": status, "request_id": request_id, "error": error, "settled_at": timezone.now()}
    with transaction.atomic():
        if PushBatch.objects.filter(pk=batch.pk, status=PushBatch.Status.SENDING).update(**fields):
            was_counted_failed = False
        elif PushBatch.objects.filter(pk=batch.pk, status=PushBatch.Status.UNCERTAIN).update(**fields):
            was_counted_failed = True
        else:
            return False
        rollups.counted(PUSHED, outcome=status, client_pk=push.client_id, total=batch.size)
        sent = int(status == PushBatch.Status.SENT)
        failures = int(status in FAILURE_STATUSES) - int(was_counted_failed)
        if sent or failures:
            Push.objects.filter(pk=push.pk).update(
                batches_sent=F("batches_sent") + sent, failures=F("failures") + failures
            )
    return True


def settle_failed_batch(push: Push, batch: PushBatch, exc: VendorError, *, left: bool = True) -> bool:
    """Record what a failed batch means; returns whether the push goes on with its next batch. A batch that never
    left (the limit could not be read, no token could be had) is still pending: the push waits for the connection."""
    if not left:
        wait(push, exc.for_admin)
        return False
    if exc.uncertain:
        lost = f"The answer was lost: it may have been pushed. {exc}"
        if settle(push, batch, PushBatch.Status.UNCERTAIN, error=lost):
            alert_uncertain_batches(push, 1)
        return True
    if isinstance(exc, Unavailable | RateLimited | AuthError):
        # Refused or never sent: the batch waits, unsent, for the connection to work again.
        PushBatch.objects.filter(pk=batch.pk, status=PushBatch.Status.SENDING).update(
            status=PushBatch.Status.PENDING, error=str(exc)
        )
        wait(push, exc.for_admin)
        return False
    # First Orion refused the push itself (aNumbers not registered, program set-up): no batch can succeed.
    settle(push, batch, PushBatch.Status.FAILED, request_id=getattr(exc, "request_id", ""), error=exc.for_admin)
    push.batches.filter(status=PushBatch.Status.PENDING).update(
        status=PushBatch.Status.CANCELLED, error=f"Not sent: batch {batch.index + 1} failed. {exc.for_admin}"
    )
    Push.objects.filter(pk=push.pk).update(error=exc.for_admin)
    return True


def wait(push: Push, reason: str) -> dict[str, int]:
    Push.objects.filter(pk=push.pk).update(status=Push.Status.WAITING, error=reason)
    return counts_of(push)


def finish(push: Push) -> None:
    """The push's outcome once no batch is left to send: failed > uncertain > sent."""
    statuses = set(push.batches.values_list("status", flat=True))
    if statuses & {PushBatch.Status.PENDING, PushBatch.Status.SENDING}:
        return
    if statuses & {PushBatch.Status.FAILED, PushBatch.Status.CANCELLED}:
        status = Push.Status.FAILED
    elif PushBatch.Status.UNCERTAIN in statuses:
        status = Push.Status.UNCERTAIN
    else:
        status = Push.Status.SENT
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now()}
    if status == Push.Status.SENT:
        fields["error"] = ""
    elif status == Push.Status.UNCERTAIN:
        fields["error"] = (
            "The answer to some batches was lost: First Orion may have pushed them. They are not resent "
            "automatically; see the batches."
        )
    Push.objects.filter(pk=push.pk).update(**fields)


def counts_of(push: Push) -> dict[str, int]:
    push.refresh_from_db(fields=["destinations", "batches_total", "batches_sent", "failures"])
    return {
        "destinations": push.destinations,
        "batches": push.batches_total,
        "batches_sent": push.batches_sent,
        "failures": push.failures,
    }


def resume_pushes() -> dict[str, int]:
    """Queue every unfinished push whose runner is gone (a lost task, a killed worker, a connection that was not
    usable). Their sent batches are not resent."""
    now = timezone.now()
    stale = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    unfinished = [Push.Status.PLANNING, Push.Status.QUEUED, Push.Status.SENDING, Push.Status.WAITING]
    pending = Push.objects.filter(stale, status__in=unfinished)
    ids = list(pending.values_list("pk", flat=True))
    for push_id in ids:
        enqueue("first_orion.run_push", push_id)
    return {"queued": len(ids)}


# The rollup series of settled batches (outcome: the batch's status; total: its destinations).
PUSHED = "first_orion_destinations"


def activity_series() -> list[ActivitySeries]:
    """The dashboard's chart of branded-call destinations First Orion accepted, by the hour their batch settled; it
    links to those batches."""
    sent_batches = (("status__exact", PushBatch.Status.SENT),)
    sent = CountedIn("admin:first_orion_pushbatch_changelist", sent_batches, "settled_at")
    return [
        ActivitySeries(
            "Branded-call destinations pushed", PUSHED, outcome=PushBatch.Status.SENT, value="total", counted_in=sent
        )
    ]


def failed_pushes_since(when: datetime) -> QuerySet[Push]:
    """Pushes that failed, or whose outcome is uncertain, created since `when` (for the dashboard)."""
    return Push.objects.filter(
        created_at__gte=when, status__in=[Push.Status.FAILED, Push.Status.UNCERTAIN]
    ).select_related("client", "program_content")


def resend_uncertain_batches(push: Push, who: str) -> int:
    """A person checked with First Orion (by customTrackingId / requestId) that the uncertain batches were not
    pushed, and sends them again: they return to pending and the push runs. Never done automatically."""
    with transaction.atomic():
        count = push.batches.filter(status=PushBatch.Status.UNCERTAIN).update(
            status=PushBatch.Status.PENDING, error=f"Sent again by {who} after checking with First Orion."
        )
        if count:
            Push.objects.filter(pk=push.pk).update(
                status=Push.Status.QUEUED, failures=F("failures") - count, finished_at=None, error=""
            )
            enqueue("first_orion.run_push", push.pk)
    return count
