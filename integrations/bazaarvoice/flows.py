"""Bazaarvoice use cases: verifying a connection, the incremental pull of approved reviews that awards each reviewer's
Annex Cloud points once per review, retrying a review, and reversing an award.

The pull reads `GET /data/reviews.json` from the connection's cursor up to the start of the client's today (seed 003:
"LastModeratedTime not today"), oldest first, 100 at a time. Every review is recorded once per client (a review seen
again — overlapping pages, re-moderation, a re-run — is a duplicate, never a second award), and the award goes
through Annex Cloud's points entry point with the review id as its key and `customId`, so neither the portal nor Annex
Cloud can apply it twice. The cursor moves only after a page's reviews are recorded. What stops a run (Annex Cloud
refusing the credentials or unreachable, Bazaarvoice's quota) leaves the review pending and the cursor where it was:
the next run takes it up again. Nothing is lost, nothing is awarded twice.
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

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud.api import AnnexCloudAPI
from integrations.annexcloud.flows import AnnexCloudNotReady
from integrations.bazaarvoice.api import MAX_LIMIT, MAX_OFFSET, BazaarvoiceAPI
from integrations.bazaarvoice.emails import PLAIN16, Undecryptable, decrypt_email, email_key, masked
from integrations.bazaarvoice.models import PullState, Review
from integrations.bazaarvoice.spec import DEFAULT_ACTION_ID, DEFAULT_FIRST_PULL_DAYS, DEFAULT_POINTS, DEFAULT_REASON
from integrations.connections import api_for, connection_of, usable
from integrations.http import AuthError, NotFound, RateLimited, Rejected, VendorError, path_segment
from integrations.jobs import Counts, report_progress
from integrations.models import Client, Connection
from integrations.outcome import Outcome
from members import sync
from members.flows import record_loyalty_event
from members.models import EventType, Member, PointsTransaction

VENDOR = "bazaarvoice"
# How long a run holds a connection's pull; a killed run's hold runs out by itself.
LEASE = timedelta(minutes=15)
# Reviews left pending by a stopped run, taken up first by the next run (at most this many per run).
PENDING_BATCH = 1000
# A scheduled run stops reading new pages after this long, well inside the task's time limit (PortalTask); the
# cursor is saved per page, so the next run simply continues. A backlog is worked off over several runs.
RUN_BUDGET = timedelta(minutes=8)
Result = Review.Outcome


class StopRun(Exception):
    """The run cannot go on (a vendor refuses the credentials, is unreachable, or the quota is used up); what it
    was doing stays pending and the next run resumes it. The message says why, for the admin."""


class BudgetSpent(Exception):
    """The run used its time (RUN_BUDGET): not an error, the next run continues from the cursor."""


# --- Set-up -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardRules:
    """A client's rules for rewarding a review (settings of its Bazaarvoice connection, with defaults)."""

    action_id: str = DEFAULT_ACTION_ID
    points: int = DEFAULT_POINTS
    reason: str = DEFAULT_REASON
    minimum_rating: int | None = None
    ratings_only_count: bool = True

    @classmethod
    def of(cls, connection: Connection) -> RewardRules:
        settings = connection.settings
        minimum = settings.get("minimum_rating")
        return cls(
            action_id=str(settings.get("action_id") or DEFAULT_ACTION_ID),
            points=int(settings.get("points_per_review") or DEFAULT_POINTS),
            reason=str(settings.get("reason") or DEFAULT_REASON),
            minimum_rating=int(minimum) if minimum else None,
            ratings_only_count=settings.get("ratings_only_count", "yes") != "no",
        )

    def why_not_counted(self, review: Review) -> str:
        """Why the rules give this review no points, or "" when they do."""
        if self.minimum_rating and (review.rating or 0) < self.minimum_rating:
            rated = review.rating or "nothing"
            return f"Rated {rated}: the client rewards reviews rated {self.minimum_rating} or more."
        if review.ratings_only and not self.ratings_only_count:
            return "A rating without a written review: the client rewards written reviews only."
        return ""


def bazaarvoice_api(connection: Connection) -> BazaarvoiceAPI:
    return api_for(connection, BazaarvoiceAPI, passkey=connection.secret("passkey"))


def check_connection(connection: Connection) -> str:
    """Verify: one `GET /data/reviews.json?apiversion=5.4&Limit=1`, side-effect free."""
    total = bazaarvoice_api(connection).check()
    return f"Bazaarvoice accepted the passkey ({total} reviews visible to it)."


def explain_auth_failure(error: AuthError) -> str:
    return (
        f"Bazaarvoice refused the passkey: {error.message}. Check the Conversations API passkey and that the "
        "environment (staging or production) is the one the passkey was issued for."
    )


