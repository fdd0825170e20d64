"""A lost answer never turns an applied Annex Cloud credit into "failed" (issue 20, finding 4), over real HTTP to the
Annex Cloud simulator: it applies the points, then drops the connection unanswered; the HTTP layer sends the same
`customId` again and a strict Annex Cloud answers AC1006 "already exists" (409). The points are applied once at the
vendor, the portal says applied, and the API answers 2xx with the body of a success. A Bazaarvoice review award
settles as awarded the same way. Also: a reviewer address that is no valid e-mail is never looked up or awarded."""

from __future__ import annotations

from collections import Counter

import pytest
from django.urls import reverse

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.annexcloud.flows import adjust_points
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.emails import email_key, encrypt_email
from integrations.bazaarvoice.models import Review
from integrations.bazaarvoice.rewards import InvalidReviewerAddress, member_for
from integrations.models import Connection, VendorCall
from integrations.sandbox.base import OUTAGES, EveryNth, Outage
from members.models import EventType, LoyaltyEvent, Member, PointsTransaction
from tests.factories import MemberFactory, local_annex_cloud

pytestmark = pytest.mark.django_db(transaction=True)
Applied, Failed = PointsTransaction.Status.APPLIED, PointsTransaction.Status.FAILED


@pytest.fixture
def strict_annex_cloud(annex_cloud_sandbox, settings):
    """The simulator answering a repeated customId with AC1006 (409), as a strict Annex Cloud does."""
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    state, connection = annex_cloud_sandbox
    state.repeats = "already_exists"
    return state, connection


@pytest.fixture
def ann(client_a, strict_annex_cloud) -> Member:
    """Ann, a loyalty member at the simulator with 100 points."""
    state, _ = strict_annex_cloud
    state.members["ann@x.com"] = {"id": "ann@x.com", "email": "ann@x.com", "availablePoints": 100}
    return MemberFactory(client=client_a, email="ann@x.com")


def lose_every(n: int) -> None:
    annex_cloud_simulator.state.lose_every = EveryNth(every=n)


def points_calls(connection: Connection) -> list[tuple[int | None, str]]:
    """Each attempt of POST /points as the portal recorded it: (HTTP status or None, error kind)."""
    rows = VendorCall.objects.filter(connection=connection, url__endswith="/points").order_by("pk")
    return list(rows.values_list("status_code", "error_type"))


def test_the_simulator_applies_then_drops_the_connection_and_answers_a_repeat_with_ac1006(strict_annex_cloud, ann):
    state, connection = strict_annex_cloud
    lose_every(1)
    adjust_points(ann, activity="credit", points=25, key="drill-1")
    # The first attempt lost its answer for real (no status: the connection was dropped); the repeat got AC1006.
    assert points_calls(connection) == [(None, "unavailable"), (409, "already_exists")]
    assert state.lost_points_answers == 1 and state.points_received == 2
    assert state.members["ann@x.com"]["availablePoints"] == 125  # applied once


def test_a_credit_whose_answer_was_lost_is_applied_and_the_api_answers_as_a_success(
    strict_annex_cloud, ann, api_client_for, client_a
):
    state, connection = strict_annex_cloud
    lose_every(1)
    api = api_client_for(client_a)
    body = {"activity": "credit", "points": 25, "reason": "birthday", "idempotency_key": "birthday-2026"}
    url = reverse("member-annexcloud-points", args=[ann.pk])

    first = api.post(url, body, format="json")
    again = api.post(url, body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)  # as for any credit applied now, then repeated
    assert first.json() == again.json()
    assert first.json()["status"] == "applied"
    assert (first.json()["points_after"], first.json()["tier"]) == (125, "Bronze")  # read back from the profile
    assert "earlier attempt whose answer was lost" in first.json()["detail"]
    assert list(state.points) == ["birthday-2026"] and state.members["ann@x.com"]["availablePoints"] == 125
    ann.refresh_from_db()
    assert ann.points == 125
    txn = PointsTransaction.objects.get()
    assert txn.status == Applied and txn.response["alreadyApplied"]["errorCode"] == "AC1006"
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE and connection.consecutive_failures == 0


