"""Bazaarvoice use cases: verifying a connection, the incremental pull of approved reviews that awards each reviewer's
Annex Cloud points once per review, retrying a review, and reversing an award.

The pull reads `GET /data/reviews.json` from a look-back window behind the connection's cursor (a setting, 72 hours by
default: Bazaarvoice indexes some reviews late, and re-moderation can date a review in the past, behind a cursor that
only moves forward) up to the end of "not today" — the earlier of the client's local midnight and UTC midnight, so
that both readings of seed 003's "LastModeratedTime not today" hold (the seed's rule is the vendor's date) — oldest
first, 100 at a time. Every review is recorded once per client (a review seen again — the look-back, overlapping
pages, re-moderation, a re-run — is a duplicate, never a second award), and the award goes
through Annex Cloud's points entry point with the review id as its key and `customId`, so neither the portal nor Annex
Cloud can apply it twice. The cursor moves only after a page's reviews are recorded. What stops a run (Annex Cloud
refusing the credentials or unreachable, Bazaarvoice's quota) leaves the review pending and the cursor where it was:
the next run takes it up again. Nothing is lost, nothing is awarded twice. Settling one review (the rules, the
e-mail, the look-up and the award) is integrations/bazaarvoice/rewards.py.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.activity import ActivitySeries, CountedIn
from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud.flows import AnnexCloudNotReady
from integrations.bazaarvoice.api import APPROVED_FILTER, MAX_LIMIT, MAX_OFFSET, BazaarvoiceAPI
from integrations.bazaarvoice.models import PullState, Review
from integrations.bazaarvoice.rewards import (
    RETRYABLE,
    REVIEWS_SETTLED,
    Context,
    RewardRules,
    StopRun,
    attempt_key,
    mark_credit_reversed,
    reversal_counted,
    settle,
)
from integrations.bazaarvoice.spec import DEFAULT_FIRST_PULL_DAYS, DEFAULT_LOOK_BACK_HOURS
from integrations.connections import api_for, connection_of, usable
from integrations.http import AuthError, RateLimited, VendorError
from integrations.job_runs import Counts, lease_holder, release_leases_of, report_progress, running_since
from integrations.models import Client, Connection
from integrations.outcome import Outcome
from members.models import PointsTransaction

VENDOR = "bazaarvoice"
# How long a run's hold on a connection's pull lasts past its last sign of progress. The run renews it after every
# review it settles and every page it reads, so a killed run blocks the pull for at most this long — and not even
# that when its run is closed as interrupted (the hold is released then). Three times the read timeout of one call
# (15 s, plus 3 s to connect; a 429 is never slept through here). A call that retries can outlast it and let another
# run take over: the slow run stops at its next renewal, and the review both touched is still awarded once (its key
# and customId).
LEASE = timedelta(seconds=45)
# Reviews left pending by a stopped run, taken up first by the next run (at most this many per run).
PENDING_BATCH = 1000
# A scheduled run stops reading new pages after this long, well inside the task's time limit (PortalTask); the
# cursor is saved per page, so the next run simply continues. A backlog is worked off over several runs.
RUN_BUDGET = timedelta(minutes=8)
Result = Review.Outcome


class BudgetSpent(Exception):
    """The run used its time (RUN_BUDGET): not an error, the next run continues from the cursor."""


class LeaseLost(Exception):
    """Another run took the pull over (this run went a whole lease without renewing it): this run stops at once, so
    that two runs never go on pulling one connection."""


# --- Set-up --------------------------------------------------------------------------------------------------------


def bazaarvoice_api(connection: Connection) -> BazaarvoiceAPI:
    return api_for(connection, BazaarvoiceAPI, passkey=connection.secret("passkey"))


def check_connection(connection: Connection) -> str:
    """Verify: one `GET /data/reviews.json?apiversion=5.4&Filter=ModerationStatus:eq:APPROVED&Limit=1`, side-effect
    free; the count is of approved reviews, the ones a pull reads."""
    total = bazaarvoice_api(connection).check()
    return f"Bazaarvoice accepted the passkey ({total} approved reviews visible to it)."


def explain_auth_failure(error: AuthError) -> str:
    return (
        f"Bazaarvoice refused the passkey: {error.sentence} Check the Conversations API passkey and that the "
        "environment (staging or production) is the one the passkey was issued for."
    )


def start_of_today(client: Client, now: datetime | None = None) -> datetime:
    """Midnight of the client's today (in its time zone), as a UTC moment."""
    today = client.local_date(now or timezone.now())
    return datetime.combine(today, time_of_day.min, tzinfo=client.zone).astimezone(UTC)