def start_of_today(client: Client, now: datetime | None = None) -> datetime:
    """Midnight of the client's today, in UTC: no review moderated at or after it is taken yet (seed 003)."""
    today = client.local_date(now or timezone.now())
    return datetime.combine(today, time_of_day.min, tzinfo=client.zone).astimezone(UTC)


# --- Recording a page ---------------------------------------------------------------------------------------------


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
    """What the filters asked for, checked again: approved, and moderated before the client's today."""
    moderated = moderated_time(item)
    return str(item.get("ModerationStatus", "APPROVED")).upper() == "APPROVED" and (
        moderated is None or moderated < today_start
    )


# --- Settling one review ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What settling a review of one connection needs, read once per run."""

    connection: Connection
    rules: RewardRules
    derivation: str

    @classmethod
    def of(cls, connection: Connection) -> Context:
        derivation = str(connection.settings.get("email_key_derivation") or PLAIN16)
        return cls(connection, RewardRules.of(connection), derivation)

    @property
    def client(self) -> Client:
        return self.connection.client


def settle(review: Review, context: Context) -> str:
    """Decide a pending review: award its points or record why not. Returns the outcome; raises StopRun when the
    run must stop (the review stays pending, to be taken up by the next run)."""
    review.attempts += 1
    if why := context.rules.why_not_counted(review):
        return finish(review, Result.NOT_COUNTED, why)
    try:
        key = email_key(context.connection.secret("shared_secret"), context.derivation)
        address = decrypt_email(review.encrypted_email, key)
    except Undecryptable as exc:
        return finish(
            review,
            Result.UNDECRYPTABLE,
            f"The reviewer's e-mail address could not be decrypted ({exc}). Check the shared secret and the e-mail "
            "key derivation of the Bazaarvoice connection, then Retry the review.",
        )
    review.masked_email = masked(address)
    profile = loyalty_profile(review, address)
    if profile is None:
        return review.outcome
    if why := why_not_eligible(profile):
        return finish(review, Result.NOT_ELIGIBLE, why)
    return award(review, context, member_for(context.client, address, profile))


def loyalty_profile(review: Review, address: str) -> dict[str, Any] | None:
    """The reviewer's Annex Cloud profile (`GET /users/{e-mail}`), or None when the review was settled without one."""
    try:
        profile = lookup_api(review.client, address).get_member(address)
    except NotFound:
        finish(review, Result.NOT_MEMBER, "The reviewer is not a loyalty member at Annex Cloud (AC1005, no data).")
        return None
    except Rejected as exc:
        finish(review, Result.FAILED, f"Annex Cloud refused the member look-up: {exc.message}. {exc.hint}")
        return None
    except (AnnexCloudNotReady, VendorError) as exc:
        raise stop(review, exc) from exc
    if not isinstance(profile, dict) or not profile:
        finish(review, Result.NOT_MEMBER, "Annex Cloud answered with no data for the reviewer: not a loyalty member.")
        return None
    return profile


def lookup_api(client: Client, address: str) -> AnnexCloudAPI:
    """The client's Annex Cloud API for looking a reviewer up, with the address redacted like a secret from the call
    log (in the path, escaped or not, and in the answer): a reviewer who is no member must leave no trace of it."""
    connection = annexcloud.ready_connection(client)
    return api_for(
        connection,
        AnnexCloudAPI,
        site_id=client.site_id,
        secret=connection.secret("api_secret"),
        subject=connection.settings.get("jwt_subject", ""),
        secret_values=[*(str(v) for v in connection.secrets.values() if v), address, path_segment(address)],
    )


def why_not_eligible(profile: dict[str, Any]) -> str:
    if str(profile.get("optInStatus") or "YES").upper() == "NO":
        return "The reviewer opted out of the loyalty program (optInStatus NO): no points."
    if str(profile.get("status") or "ACTIVE").upper() != "ACTIVE":
        return f"The reviewer's loyalty membership is {str(profile['status']).lower()}: no points."
    return ""


def member_for(client: Client, address: str, profile: dict[str, Any]) -> Member:
    """The client's member this reviewer is (by Annex Cloud id or e-mail), created when there is none, and brought
    up to date with Annex Cloud's profile the way a refresh does, so the other vendors follow."""
    annex_id = str(profile.get("id") or "")
    match = Q(email__iexact=address) | (Q(annex_cloud_id=annex_id) if annex_id else Q(pk__in=[]))
    member = Member.objects.filter(client=client).filter(match).order_by("pk").first()
    if member is None:
        member = Member.objects.create(client=client, email=address)
        sync.record_change(member, {"email"}, {"email": ""})
    try:
        with transaction.atomic():
            annexcloud.apply_profile(member, profile)
    except IntegrityError:
        # Annex Cloud's mobile number belongs to another member here: everything else is still taken.
        member.refresh_from_db()
        annexcloud.apply_profile(member, {k: v for k, v in profile.items() if k != "phone"})
    return member