def test_a_pending_key_repeated_after_its_answer_was_lost_is_applied_not_refused(strict_annex_cloud, ann):
    """The row says the key was attempted: its first call applied the credit at its last attempt, whose answer was
    lost, and ran out of attempts; the caller repeats the key and Annex Cloud answers AC1006."""
    state, connection = strict_annex_cloud
    OUTAGES["annex_cloud"] = Outage(status=503, times=3)  # attempts 1-3 turned away; the 4th applied, then lost
    lose_every(1)
    try:
        first = adjust_points(ann, activity="credit", points=40, key="k-1")
    finally:
        OUTAGES.clear()
    assert first.transaction.status == PointsTransaction.Status.PENDING
    assert state.members["ann@x.com"]["availablePoints"] == 140

    second = adjust_points(ann, activity="credit", points=40, key="k-1")

    assert second.transaction.status == Applied and not second.repeated
    assert "earlier attempt whose answer was lost" in second.transaction.detail
    assert points_calls(connection)[-1] == (409, "already_exists")
    assert state.members["ann@x.com"]["availablePoints"] == 140 and list(state.points) == ["k-1"]


def test_ac1006_to_a_custom_id_never_sent_as_far_as_the_portal_knows_is_applied_and_says_so(strict_annex_cloud, ann):
    """A worker stopped after its POST left rolls back the row that recorded it, while Annex Cloud keeps the points:
    the customId is the portal's, so Annex Cloud's "already exists" means applied, never refused."""
    state, _ = strict_annex_cloud
    state.points["k-ghost"] = {"id": "ann@x.com", "activity": "CREDIT", "credit": "30"}
    state.members["ann@x.com"]["availablePoints"] = 130

    result = adjust_points(ann, activity="credit", points=30, key="k-ghost")

    assert result.transaction.status == Applied
    assert "no record of sending it" in result.transaction.detail
    assert result.outcome.ok
    assert state.members["ann@x.com"]["availablePoints"] == 130  # not applied twice


def test_ac1006_under_http_200_is_applied_even_when_the_balance_cannot_be_read(httpserver, client_a, settings):
    """Annex Cloud's code decides, whatever the status; the profile read afterwards is a nicety, never a condition."""
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    client_a.site_id = "100001"
    client_a.save()
    local_annex_cloud(client_a, httpserver.url_for("/api/3.0"))
    member = MemberFactory(client=client_a, email="bo@x.com", points=70)
    httpserver.expect_request("/api/3.0/points", method="POST").respond_with_json(
        {"errorCode": "AC1006", "errorMessage": "Already exists"}, status=200
    )
    httpserver.expect_request("/api/3.0/users/bo@x.com", method="GET").respond_with_json({}, status=500)

    result = adjust_points(member, activity="debit", points=30, key="d-1")

    assert result.transaction.status == Applied
    assert result.transaction.detail.startswith("debited 30 points at Annex Cloud: ")
    assert result.transaction.response == {"alreadyApplied": {"errorCode": "AC1006", "errorMessage": "Already exists"}}
    member.refresh_from_db()
    assert member.points == 70  # unknown, so left as it was


def test_other_refusals_are_still_failures(strict_annex_cloud, ann):
    refused = adjust_points(ann, activity="debit", points=5000, key="too-much")
    assert refused.transaction.status == Failed and "Insufficient points" in refused.transaction.detail


# --- Bazaarvoice review awards -------------------------------------------------------------------------------------


@pytest.fixture
def bv(bazaarvoice_connection, strict_annex_cloud):
    return bazaarvoice_connection


def credits() -> Counter:
    return Counter(k for k, a in annex_cloud_simulator.state.points.items() if a["activity"] == "CREDIT")