def start_of_utc_today(now: datetime | None = None) -> datetime:
    """Midnight of today in UTC: Bazaarvoice's own date (seed 003's LastModeratedTime is the vendor's)."""
    return datetime.combine((now or timezone.now()).astimezone(UTC).date(), time_of_day.min, tzinfo=UTC)


def not_today_before(client: Client, now: datetime | None = None) -> datetime:
    """Where "not today" ends: the earlier of the client's midnight and UTC midnight. A review moderated at or after
    it is today by one reading or the other (Los Angeles' today starts 8 hours after UTC's; Auckland's, 11 to 13
    hours before it, or after it in the other half of the UTC day), so it waits for a later run."""
    now = now or timezone.now()
    return min(start_of_today(client, now), start_of_utc_today(now))


def look_back(connection: Connection) -> timedelta:
    """How far behind the cursor each pull reads again (0 is a choice: no look-back)."""
    hours = connection.settings.get("look_back_hours")
    return timedelta(hours=DEFAULT_LOOK_BACK_HOURS if hours in (None, "") else int(hours))


# --- Recording a page ----------------------------------------------------------------------------------------------


def moderated_time(item: dict[str, Any]) -> datetime | None:
    value = parse_datetime(str(item.get("LastModeratedTime") or ""))
    return value if value is not None and value.tzinfo is not None else None


def whole_number(value: Any) -> int | None:
    with contextlib.suppress(TypeError, ValueError):
        return int(value)
    return None


def record_review(client: Client, item: dict[str, Any]) -> tuple[Review | None, bool]:
    """The review of an item of `Results`, stored once per client: (review, created). Items without an id or a
    moderation time (malformed) are not stored: (None, False)."""
    review_id, moderated = str(item.get("Id") or "").strip(), moderated_time(item)
    if not review_id or len(review_id) > 64 or moderated is None:
        return None, False
    defaults = {
        "product_id": str(item.get("ProductId") or "")[:200],
        "rating": whole_number(item.get("Rating")),
        "ratings_only": bool(item.get("IsRatingsOnly")),
        "moderated_at": moderated,
        "encrypted_email": str(item.get("UserEmailAddress") or "")[:512],
    }
    try:
        with transaction.atomic():
            return Review.objects.get_or_create(client=client, review_id=review_id, defaults=defaults)
    except IntegrityError:  # stored by a concurrent run meanwhile
        return Review.objects.get(client=client, review_id=review_id), False


def takeable(item: dict[str, Any], today_start: datetime) -> bool:
    """What the filters asked for, checked again: approved, and moderated before today (by both readings)."""
    moderated = moderated_time(item)
    return str(item.get("ModerationStatus", "APPROVED")).upper() == "APPROVED" and (
        moderated is None or moderated < today_start
    )


# --- The pull ------------------------------------------------------------------------------------------------------


class RunCounts(Counter[str]):
    """What one run did: pages read, reviews seen, and the outcome of each review settled."""

    def as_counts(self) -> Counts:
        return {str(key): int(value) for key, value in self.items()}


def pull_all(client_id: int | None = None) -> Counts:
    """The scheduled job: pull every usable Bazaarvoice connection (of one client, if given)."""
    connections = usable(VENDOR).select_related("client")
    if client_id:
        connections = connections.filter(client_id=client_id)
    total = RunCounts()
    for connection in connections:
        total.update(pull_reviews(connection).counts)
        total["connections"] += 1
    return total.as_counts()


@dataclass(frozen=True)
class PullResult:
    outcome: Outcome
    counts: Counts


