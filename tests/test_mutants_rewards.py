"""integrations/bazaarvoice/rewards.py's rules, pinned where the pull's flow tests leave room (found by `make
mutate`): a client's reward rules read from its connection's settings, why a review or a reviewer gets no points,
and the key of each attempt at an award; then settling one review against a local Annex Cloud (pytest-httpserver,
real HTTP): which member a reviewer is, the look-up's outcomes, the award and its thank-you event, what a reversal
marks and counts, and what a settled review keeps. Fast tests: the rules are plain functions of settings, reviews
and Annex Cloud profiles; the rest call one function of rewards.py each."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from pytest_httpserver import HTTPServer

from integrations import rollups
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.emails import email_key, encrypt_email, masked
from integrations.bazaarvoice.models import Review
from integrations.bazaarvoice.rewards import (
    Context,
    InvalidReviewerAddress,
    RewardRules,
    StopRun,
    attempt_key,
    award,
    finish,
    loyalty_profile,
    mark_credit_reversed,
    member_for,
    reversal_counted,
    settle,
    stop,
    thank,
    why_not_eligible,
)
from integrations.http import EXPECTED_NOT_FOUND, VendorError
from integrations.models import Connection, Rollup, VendorCall
from integrations.redaction import REDACTED
from members.models import (
    EMAIL_FORMAT_HINT,
    EventType,
    LoyaltyEvent,
    Member,
    MemberAction,
    MemberChange,
    MemberVendorState,
    PointsTransaction,
)
from tests.factories import ConnectionFactory, MemberFactory, local_annex_cloud

Result = Review.Outcome


def rules(**settings) -> RewardRules:
    return RewardRules.of(Connection(vendor="bazaarvoice", settings=settings))


def review(rating: int | None, *, ratings_only: bool = False) -> Review:
    return Review(rating=rating, ratings_only=ratings_only)


def test_without_settings_the_rules_are_the_documented_defaults():
    assert rules() == RewardRules(action_id="100", points=50, reason="Ratings and Reviews")
    assert rules() == rules(action_id="", points_per_review="", reason="", minimum_rating="", ratings_only_count="")
    assert (rules().minimum_rating, rules().ratings_only_count) == (None, True)


def test_the_settings_are_read_as_their_types():
    read = rules(action_id=200, points_per_review="25", reason="Thanks", minimum_rating="4", ratings_only_count="no")
    assert read == RewardRules(action_id="200", points=25, reason="Thanks", minimum_rating=4, ratings_only_count=False)
    assert rules(ratings_only_count="yes").ratings_only_count and rules(minimum_rating=0).minimum_rating is None


@pytest.mark.parametrize(
    ("rating", "minimum", "why"),
    [
        (3, "4", "Rated 3: the client rewards reviews rated 4 or more."),
        (None, "1", "Rated nothing: the client rewards reviews rated 1 or more."),
        (4, "4", ""),
        (5, "4", ""),
        (1, "", ""),
    ],
)
def test_a_rating_under_the_minimum_is_not_counted_and_the_minimum_itself_is(rating, minimum, why):
    assert rules(minimum_rating=minimum).why_not_counted(review(rating)) == why


def test_a_rating_without_a_written_review_counts_unless_the_client_says_no():
    rating_only = review(5, ratings_only=True)
    assert rules().why_not_counted(rating_only) == ""
    assert rules(ratings_only_count="no").why_not_counted(review(5)) == ""
    assert (
        rules(ratings_only_count="no").why_not_counted(rating_only)
        == "A rating without a written review: the client rewards written reviews only."
    )


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ({"id": "a@x.com"}, ""),
        ({"optInStatus": "YES", "status": "ACTIVE"}, ""),
        ({"optInStatus": "yes", "status": "active"}, ""),
        ({"optInStatus": "", "status": None}, ""),
        ({"optInStatus": "no"}, "The reviewer opted out of the loyalty program (optInStatus NO): no points."),
        (
            {"optInStatus": "NO", "status": "INACTIVE"},
            "The reviewer opted out of the loyalty program (optInStatus NO): no points.",
        ),
        ({"status": "Inactive"}, "The reviewer's loyalty membership is inactive: no points."),
        ({"status": "BLOCKED"}, "The reviewer's loyalty membership is blocked: no points."),
    ],
)
def test_an_opted_out_or_inactive_reviewer_is_not_eligible(profile, why):
    assert why_not_eligible(profile) == why


# --- Settling a review against a local Annex Cloud (pytest-httpserver) ------------------------------------------


USERS = re.compile(r"/api/3\.0/users/.*")
POINTS = "/api/3.0/points"
ANN = "ann@example.com"


@pytest.fixture
def annex(httpserver: HTTPServer, client_a, settings) -> Connection:
    """Client A's verified Annex Cloud connection, a local fake over real HTTP."""
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    client_a.site_id = "100001"
    client_a.save()
    return local_annex_cloud(client_a, httpserver.url_for("/api/3.0"), status=Connection.Status.ACTIVE)


