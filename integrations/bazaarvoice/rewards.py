"""Settling one Bazaarvoice review: the client's reward rules, decrypting the reviewer's e-mail, looking them up at
Annex Cloud, and awarding the points once (the review id as key and `customId`) with a `review_rewarded` loyalty
event — or recording why not. Used by the pull and by the admin's Retry (integrations/bazaarvoice/flows.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from integrations import rollups
from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud.api import NO_DATA_EXPECTED
from integrations.annexcloud.flows import AnnexCloudNotReady
from integrations.bazaarvoice.emails import PLAIN16, Undecryptable, decrypt_email, email_key, masked
from integrations.bazaarvoice.models import Review
from integrations.bazaarvoice.spec import DEFAULT_ACTION_ID, DEFAULT_POINTS, DEFAULT_REASON
from integrations.connections import SecretsUnreadable, refuse_unreadable_secrets
from integrations.http import NotFound, Rejected, VendorError, path_segment
from integrations.models import Client, Connection
from integrations.redaction import secret_values_during
from members import changes, sync
from members.flows import record_loyalty_event
from members.models import EMAIL_FORMAT_HINT, EventType, Member, PointsTransaction, email_problem

Result = Review.Outcome


# --- Rules ---------------------------------------------------------------------------------------------------------


class StopRun(Exception):
    """The run cannot go on (a vendor refuses the credentials, is unreachable, or the quota is used up); what it
    was doing stays pending and the next run resumes it. The message says why, for the admin."""


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


# --- Settling ------------------------------------------------------------------------------------------------------


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
        refuse_unreadable_secrets(context.connection)  # a blank shared secret would call every address undecryptable
    except SecretsUnreadable as exc:
        raise stop(review, exc) from exc
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
    if why := address_problem(address):
        return finish(review, Result.NOT_ELIGIBLE, why)
    profile = loyalty_profile(review, address)
    if profile is None:
        return review.outcome
    if why := why_not_eligible(profile):
        return finish(review, Result.NOT_ELIGIBLE, why)
    # The member's profile, then the points: changed by this review, and linked to it on the member's timeline.
    with changes.changed_by(f"Bazaarvoice's review {review.review_id}", source=review):
        return award(review, context, member_for(context.client, address, profile))


def loyalty_profile(review: Review, address: str) -> dict[str, Any] | None:
    """The reviewer's Annex Cloud profile (`GET /users/{e-mail}`), or None when the review was settled without one."""
    try:
        # A reviewer who is no member must leave no trace of the address: while the look-up runs it is redacted like a
        # secret (escaped in the path or not) from the call log and from every log line (urllib3 logs the request
        # line at DEBUG).
        with secret_values_during([address, path_segment(address)]):
            profile = annexcloud.annex_cloud_api(review.client).get_member(address, expected=NO_DATA_EXPECTED)
    except NotFound:
        finish(review, Result.NOT_MEMBER, "The reviewer is not a loyalty member at Annex Cloud (AC1005, no data).")
        return None
    except Rejected as exc:
        finish(review, Result.FAILED, f"Annex Cloud refused the member look-up: {exc.sentence} {exc.hint}")
        return None
    except (AnnexCloudNotReady, VendorError) as exc:
        raise stop(review, exc) from exc
    if not isinstance(profile, dict) or not profile:
        finish(review, Result.NOT_MEMBER, "Annex Cloud answered with no data for the reviewer: not a loyalty member.")
        return None
    return profile


def why_not_eligible(profile: dict[str, Any]) -> str:
    if str(profile.get("optInStatus") or "YES").upper() == "NO":
        return "The reviewer opted out of the loyalty program (optInStatus NO): no points."
    if str(profile.get("status") or "ACTIVE").upper() != "ACTIVE":
        return f"The reviewer's loyalty membership is {str(profile['status']).lower()}: no points."
    return ""


class InvalidReviewerAddress(ValueError):
    """A decrypted reviewer address that is no valid e-mail address: never looked up, stored or awarded."""