def pull_reviews(
    connection: Connection, *, now: datetime | None = None, budget: timedelta | None = RUN_BUDGET
) -> PullResult:
    """One run for one connection: pending reviews first, then new pages from the cursor, for at most `budget`.
    Never two at once."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget.total_seconds() if budget is not None else None
    state, _ = PullState.objects.get_or_create(connection=connection)
    if state.quota_reset_at and state.quota_reset_at > now:
        message = f"Bazaarvoice's quota is used up until {state.quota_reset_at:%Y-%m-%d %H:%M} UTC: nothing pulled."
        return PullResult(Outcome.failure(message), {"skipped": 1})
    lease = claim(state, now)
    if lease is None:
        since = pull_running_since(connection, now) or "running"
        return PullResult(Outcome.failure(f"A pull of {connection} is already {since}."), {"skipped": 1})
    counts = RunCounts()
    message = "The run failed: see its job run for the error. Nothing recorded is lost; the next run resumes."
    try:
        context = Context.of(connection)
        settle_pending(context, counts, lease, deadline)
        pull_pages(bazaarvoice_api(connection), context, state, counts, (now, deadline), lease)
    except BudgetSpent:
        message = (
            f"Pulled {counts['reviews']} reviews ({counts['awarded']} awarded) in this run's time; the next run "
            "continues from the cursor."
        )
    except RateLimited as exc:
        state.quota_reset_at = timezone.now() + timedelta(seconds=exc.retry_after or 60)
        message = f"Bazaarvoice's quota is used up: the pull resumes after {state.quota_reset_at:%H:%M:%S} UTC."
        counts["stopped"] += 1
    except (StopRun, VendorError) as exc:
        message = exc.for_admin if isinstance(exc, VendorError) else str(exc)
        counts["stopped"] += 1
    except LeaseLost:
        message = "Another run took this pull over (this one went a whole lease without progress): it stopped."
        counts["stopped"] += 1
        counts["lease_lost"] += 1
    else:
        message = f"Pulled {counts['reviews']} reviews: {counts['awarded']} awarded."
    finally:
        # A run that lost the pull leaves it, and its record, to the run that took it over.
        lease.release(
            last_run_at=timezone.now(),
            last_run_counts=counts.as_counts(),
            last_run_result=message,
            quota_reset_at=state.quota_reset_at,
        )
    return PullResult(Outcome(not counts["stopped"], message, error=bool(counts["stopped"])), counts.as_counts())


def pull_lease() -> timedelta:
    """How long a hold lasts past its last renewal (a setting only so that benches and tests can shorten it)."""
    return timedelta(seconds=getattr(settings, "BAZAARVOICE_PULL_LEASE_SECONDS", LEASE.total_seconds()))


@dataclass
class PullLease:
    """A run's hold on a connection's pull. `until` is the hold's end and the run's token at once: the run renews it
    by a compare-and-set on the value it wrote last, so a run whose hold another run took over finds out (LeaseLost)
    and never writes the pull state again."""

    state_id: int
    until: datetime
    # The run's clock: real time shifted to the run's `now` (a test's or a bench's "tomorrow").
    offset: timedelta
    # The task id of the run (integrations.job_runs.lease_holder), recorded with the hold.
    holder: str = ""

    def renew(self, **fields: Any) -> None:
        """Hold the pull for another lease from now, writing `fields` of its state in the same update."""
        until = timezone.now() + self.offset + pull_lease()
        if not PullState.objects.filter(pk=self.state_id, lease_until=self.until).update(lease_until=until, **fields):
            raise LeaseLost
        self.until = until

    def release(self, **fields: Any) -> bool:
        """Free the pull, writing `fields` of its state, unless another run holds it now."""
        held = PullState.objects.filter(pk=self.state_id, lease_until=self.until)
        return bool(held.update(lease_until=None, holder="", **fields))


def claim(state: PullState, now: datetime) -> PullLease | None:
    """The pull, for this run: free, or held by a run that has not renewed its hold for a whole lease (killed), or
    held under this run's own task id (its killed earlier execution's: the task was redelivered)."""
    holder = lease_holder()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(holder=holder)
    until = now + pull_lease()
    if not PullState.objects.filter(free, pk=state.pk).update(lease_until=until, holder=holder):
        return None
    state.refresh_from_db()
    return PullLease(state.pk, until, offset=now - timezone.now(), holder=holder)


def release_pulls_of(task_ids: list[str]) -> None:
    """Runs closed as interrupted pull no more: their pulls are free for the next run (or *Pull now*) at once."""
    release_leases_of(PullState, task_ids, "lease_until")


def pull_running_since(connection: Connection, now: datetime | None = None) -> str:
    """ "running since …" (in the client's time zone) while a run holds the connection's pull, else ""."""
    held = PullState.objects.filter(connection=connection, lease_until__gte=now or timezone.now()).first()
    return running_since(held.holder, connection.client) if held is not None else ""


def settle_pending(context: Context, counts: RunCounts, lease: PullLease, deadline: float | None = None) -> None:
    """Reviews a stopped run left pending are settled before any new page is read, within the run's time (each
    takes a look-up and an award: a thousand of them can outlast it); the next run settles the rest."""
    pending = Review.objects.filter(client=context.client, outcome=Result.PENDING).order_by("moderated_at", "pk")
    for review in pending[:PENDING_BATCH]:
        counts[settle(review, context)] += 1
        lease.renew()
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent


def review_filters(start: datetime, end: datetime) -> list[str]:
    """Approved reviews moderated in [start, end): time attributes take epoch seconds; repeated filters are ANDed."""
    return [
        APPROVED_FILTER,
        f"LastModeratedTime:gte:{int(start.timestamp())}",
        f"LastModeratedTime:lt:{int(end.timestamp())}",
    ]


def fetch(api: BazaarvoiceAPI, start: datetime, end: datetime, offset: int) -> dict[str, Any]:
    return api.reviews(filters=review_filters(start, end), sort="LastModeratedTime:asc", limit=MAX_LIMIT, offset=offset)


def first_pull_start(context: Context, today_start: datetime) -> datetime:
    days = int(context.connection.settings.get("first_pull_days") or DEFAULT_FIRST_PULL_DAYS)
    return today_start - timedelta(days=days)


def pull_start(context: Context, state: PullState, today_start: datetime) -> datetime:
    """Where a run starts reading: the look-back behind the cursor, or the first pull's days before today."""
    if state.cursor is None:
        return first_pull_start(context, today_start)
    return state.cursor - look_back(context.connection)