@pytest.fixture
def bv(client_a) -> Connection:
    return ConnectionFactory(client=client_a, vendor="bazaarvoice", secrets=dict(bazaarvoice_simulator.DEMO_SECRETS))


def reviewed(client, address: str = ANN, **fields) -> Review:
    """A pending review of `client` by `address` (encrypted as Bazaarvoice sends it)."""
    values = {"review_id": "7", "product_id": "P-1", "rating": 5, "moderated_at": datetime.now(UTC), **fields}
    encrypted = encrypt_email(address, email_key(bazaarvoice_simulator.SHARED_SECRET))
    return Review.objects.create(client=client, encrypted_email=encrypted, **values)


def answer_profile(httpserver: HTTPServer, answer, status: int = 200) -> None:
    httpserver.expect_request(USERS, method="GET").respond_with_json(answer, status=status)


def sent_points(httpserver: HTTPServer) -> list[dict]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log if request.path == POINTS]


def settled(review: Review) -> Review:
    return Review.objects.get(pk=review.pk)


def counted_rows(**match) -> list[tuple]:
    rows = Rollup.objects.exclude(hour=rollups.ALL_TIME).filter(**match)
    return sorted(rows.values_list("hour", "series", "client_pk", "outcome", "count", "total"))


@contextlib.contextmanager
def logged_lines():
    """What the console handler (and its redaction) writes meanwhile, urllib3's DEBUG request lines included."""
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    urllib3 = logging.getLogger("urllib3")
    original, level = handler.stream, urllib3.level
    handler.stream = stream
    urllib3.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        handler.stream = original
        urllib3.setLevel(level)


# --- member_for ---


@pytest.mark.django_db
def test_a_reviewer_is_the_clients_member_with_that_email_whatever_its_case(client_a):
    ann = MemberFactory(client=client_a, email="Ann@Example.COM", annex_cloud_id="")

    assert member_for(client_a, ANN, {}) == ann
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_a_reviewer_is_the_clients_member_with_that_annex_cloud_id(client_a):
    ann = MemberFactory(client=client_a, email="old@example.com", annex_cloud_id="AC-9")

    assert member_for(client_a, ANN, {"id": "AC-9"}) == ann
    assert Member.objects.count() == 1


@pytest.mark.django_db
def test_a_profile_without_an_id_matches_no_member_by_an_empty_annex_cloud_id(client_a):
    other = MemberFactory(client=client_a, email="other@example.com", annex_cloud_id="")

    new = member_for(client_a, ANN, {})

    assert new != other and new.email == ANN and Member.objects.count() == 2


@pytest.mark.django_db
def test_only_the_clients_own_members_are_matched(client_a, client_b):
    theirs = MemberFactory(client=client_b, email=ANN, annex_cloud_id="AC-9")

    ours = member_for(client_a, ANN, {"id": "AC-9"})

    assert ours != theirs and ours.client == client_a and ours.annex_cloud_id == "AC-9"


@pytest.mark.django_db
def test_when_the_email_and_the_id_match_two_members_the_oldest_is_the_reviewer(client_a):
    by_id = MemberFactory(client=client_a, email="old@example.com", annex_cloud_id="AC-9")
    by_email = MemberFactory(client=client_a, email=ANN, annex_cloud_id="")
    assert by_id.pk < by_email.pk
    assert member_for(client_a, ANN, {"id": "AC-9"}) == by_id

    Member.objects.all().delete()
    by_email = MemberFactory(client=client_a, email=ANN, annex_cloud_id="")
    by_id = MemberFactory(client=client_a, email="old@example.com", annex_cloud_id="AC-9")
    assert member_for(client_a, ANN, {"id": "AC-9"}) == by_email