def address_problem(address: str) -> str:
    """Why a decrypted reviewer address is never looked up at Annex Cloud nor made a member ("" when it is fine),
    as every other way in checks e-mails (members.models.email_problem). The reason shows the address masked: the
    review's detail is shown in the admin, and a reviewer who is no member leaves no address behind."""
    if not email_problem(address):
        return ""
    return (
        f"The reviewer's e-mail address ({masked(address)}) is not a valid e-mail address ({EMAIL_FORMAT_HINT}): "
        "not looked up at Annex Cloud, no points."
    )


FOUND_THROUGH = "Annex Cloud, as a Bazaarvoice reviewer"


def member_for(client: Client, address: str, profile: dict[str, Any]) -> Member:
    """The client's member this reviewer is (by Annex Cloud id or e-mail), created when there is none, and brought
    up to date with Annex Cloud's profile the way a refresh does, so the other vendors follow. An address that is no
    valid e-mail is refused (InvalidReviewerAddress): it would be stored and passed on to Vibes and SessionM."""
    if why := address_problem(address):
        raise InvalidReviewerAddress(why)
    match = Q(email__iexact=address)
    if annex_id := profile.get("id"):
        match |= Q(annex_cloud_id=str(annex_id))
    member = Member.objects.filter(client=client).filter(match).order_by("pk").first()
    if member is None:
        # An existing loyalty member found at Annex Cloud, not a sign-up: no welcome, and Annex Cloud's profile (name,
        # number, …) is taken just below, so each vendor gets only what it can use.
        member = Member.objects.create(client=client, email=address, found_through=FOUND_THROUGH)
        sync.record_change(member, {"email"})  # a new member: nothing before it for a vendor to compare
    try:
        with transaction.atomic():
            annexcloud.apply_profile(member, profile)
    except IntegrityError:
        # Annex Cloud's mobile number belongs to another member here: everything else is still taken.
        member.refresh_from_db()
        annexcloud.apply_profile(member, {k: v for k, v in profile.items() if k != "phone"})
    return member


def award(review: Review, context: Context, member: Member) -> str:
    """Credit the review's points once (customId: the review's award key, whatever the attempt); a thank-you event
    follows an award."""
    if problem := annexcloud.never_verified(review.client):
        # As segment pushes: points go only to an Annex Cloud account somebody has checked.
        raise stop(review, problem)
    if (earlier := earlier_adjustment(review.client_id, review.award_key)) is not None:
        # A run killed after the award was recorded but before the review was saved: the award goes on as it was
        # first sent (its member and points), whatever the reward rules or the look-up say now.
        member, review.points = earlier.member, earlier.points
    review.member = member
    review.points = review.points or context.rules.points  # a retry sends what the first attempt sent
    try:
        result = annexcloud.adjust_points(
            member,
            activity="credit",
            points=review.points,
            key=attempt_key(review.client_id, review.award_key),
            custom_id=review.award_key,
            action_id=context.rules.action_id,
            reason=context.rules.reason,
        )
    except AnnexCloudNotReady as exc:
        raise stop(review, exc) from exc
    except annexcloud.KeyReused as exc:
        return finish(review, Result.FAILED, f"{exc} Tell the portal's developers: this review cannot be awarded.")
    return settle_award(review, member, result.transaction)


def settle_award(review: Review, member: Member, txn: PointsTransaction) -> str:
    """What the award's transaction says becomes the review's outcome, with Annex Cloud's answer (or refusal)."""
    if txn.status == PointsTransaction.Status.APPLIED:
        thank(review, member, txn)
        return finish(review, Result.AWARDED, txn.detail, answer=txn.response)
    if txn.status == PointsTransaction.Status.FAILED and txn.response.get("errorCode") == UNCERTAIN_CODE:
        # "Something went wrong" says nothing of whether the credit was applied: kept pending (the next run or Retry
        # sends it again under the same customId, which Annex Cloud applies once at most), never failed.
        detail = f"Uncertain: {txn.detail} The award may have been applied; it is sent again under the same customId."
        return finish(review, Result.PENDING, detail, answer=txn.response)
    if txn.status == PointsTransaction.Status.FAILED:
        return finish(review, Result.FAILED, txn.detail, answer=txn.response)
    # Not confirmed (Annex Cloud refused the credentials, was unreachable, or its answer was lost): kept pending; the
    # same key goes again next time, and customId with retry YES means Annex Cloud applies it once at most.
    raise stop(review, txn.detail)