def award(review: Review, context: Context, member: Member) -> str:
    """Credit the review's points once (key and customId: the review id); a thank-you event follows an award."""
    review.member = member
    review.points = review.points or context.rules.points  # a retry sends what the first attempt sent
    try:
        result = annexcloud.adjust_points(
            member,
            activity=PointsTransaction.Activity.CREDIT,
            points=review.points,
            key=award_key(review),
            action_id=context.rules.action_id,
            reason=context.rules.reason,
        )
    except (AnnexCloudNotReady, annexcloud.KeyReused) as exc:
        raise stop(review, exc) from exc
    txn = result.transaction
    if txn.status == PointsTransaction.Status.APPLIED:
        thank(review, member, txn)
        return finish(review, Result.AWARDED, txn.detail, answer=txn.response)
    if txn.status == PointsTransaction.Status.FAILED:
        return finish(review, Result.FAILED, txn.detail)
    # Not confirmed (Annex Cloud refused the credentials, was unreachable, or its answer was lost): kept pending; the
    # same key goes again next time, and customId with retry YES means Annex Cloud applies it once at most.
    raise stop(review, txn.detail)


def award_key(review: Review) -> str:
    """The review's award key: its own (`bv-review-<id>`) until Annex Cloud refuses an award under it. A refused
    award was not applied, so a retry after the cause is fixed goes under a fresh key (`...-retry-<n>`); a pending one
    (answer lost) keeps its key, so it can never be applied twice."""
    keys = Q(key=review.award_key) | Q(key__startswith=f"{review.award_key}-retry-")
    refused = PointsTransaction.objects.filter(keys, client_id=review.client_id, status=PointsTransaction.Status.FAILED)
    count = refused.count()
    return f"{review.award_key}-retry-{count}" if count else review.award_key


def thank(review: Review, member: Member, txn: PointsTransaction) -> None:
    """The `review_rewarded` loyalty event (once per review), so the client's template can thank the reviewer."""
    data: dict[str, Any] = {"points": review.points, "review_id": review.review_id, "product_id": review.product_id}
    if (balance := annexcloud.whole_number(txn.response.get("updatedAvailablePoints"))) is not None:
        data["points_balance"] = balance
    if txn.response.get("updatedUserTier"):
        data["tier"] = str(txn.response["updatedUserTier"])
    record_loyalty_event(
        review.client, member, external_id=review.award_key, event_type=EventType.REVIEW_REWARDED, data=data
    )


def finish(review: Review, outcome: str, detail: str, *, answer: dict[str, Any] | None = None) -> str:
    review.outcome, review.detail = outcome, detail
    if answer is not None:
        review.annex_cloud_answer = answer
    review.save()
    return outcome


def stop(review: Review, cause: Exception | str) -> StopRun:
    """Keep the review pending with the reason and end the run."""
    reason = cause.for_admin if isinstance(cause, VendorError) else str(cause)
    finish(review, Result.PENDING, f"Waiting: {reason}")
    return StopRun(f"Stopped at review {review.review_id}: {reason} The next run resumes from there.")


# --- The pull -------------------------------------------------------------------------------------------------------


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
    if not claim(state, now):
        return PullResult(Outcome.failure(f"A pull of {connection} is already running."), {"skipped": 1})
    counts = RunCounts()
    message = "The run failed: see its job run for the error. Nothing recorded is lost; the next run resumes."
    try:
        context = Context.of(connection)
        settle_pending(context, counts)
        pull_pages(bazaarvoice_api(connection), context, state, counts, (now, deadline))
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
    else:
        message = f"Pulled {counts['reviews']} reviews: {counts['awarded']} awarded."
    finally:
        state.lease_until = None
        state.last_run_at, state.last_run_counts = timezone.now(), counts.as_counts()
        state.last_run_result = message
        state.save(update_fields=["lease_until", "last_run_at", "last_run_counts", "last_run_result", "quota_reset_at"])
    return PullResult(Outcome(not counts["stopped"], message, error=bool(counts["stopped"])), counts.as_counts())


def claim(state: PullState, now: datetime) -> bool:
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now)
    claimed = PullState.objects.filter(free, pk=state.pk).update(lease_until=now + LEASE)
    if claimed:
        state.refresh_from_db()
    return bool(claimed)


def settle_pending(context: Context, counts: RunCounts) -> None:
    """Reviews a stopped run left pending are settled before any new page is read."""
    pending = Review.objects.filter(client=context.client, outcome=Result.PENDING).order_by("moderated_at", "pk")
    for review in pending[:PENDING_BATCH]:
        counts[settle(review, context)] += 1