@pytest.mark.django_db
def test_a_new_reviewer_member_takes_annex_clouds_profile_and_the_other_vendors_are_told(client_a):
    ConnectionFactory(client=client_a, vendor="vibes", settings={"company_key": "acme"})
    profile = {"id": "AC-9", "email": ANN, "firstName": "Ann", "lastName": "Lee", "phone": "415-555-9876"}

    ann = member_for(client_a, ANN, profile)

    ann = Member.objects.get(pk=ann.pk)
    assert (ann.client, ann.email, ann.found_through) == (client_a, ANN, "Annex Cloud, as a Bazaarvoice reviewer")
    assert (ann.annex_cloud_id, ann.first_name, ann.last_name, ann.phone) == ("AC-9", "Ann", "Lee", "+14155559876")
    assert ann.known_to_annex_cloud
    state = MemberVendorState.objects.get(member=ann, vendor="vibes")
    assert state.status == MemberVendorState.Status.PENDING and state.desired_version >= 1
    assert not LoyaltyEvent.objects.exists()  # found at Annex Cloud: no welcome
    made, *taken = MemberChange.objects.filter(member=ann).order_by("pk").values_list("fields", flat=True)
    assert made == "email" and taken  # the creation first (its e-mail, from nothing), then the profile


@pytest.mark.django_db
def test_a_new_reviewer_with_an_empty_profile_is_still_recorded_for_sessionm_and_not_welcomed(client_a):
    """The creation is a change the other vendors hear of, whatever the profile brings."""
    ConnectionFactory(client=client_a, vendor="sessionm", secrets={})

    ann = member_for(client_a, ANN, {})

    assert MemberVendorState.objects.filter(member=ann, vendor="sessionm").exists()
    assert ann.found_through == "Annex Cloud, as a Bazaarvoice reviewer" and not LoyaltyEvent.objects.exists()


@pytest.mark.django_db
def test_a_phone_another_member_has_is_left_out_and_the_rest_of_the_profile_is_taken(client_a):
    bo = MemberFactory(client=client_a, email="bo@example.com", phone="+14155559876", annex_cloud_id="")
    profile = {"id": "AC-9", "firstName": "Ann", "lastName": "Lee", "phone": "415-555-9876"}

    ann = member_for(client_a, ANN, profile)

    ann = Member.objects.get(pk=ann.pk)
    assert (ann.email, ann.annex_cloud_id, ann.first_name, ann.last_name) == (ANN, "AC-9", "Ann", "Lee")
    assert ann.phone == "" and Member.objects.get(pk=bo.pk).phone == "+14155559876"


@pytest.mark.django_db
def test_an_invalid_reviewer_address_is_refused_and_no_member_is_made(client_a):
    with pytest.raises(InvalidReviewerAddress, match="not a valid e-mail address"):
        member_for(client_a, "not-an-address", {"id": "AC-9"})
    assert not Member.objects.exists()


# --- thank ---


@pytest.mark.django_db
def test_the_thank_you_event_says_the_points_the_review_the_product_the_balance_and_the_tier(client_a):
    ann = MemberFactory(client=client_a, email=ANN)
    review = reviewed(client_a, points=25)

    thank(review, ann, PointsTransaction(response={"updatedAvailablePoints": "150", "updatedUserTier": "Gold"}))

    event = LoyaltyEvent.objects.get()
    assert (event.client, event.member, event.external_id) == (client_a, ann, "bv-review-7")
    assert event.event_type == EventType.REVIEW_REWARDED
    assert event.data == {"points": 25, "review_id": "7", "product_id": "P-1", "points_balance": 150, "tier": "Gold"}