# Annex Cloud's generic "Oops! Something went wrong.": it may come after the adjustment was applied.
UNCERTAIN_CODE = "AC1001"


def attempt_key(client_id: int, base: str) -> str:
    """The portal's key for the next attempt of an adjustment (`base`: an award's or a reversal's key): `base` until
    Annex Cloud refuses it, then `<base>-retry-<n>`, so a refused one can be sent again once its cause is fixed. The
    customId sent stays `base` for every attempt (Annex Cloud applies it once at most); a pending one (answer lost)
    keeps its key."""
    count = attempts_of(client_id, base).filter(status=PointsTransaction.Status.FAILED).count()
    return f"{base}-retry-{count}" if count else base


def attempts_of(client_id: int, base: str) -> QuerySet[PointsTransaction]:
    keys = Q(key=base) | Q(key__startswith=f"{base}-retry-")
    return PointsTransaction.objects.filter(keys, client_id=client_id)


def earlier_adjustment(client_id: int, base: str) -> PointsTransaction | None:
    return attempts_of(client_id, base).select_related("member").order_by("pk").first()


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


# Outcomes a review may be settled again from (by the next run or Retry): they keep the encrypted address for it.
RETRYABLE = frozenset({Result.PENDING, Result.FAILED, Result.UNDECRYPTABLE})
# The rollup series of reviews settled for good (outcome: awarded, skipped, …), charted by the dashboard.
REVIEWS_SETTLED = "bazaarvoice_reviews"


def finish(review: Review, outcome: str, detail: str, *, answer: dict[str, Any] | None = None) -> str:
    review.outcome, review.detail = outcome, detail
    if answer is not None:
        review.annex_cloud_answer = answer
    if outcome not in RETRYABLE:
        review.encrypted_email = ""  # settled for good: the address is not kept longer than needed
    review.save()
    if outcome not in RETRYABLE:
        rollups.counted(REVIEWS_SETTLED, outcome=outcome, client_pk=review.client_id)
    return outcome


def mark_credit_reversed(review: Review) -> None:
    """The award's applied credit says it was taken back, so the list the dashboard's "Points awarded" links to can
    leave it out as the chart does (the chart nets it; the list shows the credits that still stand)."""
    credits = attempts_of(review.client_id, review.award_key).filter(
        activity=PointsTransaction.Activity.CREDIT, status=PointsTransaction.Status.APPLIED
    )
    credits.update(reversed_at=review.reversed_at)


def reversal_counted(review: Review, awarded_at: datetime) -> None:
    """A reversed award taken off the dashboard's "Reviews rewarded" and "Points awarded" in the hour it was awarded
    (counted as REVERSED reviews and reversed credit there, which the charts subtract): both are net of reversals.
    The debit that took the points back is counted as any settled points transaction."""
    rollups.record([rollups.Tally(REVIEWS_SETTLED, Result.REVERSED, review.client_id, hour=awarded_at)])
    rollups.credit_reversed(review.client_id, review.points, awarded_at)


def stop(review: Review, cause: Exception | str) -> StopRun:
    """Keep the review pending with the reason and end the run."""
    reason = cause.for_admin if isinstance(cause, VendorError) else str(cause)
    finish(review, Result.PENDING, f"Waiting: {reason}")
    return StopRun(f"Stopped at review {review.review_id}: {reason} The next run resumes from there.")