def review_filters(start: datetime, end: datetime) -> list[str]:
    """Approved reviews moderated in [start, end): time attributes take epoch seconds; repeated filters are ANDed."""
    return [
        "ModerationStatus:eq:APPROVED",
        f"LastModeratedTime:gte:{int(start.timestamp())}",
        f"LastModeratedTime:lt:{int(end.timestamp())}",
    ]


def fetch(api: BazaarvoiceAPI, start: datetime, end: datetime, offset: int) -> dict[str, Any]:
    return api.reviews(filters=review_filters(start, end), sort="LastModeratedTime:asc", limit=MAX_LIMIT, offset=offset)


def first_pull_start(context: Context, today_start: datetime) -> datetime:
    days = int(context.connection.settings.get("first_pull_days") or DEFAULT_FIRST_PULL_DAYS)
    return today_start - timedelta(days=days)


def pull_pages(
    api: BazaarvoiceAPI, context: Context, state: PullState, counts: RunCounts, clock: tuple[datetime, float | None]
) -> None:
    """Page through windows of moderation time from the cursor to the start of the client's today (`clock`: the
    run's now, and its deadline on the monotonic clock, if any)."""
    now, deadline = clock
    today_start = start_of_today(context.client, now)
    start = state.cursor or first_pull_start(context, today_start)
    while start < today_start:
        end, page = narrowed_window(api, start, today_start, counts)
        pull_window(api, context, state, counts, (start, end), page, deadline)
        advance(state, end)
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
    state: PullState,
    counts: RunCounts,
    window: tuple[datetime, datetime],
    page: dict[str, Any],
    deadline: float | None = None,
) -> None:
    start, end = window
    offset = 0
    while True:
        results = [item for item in page["Results"] if isinstance(item, dict)]
        record_page(context, results, counts, end)
        counts["pages"] += 1
        report_progress(counts.as_counts())
        offset += len(page["Results"])  # Bazaarvoice's Offset counts every item, even one that is not a review
        total = int(page.get("TotalResults") or 0)
        if not page["Results"] or offset >= total or offset > MAX_OFFSET:
            return
        # Every review up to this page's last moderation time is recorded: a run killed now starts from there.
        if results and (last := moderated_time(results[-1])) is not None:
            advance(state, min(last, end))
        if deadline is not None and time.monotonic() > deadline:
            raise BudgetSpent
        page = fetch(api, start, end, offset)
        counts["requests"] += 1


def record_page(context: Context, results: Iterable[dict[str, Any]], counts: RunCounts, before: datetime) -> None:
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


def advance(state: PullState, moment: datetime) -> None:
    """Move the cursor forward (never back), saved at once: the reviews before it are recorded."""
    if state.cursor is None or moment > state.cursor:
        state.cursor = moment
        PullState.objects.filter(pk=state.pk).update(cursor=moment)


# --- Admin use cases ------------------------------------------------------------------------------------------------


def retry_review(review: Review) -> Outcome:
    """Settle a failed, undecryptable or pending review again (an admin fixed the cause)."""
    if review.outcome not in (Result.FAILED, Result.UNDECRYPTABLE, Result.PENDING):
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


def reverse_award(review: Review, by: AbstractBaseUser, reason: str) -> Outcome:
    """Debit an awarded review's points (a review found fraudulent), exactly once: the review is locked, and the
    debit has its own key (customId) so a repeat can never take the points twice."""
    reason = reason.strip()
    if not reason:
        return Outcome.failure("Say why the award is reversed.")
    with transaction.atomic():
        review = Review.objects.select_for_update().select_related("member", "client").get(pk=review.pk)
        if review.outcome == Result.REVERSED:
            return Outcome.failure(f"{review} was already reversed ({review.reversal_reason}).")
        if review.outcome != Result.AWARDED or review.member is None:
            return Outcome.failure(f"{review} is {review.get_outcome_display()}: only awarded reviews are reversed.")
        connection = connection_of(review.client, VENDOR)
        rules = RewardRules.of(connection) if connection else RewardRules()
        try:
            result = annexcloud.adjust_points(
                review.member,
                activity=PointsTransaction.Activity.DEBIT,
                points=review.points,
                key=review.reversal_key,
                action_id=rules.action_id,
                reason=f"Reversed: {reason}"[:200],
            )
        except (AnnexCloudNotReady, annexcloud.KeyReused) as exc:
            return Outcome(False, str(exc), error=True)
        txn = result.transaction
        if txn.status != PointsTransaction.Status.APPLIED:
            return Outcome(False, f"{review}: the reversal was not applied — {txn.detail}", error=True)
        review.outcome, review.reversed_by, review.reversed_at = Result.REVERSED, by, timezone.now()
        review.reversal_reason = reason
        review.detail = f"{review.detail} Reversed: {txn.detail}"
        review.save()
    return Outcome.success(f"{review}: {txn.detail}")