@pytest.mark.parametrize(
    ("answer", "more"),
    [
        ({"updatedAvailablePoints": 0, "updatedUserTier": 3}, {"points_balance": 0, "tier": "3"}),
        ({"updatedAvailablePoints": "1.5", "updatedUserTier": ""}, {}),
        ({"updatedAvailablePoints": None}, {}),
        ({}, {}),
    ],
)
@pytest.mark.django_db
def test_the_balance_only_when_a_whole_number_and_the_tier_only_when_set(client_a, answer, more):
    ann = MemberFactory(client=client_a, email=ANN)
    review = reviewed(client_a, points=25)

    thank(review, ann, PointsTransaction(response=answer))

    assert LoyaltyEvent.objects.get().data == {"points": 25, "review_id": "7", "product_id": "P-1", **more}


# --- loyalty_profile ---


@pytest.mark.django_db
def test_a_reviewer_annex_cloud_does_not_know_is_not_a_member(annex, httpserver):
    answer_profile(httpserver, {"errorCode": "AC1005", "errorMessage": "No data found"}, status=404)
    review = reviewed(annex.client)

    assert loyalty_profile(review, ANN) is None

    review = settled(review)
    assert review.outcome == Result.NOT_MEMBER and review.encrypted_email == ""
    assert review.detail == "The reviewer is not a loyalty member at Annex Cloud (AC1005, no data)."
    call = VendorCall.objects.get(url__contains="/users/")  # an answer the look-up expects, not a failed call
    assert call.error_type == EXPECTED_NOT_FOUND and ANN not in f"{call.url} {call.response_body}"


@pytest.mark.parametrize("answer", [{}, [], ["AC-9"], "yes"])
@pytest.mark.django_db
def test_an_empty_or_odd_profile_is_not_a_member(annex, httpserver, answer):
    answer_profile(httpserver, answer)
    review = reviewed(annex.client)

    assert loyalty_profile(review, ANN) is None

    review = settled(review)
    assert review.outcome == Result.NOT_MEMBER
    assert review.detail == "Annex Cloud answered with no data for the reviewer: not a loyalty member."


@pytest.mark.django_db
def test_a_refused_look_up_fails_the_review_with_annex_clouds_words(annex, httpserver):
    answer_profile(httpserver, {"errorCode": "AC1004", "errorMessage": "Missing parameters: id"}, status=400)
    review = reviewed(annex.client)

    assert loyalty_profile(review, ANN) is None

    review = settled(review)
    assert review.outcome == Result.FAILED and review.encrypted_email  # kept for a Retry
    assert review.detail.startswith("Annex Cloud refused the member look-up: ")
    assert "Missing parameters: id" in review.detail


@pytest.mark.django_db
def test_an_unreachable_annex_cloud_stops_the_run_and_the_review_waits(annex, httpserver):
    answer_profile(httpserver, {"error": "later"}, status=503)
    review = reviewed(annex.client)

    with pytest.raises(StopRun) as stopped:
        loyalty_profile(review, ANN)

    cause = stopped.value.__cause__
    assert isinstance(cause, VendorError) and " — " in cause.for_admin  # what to do, for the admin
    assert str(stopped.value) == f"Stopped at review 7: {cause.for_admin} The next run resumes from there."
    review = settled(review)
    assert (review.outcome, review.detail) == (Result.PENDING, f"Waiting: {cause.for_admin}")
    assert review.encrypted_email


@pytest.mark.django_db
def test_without_annex_cloud_credentials_the_run_stops_and_the_review_waits(annex, httpserver):
    annex.client.site_id = ""
    annex.client.save()
    review = reviewed(annex.client)

    with pytest.raises(StopRun, match="has no Annex Cloud site credentials"):
        loyalty_profile(review, ANN)

    review = settled(review)
    assert review.outcome == Result.PENDING and review.detail.startswith("Waiting: ")
    assert "has no Annex Cloud site credentials" in review.detail and not httpserver.log


@pytest.mark.django_db
def test_the_looked_up_address_never_reaches_the_call_log_nor_the_log_lines(annex, httpserver):
    """Escaped in the path (the + goes as %2B) and plain in the answer: neither is kept, nor logged by urllib3."""
    odd = "o.neil+r@example.com"
    answer_profile(httpserver, {"id": odd, "email": odd, "firstName": "Ann"})
    review = reviewed(annex.client, odd)

    with logged_lines() as stream:
        assert loyalty_profile(review, odd) == {"id": odd, "email": odd, "firstName": "Ann"}

    call = VendorCall.objects.get(url__contains="/users/")
    assert call.url.endswith(f"/users/{REDACTED}") and call.status_code == 200 and call.error_type == ""
    assert "/users/" in stream.getvalue() and f"/users/{REDACTED}" in stream.getvalue()  # urllib3 did log it
    for text in [call.url, call.response_body, stream.getvalue()]:
        assert odd not in text and "o.neil%2Br@example.com" not in text