def test_a_review_award_whose_answer_was_lost_settles_as_awarded_once(bv):
    kinds = bazaarvoice_simulator.generate(10, days=1)
    lose_every(3)  # the 3rd and 6th awards lose their answers; their repeats get AC1006

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    assert annex_cloud_simulator.state.lost_points_answers == 2
    awarded = Review.objects.filter(outcome=Review.Outcome.AWARDED)
    assert awarded.count() == kinds["member"] == len(credits())
    assert set(credits().values()) == {1}
    assert {r.award_key for r in awarded} == set(credits())
    balances = [annex_cloud_simulator.state.members[f"reviewer{n}@example.com"]["availablePoints"] for n in (4, 5)]
    assert balances == [50, 50]
    assert LoyaltyEvent.objects.filter(event_type=EventType.REVIEW_REWARDED).count() == kinds["member"]
    assert not PointsTransaction.objects.filter(status=Failed).exists()


def test_retrying_a_review_refused_by_ac1006_awards_it_without_a_second_credit(bv, client_a):
    """A review an earlier version left failed on AC1006 (its credit applied at Annex Cloud): Retry sends the same
    customId under the next portal key, and the AC1006 answer settles it as awarded."""
    bazaarvoice_simulator.generate(5, days=1)
    item = next(i for i in bazaarvoice_simulator.state.reviews if i["Id"] == "46000004")
    review, _ = bazaarvoice.record_review(client_a, item)
    address = "reviewer4@example.com"
    annex_cloud_simulator.state.points[review.award_key] = {"id": address, "activity": "CREDIT", "credit": "50"}
    annex_cloud_simulator.state.members[address]["availablePoints"] = 50
    member = Member.objects.create(client=client_a, email=address)
    PointsTransaction.objects.create(
        client=client_a, member=member, key=review.award_key, activity="credit", points=50, action_id="100",
        status=Failed, response={"errorCode": "AC1006", "errorMessage": "Already exists"},
    )  # fmt: skip
    Review.objects.filter(pk=review.pk).update(outcome=Review.Outcome.FAILED)
    review.refresh_from_db()

    outcome = bazaarvoice.retry_review(review)

    assert outcome.ok, outcome.message
    review.refresh_from_db()
    assert review.outcome == Review.Outcome.AWARDED and review.member == member
    assert "earlier attempt whose answer was lost" in review.detail
    assert annex_cloud_simulator.state.members[address]["availablePoints"] == 50 and credits() == {review.award_key: 1}


def add_review(number: int, address: str) -> None:
    """A review by `address`, moderated yesterday, its reviewer a loyalty member at Annex Cloud."""
    from datetime import UTC, datetime, timedelta

    key = email_key(bazaarvoice_simulator.SHARED_SECRET, bazaarvoice_simulator.state.derivation)
    moderated = datetime.now(UTC) - timedelta(days=1)
    item = bazaarvoice_simulator.review_item(number, encrypt_email(address, key), moderated)
    bazaarvoice_simulator.state.reviews.append(item)
    annex_cloud_simulator.state.members[address] = {"id": address, "email": address}


def test_a_reviewer_address_that_is_no_e_mail_is_never_looked_up_nor_awarded(bv, client_a):
    """It decrypts (no spaces, an @) yet is no address Vibes or SessionM would take."""
    add_review(4, "ann@b@example.com")

    bazaarvoice.pull_reviews(bv)

    review = Review.objects.get()
    assert review.outcome == Review.Outcome.NOT_ELIGIBLE
    assert "not a valid e-mail address" in review.detail and "a•••@b@example.com" in review.detail
    assert "ann@b" not in review.detail and review.encrypted_email == ""
    assert not VendorCall.objects.filter(url__contains="/users/").exists()
    assert not Member.objects.exists() and not credits()


@pytest.mark.parametrize("address", ["sp ace@example.com", "a@b@example.com", "no-at-sign"])
def test_member_for_refuses_an_address_that_is_no_e_mail(client_a, address):
    with pytest.raises(InvalidReviewerAddress, match="not a valid e-mail address"):
        member_for(client_a, address, {"id": address, "email": address})
    assert not Member.objects.exists()