def pull_pages(
    api: BazaarvoiceAPI,
    context: Context,
    state: PullState,
    counts: RunCounts,
    clock: tuple[datetime, float | None],
    lease: PullLease,
) -> None:
    """Page through windows of moderation time from the look-back behind the cursor to where "not today" ends
    (`clock`: the run's now, and its deadline on the monotonic clock, if any). The look-back's reviews already
    recorded are duplicates (never a second award); the cursor never moves back (`advance`)."""
    now, deadline = clock
    today_start = not_today_before(context.client, now)
    start = pull_start(context, state, today_start)
    while start < today_start:
        end, page = narrowed_window(api, start, today_start, counts)
        pull_window(api, context, (state, lease), counts, (start, end), page, deadline)
        advance(state, lease, end)
        start = end


def narrowed_window(
    api: BazaarvoiceAPI, start: datetime, end: datetime, counts: RunCounts
) -> tuple[datetime, dict[str, Any]]:
    """The window from `start` whose results Offset can reach (≤ 300000): halved until it fits. Returns its end and
    its first page."""
    page = fetch(api, start, end, 0)
    counts["requests"] += 1
    while int(page.get("TotalResults") or 0) > MAX_OFFSET + MAX_LIMIT and end - start > timedelta(seconds=1):
        end = start + timedelta(seconds=int((end - start).total_seconds()) // 2)
        page = fetch(api, start, end, 0)
        counts["requests"] += 1
        counts["narrowed"] += 1
    return end, page


def pull_window(
    api: BazaarvoiceAPI,
    context: Context,
    held: tuple[PullState, PullLease],
    counts: RunCounts,
    window: tuple[datetime, datetime],
    page: dict[str, Any],
    deadline: float | None = None,
) -> None:
    """Read a window page by page, by keyset: each page starts again from the last item's LastModeratedTime second
    with Offset 0. Paging by Offset alone would skip reviews: one re-moderated while the window is read leaves it, and
    every later item moves one place up, past the offset. The items of that second are read again (recorded once).
    Only while a whole page shares one second does Offset go on, within that second."""
    state, lease = held
    start, end = window
    lower, offset = start, 0
    while True:
        results = [item for item in page["Results"] if isinstance(item, dict)]
        record_page(context, results, counts, end, lease)
        counts["pages"] += 1
        report_progress(counts.as_counts())
        read = len(page["Results"])  # Bazaarvoice's Offset counts every item, even one that is not a review
        if not read or offset + read >= int(page.get("TotalResults") or 0):
            return
        lower, offset = next_page_from(page["Results"], lower, offset)
        if offset > MAX_OFFSET:
            return
        # Every review before the next page's start is recorded: a run killed now starts from there.
        advance(state, lease, min(lower, end))
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent
        page = fetch(api, lower, end, offset)
        counts["requests"] += 1


def next_page_from(items: list[Any], lower: datetime, offset: int) -> tuple[datetime, int]:
    """Where the page after `items` (read from `lower` at `offset`) starts: the second of the last item's moderation
    time with Offset 0, or, when the page ends in the second it started from (so starting there again would read
    the same page), that second at the next offset."""
    seconds = [int(moment.timestamp()) for item in items if isinstance(item, dict) and (moment := moderated_time(item))]
    if not seconds or seconds[-1] <= int(lower.timestamp()):
        return lower, offset + len(items)
    return datetime.fromtimestamp(seconds[-1], UTC), 0


def record_page(
    context: Context, results: Iterable[dict[str, Any]], counts: RunCounts, before: datetime, lease: PullLease
) -> None:
    for item in results:
        counts["reviews"] += 1
        if not takeable(item, before):
            counts["not_taken"] += 1
            continue
        review, created = record_review(context.client, item)
        if review is None:
            counts["malformed"] += 1
        elif not created and review.outcome != Result.PENDING:
            counts["duplicates"] += 1
        else:
            counts["new"] += int(created)
            counts[settle(review, context)] += 1
            lease.renew()


def advance(state: PullState, lease: PullLease, moment: datetime) -> None:
    """Move the cursor forward (never back), saved at once with the run's renewed hold: the reviews before it are
    recorded. A run that lost the pull cannot move it."""
    if state.cursor is None or moment > state.cursor:
        lease.renew(cursor=moment)
        state.cursor = moment
    else:
        lease.renew()


# --- Admin use cases -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reread:
    """What moving a cursor back did: the outcome, and the cursor before and after (for the audit trail)."""

    outcome: Outcome
    before: datetime | None
    after: datetime | None


def reread_refusal(connection: Connection, cursor: datetime | None, moment: datetime) -> str:
    """Why the cursor cannot move back to `moment` (empty when it can)."""
    if cursor is None:
        return f"{connection} has not been pulled yet: the first pull reads from the start."
    if moment >= cursor:
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC is not before the cursor ({cursor:%Y-%m-%d %H:%M:%S} UTC)."
    return ""


def reread_from(connection: Connection, moment: datetime, *, now: datetime | None = None) -> Reread:
    """Move the connection's cursor back to `moment`, so the next run reads again from there (less its look-back):
    reviews found there that were never recorded are settled, the others are duplicates, so no review is awarded
    twice. Taken under the pull's hold, so no run in flight can move the cursor forward over it; refused while one
    holds the pull, for a moment that is not behind the cursor, or before the first pull (nothing to re-read)."""
    state, _ = PullState.objects.get_or_create(connection=connection)
    lease = claim(state, now or timezone.now())
    if lease is None:
        return Reread(Outcome.failure(f"A pull of {connection} is running: try again once it ends."), None, None)
    before = state.cursor  # read under the hold: no run moves it meanwhile
    refusal = reread_refusal(connection, before, moment)
    if refusal:
        lease.release()
        return Reread(Outcome.failure(refusal), before, before)
    if not lease.release(cursor=moment):
        return Reread(Outcome.failure(f"A pull of {connection} took over: try again once it ends."), before, before)
    message = (
        f"The cursor of {connection} moved back from {before:%Y-%m-%d %H:%M:%S} to {moment:%Y-%m-%d %H:%M:%S} UTC: "
        f"the next run reads again from {moment - look_back(connection):%Y-%m-%d %H:%M:%S} UTC (with the "
        "look-back); reviews already recorded are not awarded again."
    )
    return Reread(Outcome.success(message), before, moment)


def retry_review(review: Review) -> Outcome:
    """Settle a failed, undecryptable or pending review again (an admin fixed the cause)."""
    if review.outcome not in RETRYABLE:
        return Outcome.failure(f"{review} is {review.get_outcome_display()}: only failed ones are retried.")
    connection = connection_of(review.client, VENDOR)
    if connection is None:
        return Outcome(False, f"{review.client} has no Bazaarvoice connection.", error=True)
    try:
        outcome = settle(review, Context.of(connection))
    except StopRun as exc:
        return Outcome(False, str(exc), error=True)
    label = Result(outcome).label
    return Outcome(outcome == Result.AWARDED, f"{review}: {label}. {review.detail}")


def reverse_award(review: Review, by: User, reason: str) -> Outcome:
    """Debit an awarded review's points (a review found fraudulent), exactly once: the review is locked, and the
    debit has its own customId so a repeat can never take the points twice. A refused reversal can be tried again."""
    reason = reason.strip()
    if not reason:
        return Outcome.failure("Say why the award is reversed.")
    with transaction.atomic():
        # Only the review's row is locked: PostgreSQL refuses FOR UPDATE on the nullable side (member) of a join.
        locked = Review.objects.select_for_update(of=("self",)).select_related("member", "client")
        review = locked.get(pk=review.pk)
        if review.outcome == Result.REVERSED:
            return Outcome.failure(f"{review} was already reversed ({review.reversal_reason}).")
        if review.outcome != Result.AWARDED or review.member is None:
            return Outcome.failure(f"{review} is {review.get_outcome_display()}: only awarded reviews are reversed.")
        connection = connection_of(review.client, VENDOR)
        rules = RewardRules.of(connection) if connection else RewardRules()
        try:
            result = annexcloud.adjust_points(
                review.member,
                activity="debit",
                points=review.points,
                # A refused debit may be reversed again once its cause is fixed: a fresh portal key, the same customId.
                key=attempt_key(review.client_id, review.reversal_key),
                custom_id=review.reversal_key,
                action_id=rules.action_id,
                reason=f"Reversed: {reason}"[:200],
            )
        except (AnnexCloudNotReady, annexcloud.KeyReused) as exc:
            return Outcome(False, str(exc), error=True)
        txn = result.transaction
        if txn.status != PointsTransaction.Status.APPLIED:
            return Outcome(
                False, f"{review}: the reversal was not applied — {txn.detail} Reverse it again once fixed.", error=True
            )
        awarded_at = review.updated_at  # an awarded review is saved last when its award is settled
        review.outcome, review.reversed_by, review.reversed_at = Result.REVERSED, by, timezone.now()
        review.reversal_reason = reason
        review.detail = f"{review.detail} Reversed: {txn.detail}"
        review.save()
        mark_credit_reversed(review)
        reversal_counted(review, awarded_at)
    return Outcome.success(f"{review}: {txn.detail}")


def activity_series() -> list[ActivitySeries]:
    """The dashboard's chart of reviews that earned points (by the hour they were settled), net of those reversed
    since; it links to the awarded reviews (a review is last saved when it is awarded)."""
    awarded = CountedIn("admin:bazaarvoice_review_changelist", (("outcome__exact", Result.AWARDED),), "updated_at")
    return [
        ActivitySeries(
            "Reviews rewarded", REVIEWS_SETTLED, outcome=Result.AWARDED, net_of=Result.REVERSED, counted_in=awarded
        )
    ]