# --- settle ---


@pytest.mark.django_db
def test_each_settle_counts_one_attempt_and_a_rating_under_the_minimum_is_not_counted(bv):
    bv.settings = {"minimum_rating": 4}
    bv.save()
    review = reviewed(bv.client, rating=3, attempts=2)

    assert settle(review, Context.of(bv)) == Result.NOT_COUNTED

    review = settled(review)
    assert review.attempts == 3 and review.outcome == Result.NOT_COUNTED
    assert review.detail == "Rated 3: the client rewards reviews rated 4 or more."


@pytest.mark.django_db
def test_unreadable_connection_secrets_stop_the_run_rather_than_call_the_address_undecryptable(client_a, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    sealed = ConnectionFactory(client=client_a, vendor="bazaarvoice", secrets=dict(bazaarvoice_simulator.DEMO_SECRETS))
    review = reviewed(client_a)
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the key that sealed the shared secret is gone
    sealed = Connection.objects.get(pk=sealed.pk)

    with pytest.raises(StopRun, match="cannot be decrypted"):
        settle(review, Context.of(sealed))

    review = settled(review)
    assert review.outcome == Result.PENDING and review.attempts == 1 and review.encrypted_email
    assert review.detail.startswith("Waiting: ") and "cannot be decrypted" in review.detail


@pytest.mark.django_db
def test_an_address_that_cannot_be_decrypted_is_undecryptable_and_kept_for_a_retry(bv):
    bv.settings = {"email_key_derivation": "sha1"}  # Bazaarvoice encrypted it with the plain16 key
    bv.save()
    review = reviewed(bv.client)

    assert settle(review, Context.of(bv)) == Result.UNDECRYPTABLE

    review = settled(review)
    assert review.attempts == 1 and review.encrypted_email and review.masked_email == ""
    assert review.detail.startswith("The reviewer's e-mail address could not be decrypted (")
    assert review.detail.endswith(
        "Check the shared secret and the e-mail key derivation of the Bazaarvoice connection, then Retry the review."
    )


@pytest.mark.django_db
def test_an_invalid_decrypted_address_is_not_eligible_and_never_looked_up(bv, annex, httpserver):
    review = reviewed(bv.client, "ann@example")

    assert settle(review, Context.of(bv)) == Result.NOT_ELIGIBLE

    review = settled(review)
    assert review.masked_email == masked("ann@example")
    assert review.detail == (
        f"The reviewer's e-mail address ({masked('ann@example')}) is not a valid e-mail address ({EMAIL_FORMAT_HINT}): "
        "not looked up at Annex Cloud, no points."
    )
    assert not httpserver.log and not Member.objects.exists()


@pytest.mark.django_db
def test_a_reviewer_who_is_no_member_is_shown_masked_and_the_outcome_returned(bv, annex, httpserver):
    answer_profile(httpserver, {"errorCode": "AC1005", "errorMessage": "No data found"}, status=404)
    review = reviewed(bv.client)

    assert settle(review, Context.of(bv)) == Result.NOT_MEMBER

    review = settled(review)
    assert review.masked_email == masked(ANN) and review.masked_email != "" and review.attempts == 1


@pytest.mark.django_db
def test_an_opted_out_reviewer_is_not_eligible_and_gets_no_points(bv, annex, httpserver):
    answer_profile(httpserver, {"id": ANN, "email": ANN, "optInStatus": "NO"})
    review = reviewed(bv.client)

    assert settle(review, Context.of(bv)) == Result.NOT_ELIGIBLE

    review = settled(review)
    assert review.detail == "The reviewer opted out of the loyalty program (optInStatus NO): no points."
    assert not sent_points(httpserver) and not Member.objects.exists()


@pytest.mark.django_db
def test_an_eligible_reviewer_is_awarded_the_rules_points_and_thanked(bv, annex, httpserver):
    bv.settings = {"points_per_review": 25, "action_id": "200", "reason": "Thanks"}
    bv.save()
    answer_profile(httpserver, {"id": "AC-9", "email": ANN, "firstName": "Ann"})
    httpserver.expect_request(POINTS, method="POST").respond_with_json({"updatedAvailablePoints": "125"})
    review = reviewed(bv.client)

    assert settle(review, Context.of(bv)) == Result.AWARDED

    review = settled(review)
    assert review.points == 25 and review.member.annex_cloud_id == "AC-9" and review.member.first_name == "Ann"
    assert review.annex_cloud_answer == {"updatedAvailablePoints": "125"} and review.encrypted_email == ""
    [body] = sent_points(httpserver)
    assert (body["id"], body["credit"], body["actionId"], body["reason"], body["customId"]) == (
        "AC-9",
        "25",
        "200",
        "Thanks",
        "bv-review-7",
    )
    assert LoyaltyEvent.objects.get().data["points_balance"] == 125
    # The member's timeline says who made them and changed their profile: this review.
    changes = MemberChange.objects.filter(member=review.member).order_by("pk")
    assert set(changes.values_list("by", flat=True)) == {"Bazaarvoice's review 7"} and changes[0].fields == "email"
    assert set(changes.values_list("source", flat=True)) == {f"bazaarvoice.review:{review.pk}"}  # linked to it
    # The award is on the reviewer's timeline with the call that applied it.
    [award] = MemberAction.objects.filter(member=review.member)
    assert (award.vendor, award.action, award.result) == ("annex_cloud", "Points adjustment", "done")
    assert VendorCall.objects.get(pk__in=award.call_ids).method == "POST"


# --- award ---


@pytest.mark.django_db
def test_an_earlier_attempts_member_and_points_win_over_the_rules(bv, annex, httpserver):
    bv.settings = {"points_per_review": 25}
    bv.save()
    first = MemberFactory(client=bv.client, email="first@example.com", annex_cloud_id="AC-1")
    now = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)
    PointsTransaction.objects.create(
        client=bv.client, member=first, key=review.award_key, activity="credit", points=50, action_id="100"
    )  # sent, its answer lost: pending
    httpserver.expect_request(POINTS, method="POST").respond_with_json({"updatedAvailablePoints": "50"})

    assert award(review, Context.of(bv), now) == Result.AWARDED

    review = settled(review)
    assert review.member == first and review.points == 50
    [body] = sent_points(httpserver)
    assert (body["id"], body["credit"], body["customId"]) == ("AC-1", "50", "bv-review-7")
    assert LoyaltyEvent.objects.get().member == first


@pytest.mark.django_db
def test_after_a_refused_attempt_the_award_goes_under_a_fresh_key_with_the_same_custom_id(bv, annex, httpserver):
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)
    PointsTransaction.objects.create(
        client=bv.client, member=ann, key=review.award_key, activity="credit", points=50, action_id="100",
        status=PointsTransaction.Status.FAILED,
    )  # fmt: skip
    httpserver.expect_request(POINTS, method="POST").respond_with_json({"updatedAvailablePoints": "50"})

    assert award(review, Context.of(bv), ann) == Result.AWARDED

    assert [body["customId"] for body in sent_points(httpserver)] == ["bv-review-7"]
    keys = PointsTransaction.objects.order_by("pk").values_list("key", "status")
    assert list(keys) == [("bv-review-7", "failed"), ("bv-review-7-retry-1", "applied")]


@pytest.mark.parametrize(("before", "sent"), [(0, "25"), (40, "40")])
@pytest.mark.django_db
def test_the_points_are_the_rules_unless_an_earlier_attempt_set_them(bv, annex, httpserver, before, sent):
    bv.settings = {"points_per_review": 25}
    bv.save()
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client, points=before)
    httpserver.expect_request(POINTS, method="POST").respond_with_json({"updatedAvailablePoints": "100"})

    assert award(review, Context.of(bv), ann) == Result.AWARDED

    assert settled(review).points == int(sent) and settled(review).member == ann
    assert [body["credit"] for body in sent_points(httpserver)] == [sent]


@pytest.mark.django_db
def test_an_award_key_used_for_another_adjustment_fails_the_review_for_the_developers(bv, annex, httpserver):
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)
    PointsTransaction.objects.create(
        client=bv.client, member=ann, key=review.award_key, activity="debit", points=50, action_id="100",
        status=PointsTransaction.Status.APPLIED,
    )  # fmt: skip

    assert award(review, Context.of(bv), ann) == Result.FAILED

    review = settled(review)
    assert review.outcome == Result.FAILED and review.encrypted_email
    assert review.detail.endswith(" Tell the portal's developers: this review cannot be awarded.")
    assert not sent_points(httpserver)


@pytest.mark.django_db
def test_no_award_goes_to_a_never_verified_annex_cloud_account(bv, annex, httpserver):
    annex.status = Connection.Status.DRAFT
    annex.save()
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)

    with pytest.raises(StopRun, match="was never verified"):
        award(review, Context.of(bv), ann)

    review = settled(review)
    assert review.outcome == Result.PENDING and review.detail.startswith("Waiting: The Annex Cloud connection")
    assert not httpserver.log and not PointsTransaction.objects.exists()


@pytest.mark.django_db
def test_an_annex_cloud_connection_disabled_since_its_verification_stops_the_run_and_the_review_waits(
    bv, annex, httpserver
):
    annex.status = Connection.Status.DISABLED
    annex.save()
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)

    with pytest.raises(StopRun) as stopped:
        award(review, Context.of(bv), ann)

    waiting = f"The Annex Cloud connection of {bv.client} is disabled: verify and enter the site credentials again"
    assert str(stopped.value).startswith(f"Stopped at review 7: {waiting}")
    review = settled(review)
    assert review.outcome == Result.PENDING and review.detail.startswith(f"Waiting: {waiting}")
    assert review.encrypted_email and not httpserver.log and not PointsTransaction.objects.exists()


@pytest.mark.django_db
def test_an_award_annex_cloud_never_confirmed_stops_the_run_and_the_review_waits_with_the_transactions_words(
    bv, annex, httpserver
):
    ann = MemberFactory(client=bv.client, email=ANN, annex_cloud_id="AC-2")
    review = reviewed(bv.client)
    httpserver.expect_request(POINTS, method="POST").respond_with_json({"error": "down"}, status=503)

    with pytest.raises(StopRun) as stopped:
        award(review, Context.of(bv), ann)

    txn = PointsTransaction.objects.get()
    assert txn.status == PointsTransaction.Status.PENDING and txn.detail
    assert str(stopped.value) == f"Stopped at review 7: {txn.detail} The next run resumes from there."
    review = settled(review)
    assert (review.outcome, review.detail) == (Result.PENDING, f"Waiting: {txn.detail}")
    assert review.encrypted_email and review.member == ann and not LoyaltyEvent.objects.exists()


# --- attempt_key, mark_credit_reversed, reversal_counted ---


@pytest.mark.django_db
def test_an_attempts_key_counts_the_refused_attempts_of_this_client_only(client_a, client_b):
    ann, bo = MemberFactory(client=client_a), MemberFactory(client=client_b)
    assert attempt_key(client_a.pk, "k") == "k"

    def txn(client, member, key, status):
        PointsTransaction.objects.create(
            client=client, member=member, key=key, activity="credit", points=5, action_id="1", status=status
        )

    Status = PointsTransaction.Status
    txn(client_a, ann, "k", Status.FAILED)
    txn(client_b, bo, "k", Status.FAILED)
    txn(client_b, bo, "k-retry-1", Status.FAILED)
    txn(client_a, ann, "kk", Status.FAILED)
    assert attempt_key(client_a.pk, "k") == "k-retry-1"
    txn(client_a, ann, "k-retry-1", Status.FAILED)
    txn(client_a, ann, "k-retry-2", Status.PENDING)
    assert attempt_key(client_a.pk, "k") == "k-retry-2"


@pytest.mark.django_db
def test_only_the_applied_credits_of_this_reviews_award_are_marked_reversed(client_a, client_b):
    ann, bo = MemberFactory(client=client_a), MemberFactory(client=client_b)
    review = reviewed(client_a, reversed_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    Status = PointsTransaction.Status
    rows = {
        "bv-review-7": (client_a, ann, "credit", Status.APPLIED),
        "bv-review-7-retry-1": (client_a, ann, "credit", Status.APPLIED),
        "bv-review-7-retry-2": (client_a, ann, "credit", Status.FAILED),
        "bv-review-7-retry-3": (client_a, ann, "credit", Status.PENDING),
        "bv-review-7-retry-4": (client_a, ann, "debit", Status.APPLIED),
        "bv-review-7-reversal": (client_a, ann, "debit", Status.APPLIED),
        "bv-review-70": (client_a, ann, "credit", Status.APPLIED),
        "bv-review-7-other": (client_a, ann, "credit", Status.APPLIED),
    }
    for key, (client, member, activity, status) in rows.items():
        PointsTransaction.objects.create(
            client=client, member=member, key=key, activity=activity, points=5, action_id="1", status=status
        )
    PointsTransaction.objects.create(
        client=client_b, member=bo, key="bv-review-7", activity="credit", points=5, action_id="1", status="applied"
    )

    mark_credit_reversed(review)

    marked = PointsTransaction.objects.exclude(reversed_at=None)
    assert sorted(marked.values_list("client", "key")) == [
        (client_a.pk, "bv-review-7"),
        (client_a.pk, "bv-review-7-retry-1"),
    ]
    assert set(marked.values_list("reversed_at", flat=True)) == {review.reversed_at}


@pytest.mark.django_db
def test_a_reversal_is_counted_in_the_hour_of_the_award(client_a, settings):
    settings.ROLLUP_FLUSH_SECONDS = 0
    review = reviewed(client_a, points=40)
    awarded_at = datetime(2026, 12, 1, 10, 37, tzinfo=UTC)

    reversal_counted(review, awarded_at)

    hour = awarded_at.replace(minute=0)
    assert counted_rows() == [
        (hour, "bazaarvoice_reviews", client_a.pk, "reversed", 1, 0),
        (hour, "points", client_a.pk, "credit:reversed", 1, 40),
    ]


# --- finish, stop ---


@pytest.mark.parametrize("outcome", [Result.PENDING, Result.FAILED, Result.UNDECRYPTABLE])
@pytest.mark.django_db
def test_a_retryable_outcome_keeps_the_address_and_is_not_counted_yet(client_a, settings, outcome):
    settings.ROLLUP_FLUSH_SECONDS = 0
    review = reviewed(client_a, annex_cloud_answer={"earlier": "answer"})

    assert finish(review, outcome, "Why.") == outcome

    review = settled(review)
    assert (review.outcome, review.detail, review.annex_cloud_answer) == (outcome, "Why.", {"earlier": "answer"})
    assert review.encrypted_email and counted_rows() == []


@pytest.mark.parametrize("outcome", [Result.AWARDED, Result.NOT_MEMBER, Result.NOT_ELIGIBLE, Result.NOT_COUNTED])
@pytest.mark.django_db
def test_an_outcome_for_good_drops_the_address_and_is_counted(client_a, settings, outcome):
    settings.ROLLUP_FLUSH_SECONDS = 0
    review = reviewed(client_a, annex_cloud_answer={"earlier": "answer"})

    assert finish(review, outcome, "Why.", answer={}) == outcome

    review = settled(review)
    assert (review.outcome, review.detail, review.annex_cloud_answer, review.encrypted_email) == (
        outcome,
        "Why.",
        {},
        "",
    )
    [(_, series, client_pk, counted, count, _)] = counted_rows()
    assert (series, client_pk, counted, count) == ("bazaarvoice_reviews", client_a.pk, outcome, 1)


@pytest.mark.django_db
def test_stop_keeps_the_review_waiting_and_says_where_the_run_stopped(client_a):
    review = reviewed(client_a)

    stopped = stop(review, "Annex Cloud is down.")

    assert str(stopped) == "Stopped at review 7: Annex Cloud is down. The next run resumes from there."
    review = settled(review)
    assert (review.outcome, review.detail) == (Result.PENDING, "Waiting: Annex Cloud is down.")
    assert review.encrypted_email
