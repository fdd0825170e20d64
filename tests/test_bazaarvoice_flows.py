"""The Bazaarvoice pull over real HTTP — the Bazaarvoice and Annex Cloud simulators served by the live server: each
approved review moderated before today is recorded once and its reviewer rewarded once, whatever repeats (re-runs,
overlapping pages, a run stopped or killed half-way, a lost answer); 429, AC1002, undecryptable e-mails, non-members
and ineligible members are each handled as the issue says; an award is reversed exactly once."""

from __future__ import annotations

import io
import json
import logging
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug import Request, Response

from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as simulator
from integrations.bazaarvoice.emails import email_key, encrypt_email
from integrations.bazaarvoice.models import PullState, Review
from integrations.bazaarvoice.sandbox import iso
from integrations.models import Connection, VendorCall
from integrations.redaction import REDACTED, redact_text
from integrations.sandbox.base import OUTAGES, Outage
from members.models import EventType, LoyaltyEvent, Member, PointsTransaction

pytestmark = pytest.mark.django_db(transaction=True)
Result = Review.Outcome


@pytest.fixture
def bv(bazaarvoice_connection, settings):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    return bazaarvoice_connection


def outcomes() -> Counter:
    return Counter(Review.objects.values_list("outcome", flat=True))


def credits() -> list[str]:
    """The customIds Annex Cloud applied a credit for."""
    return [key for key, answer in annex_cloud_simulator.state.points.items() if answer["activity"] == "CREDIT"]


def today_start() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_pull_rewards_each_eligible_reviewer_once_and_records_why_not_for_the_others(bv, client_a):
    kinds = simulator.generate(40, days=3, today=3, pending=2, rejected=2)

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    assert outcomes() == {
        Result.AWARDED: kinds["member"],
        Result.NOT_MEMBER: kinds["not_member"],
        Result.NOT_ELIGIBLE: kinds["opted_out"] + kinds["inactive"],
        Result.UNDECRYPTABLE: kinds["undecryptable"],
    }
    # Moderated today, pending and rejected ones are not taken; the cursor stops at the start of today.
    assert Review.objects.count() == 40
    assert PullState.objects.get(connection=bv).cursor == today_start()
    awarded = Review.objects.filter(outcome=Result.AWARDED)
    assert sorted(credits()) == sorted(r.award_key for r in awarded)
    review = awarded.select_related("member").first()
    assert review.member.email == f"reviewer{int(review.review_id) - 46_000_000}@example.com"
    assert review.member.points == 50 and review.points == 50
    assert review.annex_cloud_answer["updatedAvailablePoints"] == "50"
    # One thank-you event per award, for the client's template.
    events = LoyaltyEvent.objects.filter(event_type=EventType.REVIEW_REWARDED)
    assert sorted(events.values_list("external_id", flat=True)) == sorted(r.award_key for r in awarded)
    assert events.get(external_id=review.award_key).data["points"] == 50
    # The non-members are stored masked: no plain address anywhere in their rows.
    stranger = Review.objects.filter(outcome=Result.NOT_MEMBER).first()
    assert stranger.member is None and stranger.masked_email.startswith("r•••@")
    assert "not a loyalty member" in stranger.detail
    ineligible = Review.objects.filter(outcome=Result.NOT_ELIGIBLE).values_list("detail", flat=True)
    assert any("opted out" in d for d in ineligible) and any("inactive" in d for d in ineligible)
    # The encrypted address is kept only where a retry may need it.
    assert not Review.objects.exclude(outcome=Result.UNDECRYPTABLE).exclude(encrypted_email="").exists()
    assert not Review.objects.filter(outcome=Result.UNDECRYPTABLE, encrypted_email="").exists()
    # Nor in the call log: the look-ups of non-members (GET /users/{e-mail}) are recorded with the address redacted.
    address = f"reviewer{int(stranger.review_id) - 46_000_000}@example.com"
    lookups = VendorCall.objects.filter(url__contains="/users/").values_list("url", "response_body")
    assert lookups and not any(address in f"{url} {body}" for url, body in lookups)


def test_reruns_and_overlapping_pages_record_and_reward_each_review_once(bv):
    simulator.generate(250, days=2)
    first = bazaarvoice.pull_reviews(bv)
    assert first.counts["pages"] == 3
    awarded = Review.objects.filter(outcome=Result.AWARDED).count()

    # The same run again, then from the very beginning (as after re-moderation or a cursor set back).
    again = bazaarvoice.pull_reviews(bv)
    PullState.objects.filter(connection=bv).update(cursor=None)
    overlap = bazaarvoice.pull_reviews(bv)

    # The cursor is at today's start: only the look-back behind it is read again, every review a duplicate.
    assert again.counts["reviews"] == again.counts["duplicates"] and not again.counts.get("new")
    # Each page starts again from the previous page's last second: those reviews are read twice, recorded once.
    assert overlap.counts["duplicates"] >= 250 and not overlap.counts.get("new")
    assert Review.objects.count() == 250
    assert Review.objects.filter(outcome=Result.AWARDED).count() == awarded
    assert len(credits()) == awarded == PointsTransaction.objects.count()
    assert LoyaltyEvent.objects.count() == awarded


def test_a_run_out_of_time_stops_after_a_page_and_the_next_continues_from_the_cursor(bv):
    bv.settings = {**bv.settings, "look_back_hours": 0}  # the cursor alone (the look-back is tested below)
    bv.save()
    simulator.generate(250, days=2)

    short = bazaarvoice.pull_reviews(bv, budget=timedelta(0))
    cursor = PullState.objects.get(connection=bv).cursor
    rest = bazaarvoice.pull_reviews(bv)

    assert short.outcome.ok and "the next run continues" in short.outcome.message
    assert short.counts["pages"] == 1 and Review.objects.filter(moderated_at__gt=cursor).count() == 150
    assert rest.counts["pages"] == 2 and rest.counts["duplicates"] >= 1  # the cursor's own second is read again
    assert Review.objects.count() == 250
    assert len(credits()) == len(set(credits())) == Review.objects.filter(outcome=Result.AWARDED).count()


def test_pages_are_read_by_keyset_with_the_documented_filters(bv):
    simulator.generate(150, days=2)

    bazaarvoice.pull_reviews(bv)

    start = int((today_start() - timedelta(days=30)).timestamp())
    end = int(today_start().timestamp())
    first, second = simulator.state.queries
    assert first == [
        ("apiversion", "5.4"),
        ("passkey", simulator.PASSKEY),
        ("Filter", "ModerationStatus:eq:APPROVED"),
        ("Filter", f"LastModeratedTime:gte:{start}"),
        ("Filter", f"LastModeratedTime:lt:{end}"),
        ("Sort", "LastModeratedTime:asc"),
        ("Limit", "100"),
        ("Offset", "0"),
    ]
    # The next page starts again from the last item's moderation second, at Offset 0.
    last = Review.objects.order_by("moderated_at").values_list("moderated_at", flat=True)[99]
    assert second[3:5] == [("Filter", f"LastModeratedTime:gte:{int(last.timestamp())}"), first[4]]
    assert dict(second)["Offset"] == "0"


def test_reviews_moderated_today_are_taken_by_the_first_run_tomorrow(bv):
    simulator.generate(5, days=1, today=4)
    bazaarvoice.pull_reviews(bv)
    assert Review.objects.count() == 5

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    bazaarvoice.pull_reviews(bv, now=tomorrow)

    assert Review.objects.count() == 9
    assert PullState.objects.get(connection=bv).cursor == today_start() + timedelta(days=1)


def test_the_cursor_never_passes_the_start_of_the_clients_today(client_a):
    client_a.time_zone = "America/New_York"
    moment = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # still the 22nd in New York
    assert bazaarvoice.start_of_today(client_a, moment) == datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def test_a_429_stops_the_run_until_the_quota_resets_then_it_resumes(bv):
    simulator.generate(30, days=1)
    simulator.state.rate_limit, simulator.state.quota_reset = 1, "00:10:00"

    stopped = bazaarvoice.pull_reviews(bv)

    state = PullState.objects.get(connection=bv)
    assert not stopped.outcome.ok and "quota" in stopped.outcome.message
    assert timedelta(minutes=9) < state.quota_reset_at - datetime.now(UTC) <= timedelta(minutes=10, seconds=1)
    calls = simulator.state.calls
    waiting = bazaarvoice.pull_reviews(bv)
    assert waiting.counts == {"skipped": 1} and simulator.state.calls == calls  # no call before the reset
    resumed = bazaarvoice.pull_reviews(bv, now=state.quota_reset_at + timedelta(seconds=1))
    assert resumed.outcome.ok and Review.objects.count() == 30


def test_ac1002_marks_annex_cloud_failing_stops_the_run_and_the_next_run_resumes(bv, annex_cloud_sandbox):
    _, annex = annex_cloud_sandbox
    simulator.generate(20, days=2, today=20)  # today's are taken tomorrow
    bazaarvoice.pull_reviews(bv)
    annex.secrets = {"api_secret": "a-secret-annex-cloud-does-not-know"}
    annex.save()
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    stopped = bazaarvoice.pull_reviews(bv, now=tomorrow)

    annex.refresh_from_db()
    assert annex.status == Connection.Status.FAILING
    assert not stopped.outcome.ok and "Request Not Authorized" in stopped.outcome.message
    assert outcomes()[Result.PENDING] == 1  # the review it stopped at waits; the later ones are not read yet
    assert Review.objects.count() == 21

    annex.secrets = {"api_secret": annex_cloud_simulator.SECRET}
    annex.save()
    resumed = bazaarvoice.pull_reviews(bv, now=tomorrow)

    assert resumed.outcome.ok, resumed.outcome.message
    assert Review.objects.count() == 40 and outcomes()[Result.PENDING] == 0
    assert len(credits()) == Review.objects.filter(outcome=Result.AWARDED).count() == 24  # 6 in 10 are members


def test_a_run_killed_after_the_award_completes_it_without_a_second_award(bv, client_a):
    simulator.generate(10, days=1)
    item = next(i for i in simulator.state.reviews if i["Id"] == "46000005")
    # What a run killed between Annex Cloud's answer and recording the review leaves: the review pending, the award
    # applied under its key.
    review, _ = bazaarvoice.record_review(client_a, item)
    member = Member.objects.create(client=client_a, email="reviewer5@example.com")
    annexcloud.adjust_points(member, activity="credit", points=50, key=review.award_key, action_id="100")
    PullState.objects.create(connection=bv, lease_until=datetime.now(UTC) + bazaarvoice.LEASE / 2)  # half a lease left

    held = bazaarvoice.pull_reviews(bv)
    resumed = bazaarvoice.pull_reviews(bv, now=datetime.now(UTC) + bazaarvoice.LEASE)

    assert held.counts == {"skipped": 1}  # the killed run's hold runs out; then the pull goes on
    assert resumed.outcome.ok
    review.refresh_from_db()
    assert review.outcome == Result.AWARDED and review.member == member
    assert credits().count(review.award_key) == 1
    assert annex_cloud_simulator.state.members["reviewer5@example.com"]["availablePoints"] == 50
    assert LoyaltyEvent.objects.filter(external_id=review.award_key).count() == 1


def test_a_lost_points_answer_is_sent_again_once_and_applied_once(bv):
    simulator.generate(5, days=1)
    annex_cloud_simulator.state.lose_points_answers = 1

    bazaarvoice.pull_reviews(bv)

    review = Review.objects.get(review_id="46000004")
    assert review.outcome == Result.AWARDED
    assert annex_cloud_simulator.state.members["reviewer4@example.com"]["availablePoints"] == 50
    statuses = VendorCall.objects.filter(url__endswith="/points").order_by("pk").values_list("status_code", flat=True)
    assert list(statuses) == [504, 200, *([200] * (len(statuses) - 2))]
    assert len(credits()) == len(set(credits())) == Review.objects.filter(outcome=Result.AWARDED).count()


def test_undecryptable_emails_are_recorded_once_and_not_retried_by_the_pull(bv):
    simulator.state.derivation = "sha1"  # Bazaarvoice encrypts with SHA-1 keys; the connection says plain16
    simulator.generate(10, days=1)

    bazaarvoice.pull_reviews(bv)
    PullState.objects.filter(connection=bv).update(cursor=None)
    bazaarvoice.pull_reviews(bv)

    assert outcomes() == {Result.UNDECRYPTABLE: 10}
    assert set(Review.objects.values_list("attempts", flat=True)) == {1}
    assert "shared secret and the e-mail key derivation" in Review.objects.first().detail


def test_retry_after_fixing_the_key_derivation_awards_the_review(bv):
    simulator.state.derivation = "sha1"
    simulator.generate(10, days=1)
    bazaarvoice.pull_reviews(bv)
    bv.settings = {**bv.settings, "email_key_derivation": "sha1"}
    bv.save()

    review = Review.objects.get(review_id="46000005")
    outcome = bazaarvoice.retry_review(review)

    assert outcome.ok, outcome.message
    assert review.outcome == Result.AWARDED and credits() == [review.award_key]


def test_a_refused_award_is_failed_and_retry_sends_it_again_under_the_same_custom_id(
    bv, annex_cloud_sandbox, httpserver
):
    """Annex Cloud (a local fake) refuses the first award with AC1004; after the fix, Retry awards it once."""
    _, annex = annex_cloud_sandbox
    annex.environment, annex.base_url = Connection.Environment.PRODUCTION, httpserver.url_for("/api/3.0")
    annex.save()
    sent: list[dict] = []

    def fake_annex_cloud(request: Request) -> Response:
        if request.method == "GET":
            email = request.path.rsplit("/", 1)[-1]
            if email != "reviewer4@example.com":
                return Response(json.dumps({"errorCode": "AC1005", "errorMessage": "No data found"}), status=404)
            return Response(json.dumps({"id": email, "email": email, "optInStatus": "YES", "status": "ACTIVE"}))
        sent.append(json.loads(request.data))
        if len(sent) == 1:
            return Response(json.dumps({"errorCode": "AC1004", "errorMessage": "Missing parameters: actionId"}), 400)
        return Response(json.dumps({**sent[-1], "updatedAvailablePoints": "50", "updatedUserTier": "Bronze"}))

    httpserver.expect_request(re.compile(r"/api/3\.0/.*")).respond_with_handler(fake_annex_cloud)
    simulator.generate(5, days=1)

    bazaarvoice.pull_reviews(bv)
    review = Review.objects.get(review_id="46000004")
    assert review.outcome == Result.FAILED and "Missing parameters: actionId" in review.detail
    assert review.annex_cloud_answer == {"errorCode": "AC1004", "errorMessage": "Missing parameters: actionId"}

    first, second = bazaarvoice.retry_review(review), bazaarvoice.retry_review(review)

    assert first.ok, first.message
    assert not second.ok and "only failed ones" in second.message
    assert [body["customId"] for body in sent] == [review.award_key, review.award_key]
    keys = PointsTransaction.objects.values_list("key", "status")
    assert sorted(keys) == [(review.award_key, "failed"), (f"{review.award_key}-retry-1", "applied")]
    assert review.annex_cloud_answer["updatedAvailablePoints"] == "50"
    assert review.member.points == 50
    assert LoyaltyEvent.objects.filter(external_id=review.award_key).count() == 1


def test_reward_rules_minimum_rating_and_ratings_only(bv):
    bv.settings = {**bv.settings, "minimum_rating": 4, "ratings_only_count": "no", "points_per_review": 25}
    bv.save()
    simulator.generate(30, days=1)

    bazaarvoice.pull_reviews(bv)

    for review in Review.objects.filter(outcome=Result.AWARDED):
        assert review.rating >= 4 and not review.ratings_only and review.points == 25
    not_counted = Review.objects.filter(outcome=Result.NOT_COUNTED)
    assert not_counted.exists() and credits()
    assert {r.award_key for r in not_counted}.isdisjoint(credits())
    key, sent = next(iter(annex_cloud_simulator.state.points.items()))
    review = Review.objects.get(outcome=Result.AWARDED, review_id=key.removeprefix("bv-review-"))
    assert {name: sent[name] for name in ("id", "actionId", "activity", "credit", "reason", "customId", "retry")} == {
        "id": review.member.email,
        "actionId": "100",
        "activity": "CREDIT",
        "credit": "25",
        "reason": "Ratings and Reviews",
        "customId": review.award_key,
        "retry": "YES",
    }


def test_an_award_is_reversed_exactly_once_with_who_and_why(bv, site_admin):
    simulator.generate(5, days=1)
    bazaarvoice.pull_reviews(bv)
    review = Review.objects.get(review_id="46000004")

    first = bazaarvoice.reverse_award(review, site_admin, "Fake review from a bot farm")
    second = bazaarvoice.reverse_award(review, site_admin, "again")

    review.refresh_from_db()
    assert first.ok, first.message
    assert not second.ok and "already reversed" in second.message
    assert review.outcome == Result.REVERSED and review.reversed_by == site_admin and review.reversed_at
    assert review.reversal_reason == "Fake review from a bot farm"
    debit = annex_cloud_simulator.state.points[review.reversal_key]
    assert debit["activity"] == "DEBIT" and debit["debit"] == "50" and debit["actionId"] == "100"
    assert annex_cloud_simulator.state.members["reviewer4@example.com"]["availablePoints"] == 0
    assert "customId" in debit and len([k for k in annex_cloud_simulator.state.points if "reversal" in k]) == 1


def test_the_passkey_never_appears_in_call_rows_or_logs(bv, annex_cloud_sandbox):
    simulator.generate(3, days=1)
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if h.filters)  # the console handler and its redaction
    original, handler.stream = handler.stream, stream
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    try:
        bazaarvoice.pull_reviews(bv)
        bv.secrets = {**bv.secrets, "passkey": "bvsbx-wrong-passkey-12345"}
        bv.save()
        PullState.objects.filter(connection=bv).update(cursor=None)
        refused = bazaarvoice.pull_reviews(bv)
    finally:
        handler.stream = original
        urllib3.setLevel(level)

    bv.refresh_from_db()
    assert bv.status == Connection.Status.FAILING and "passkey" in refused.outcome.message  # refused: says what to do
    assert "passkey=" in stream.getvalue()  # urllib3 did log the URLs ...
    rows = VendorCall.objects.filter(connection=bv)
    assert rows.count() == 2
    for text in [stream.getvalue(), refused.outcome.message, *rows.values_list("url", "error", "response_body")]:
        assert simulator.PASSKEY not in str(text) and "bvsbx-wrong-passkey-12345" not in str(text)
    assert f"passkey={REDACTED}" in rows.first().url
    assert f"passkey={REDACTED}" in stream.getvalue()


def test_today_is_the_clients_today(bv, client_a):
    client_a.time_zone = "Pacific/Kiritimati"  # UTC+14: the client's today began 10 to 14 hours before UTC's
    client_a.save()
    simulator.generate(48, days=2, today=0)

    bazaarvoice.pull_reviews(bv)

    cut = bazaarvoice.not_today_before(client_a)
    assert cut == min(bazaarvoice.start_of_today(client_a), today_start())
    assert PullState.objects.get(connection=bv).cursor == cut
    taken = Review.objects.values_list("moderated_at", flat=True)
    assert taken and all(moment < cut for moment in taken)
    assert Review.objects.count() == sum(1 for i in simulator.state.reviews if i["LastModeratedTime"] < iso(cut))


def test_malformed_duplicated_and_unexpected_items_are_taken_in_stride(bv, client_a, httpserver):
    """A fake Bazaarvoice whose pages overlap, repeat a review, and carry items the filters should have kept out."""
    key = email_key(simulator.SHARED_SECRET)
    annex_cloud_simulator.state.members["ann@example.com"] = {"id": "ann@example.com", "email": "ann@example.com"}
    yesterday = today_start() - timedelta(hours=3)

    def item(review_id: str, **fields) -> dict:
        return {
            "Id": review_id,
            "LastModeratedTime": iso(yesterday),
            "ModerationStatus": "APPROVED",
            "Rating": 5,
            "UserEmailAddress": encrypt_email("ann@example.com", key),
            **fields,
        }

    pages = [
        [item("1"), item("1"), {"Id": "", "LastModeratedTime": iso(yesterday)}, item("2", LastModeratedTime="soon")],
        [item("1"), item("3", ModerationStatus="REJECTED"), item("4", LastModeratedTime=iso(today_start()))],
    ]

    served: list[int] = []

    def fake_bazaarvoice(request: Request) -> Response:
        """The two pages in turn, whatever is asked (the junk counts in TotalResults too), then nothing."""
        results = [[*pages[0], "junk"], [*pages[1], "junk"]][len(served)] if len(served) < 2 else []
        served.append(len(results))
        return Response(json.dumps({"TotalResults": 9, "Offset": request.args["Offset"], "Results": results}))

    httpserver.expect_request("/data/reviews.json").respond_with_handler(fake_bazaarvoice)
    bv.environment, bv.base_url = Connection.Environment.PRODUCTION, httpserver.url_for("")
    bv.save()

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    assert list(Review.objects.values_list("review_id", "outcome")) == [("1", Result.AWARDED)]
    assert result.counts["duplicates"] == 2 and result.counts["malformed"] == 2 and result.counts["not_taken"] == 2
    assert credits() == ["bv-review-1"]


def test_an_annex_cloud_outage_defers_the_reviews_and_nothing_is_dropped(bv):
    simulator.generate(20, days=1)
    OUTAGES["annex_cloud"] = Outage(status=503, times=1000)
    try:
        stopped = bazaarvoice.pull_reviews(bv)
    finally:
        OUTAGES.pop("annex_cloud", None)

    assert not stopped.outcome.ok and "Waiting" not in stopped.outcome.message
    assert "next run resumes" in stopped.outcome.message
    waiting = Review.objects.filter(outcome=Result.PENDING)
    assert waiting.count() == 1 and "Annex Cloud" in waiting.get().detail
    assert PullState.objects.get(connection=bv).cursor is None  # stopped within the first page: not moved

    resumed = bazaarvoice.pull_reviews(bv)

    assert resumed.outcome.ok and Review.objects.count() == 20 and not Review.objects.filter(outcome=Result.PENDING)
    assert len(credits()) == Review.objects.filter(outcome=Result.AWARDED).count() == 12


def test_a_killed_run_award_is_completed_with_its_first_points_after_the_rules_change(bv, client_a):
    """The award was recorded (50 points) before the run was killed; the client then changed the points per review:
    the award is completed as sent, once, and later reviews go on being pulled."""
    simulator.generate(10, days=1)
    item = next(i for i in simulator.state.reviews if i["Id"] == "46000005")
    review, _ = bazaarvoice.record_review(client_a, item)
    member = Member.objects.create(client=client_a, email="reviewer5@example.com")
    annexcloud.adjust_points(member, activity="credit", points=50, key=review.award_key, action_id="100")
    bv.settings = {**bv.settings, "points_per_review": 25}
    bv.save()

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    review.refresh_from_db()
    assert review.outcome == Result.AWARDED and review.points == 50 and review.member == member
    assert credits().count(review.award_key) == 1
    others = Review.objects.filter(outcome=Result.AWARDED).exclude(pk=review.pk)
    assert others.exists() and {r.points for r in others} == {25}


def test_ac1001_on_an_award_is_uncertain_and_the_retry_keeps_the_custom_id(bv, annex_cloud_sandbox, httpserver):
    """Annex Cloud (a local fake) applies the first credit yet answers AC1001: the review stays pending, and the next
    run sends the same customId, which Annex Cloud answers with the first result: credited once."""
    _, annex = annex_cloud_sandbox
    annex.environment, annex.base_url = Connection.Environment.PRODUCTION, httpserver.url_for("/api/3.0")
    annex.save()
    applied: dict[str, dict] = {}
    sent: list[str] = []

    def fake_annex_cloud(request: Request) -> Response:
        if request.method == "GET":
            email = request.path.rsplit("/", 1)[-1]
            if email != "reviewer4@example.com":
                return Response(json.dumps({"errorCode": "AC1005", "errorMessage": "No data found"}), status=404)
            return Response(json.dumps({"id": email, "email": email, "optInStatus": "YES", "status": "ACTIVE"}))
        body = json.loads(request.data)
        sent.append(body["customId"])
        if body["customId"] in applied:
            return Response(json.dumps(applied[body["customId"]]))
        applied[body["customId"]] = {**body, "updatedAvailablePoints": "50"}
        return Response(json.dumps({"errorCode": "AC1001", "errorMessage": "Oops! Something went wrong."}), 404)

    httpserver.expect_request(re.compile(r"/api/3\.0/.*")).respond_with_handler(fake_annex_cloud)
    simulator.generate(5, days=1)

    first = bazaarvoice.pull_reviews(bv)
    review = Review.objects.get(review_id="46000004")
    assert first.outcome.ok and review.outcome == Result.PENDING and review.detail.startswith("Uncertain")
    assert review.annex_cloud_answer["errorCode"] == "AC1001"

    second = bazaarvoice.pull_reviews(bv)

    review.refresh_from_db()
    assert second.outcome.ok and review.outcome == Result.AWARDED
    assert sent == [review.award_key, review.award_key] and len(applied) == 1


def test_a_refused_reversal_can_be_reversed_again_once_fixed(bv, site_admin):
    simulator.generate(5, days=1)
    bazaarvoice.pull_reviews(bv)
    review = Review.objects.get(review_id="46000004")
    annex_cloud_simulator.state.members["reviewer4@example.com"]["availablePoints"] = 10  # spent meanwhile

    refused = bazaarvoice.reverse_award(review, site_admin, "Fake review")
    review.refresh_from_db()
    assert not refused.ok and "Insufficient points" in refused.message and review.outcome == Result.AWARDED

    annex_cloud_simulator.state.members["reviewer4@example.com"]["availablePoints"] = 70
    again = bazaarvoice.reverse_award(review, site_admin, "Fake review")

    review.refresh_from_db()
    assert again.ok, again.message
    assert review.outcome == Result.REVERSED
    assert annex_cloud_simulator.state.members["reviewer4@example.com"]["availablePoints"] == 20
    assert [k for k in annex_cloud_simulator.state.points if "reversal" in k] == [review.reversal_key]


def test_no_award_goes_through_a_never_verified_annex_cloud_connection(bv, annex_cloud_sandbox):
    _, annex = annex_cloud_sandbox
    annex.status = Connection.Status.DRAFT
    annex.save()
    simulator.generate(10, days=1)

    stopped = bazaarvoice.pull_reviews(bv)

    assert not stopped.outcome.ok and "never verified" in stopped.outcome.message
    assert credits() == [] and Review.objects.filter(outcome=Result.PENDING).count() == 1

    annex.status = Connection.Status.ACTIVE
    annex.save()
    resumed = bazaarvoice.pull_reviews(bv)

    assert resumed.outcome.ok and credits()
    assert not Review.objects.filter(outcome=Result.PENDING).exists()


def fake_bazaarvoice_of(items: list[dict], queries: list[dict]):
    """A local Bazaarvoice answering the pull's queries (time filters in epoch seconds, ascending, Limit/Offset)."""

    def answer(request: Request) -> Response:
        bounds = dict(text.split(":", 2)[1:] for text in request.args.getlist("Filter") if "Time" in text)
        queries.append({"gte": int(bounds["gte"]), "offset": int(request.args["Offset"])})
        matching = sorted(
            (i for i in items if int(bounds["gte"]) <= seconds_of(i) < int(bounds["lt"])),
            key=lambda i: i["LastModeratedTime"],
        )
        offset, limit = int(request.args["Offset"]), int(request.args["Limit"])
        page = {"TotalResults": len(matching), "Offset": offset, "Results": matching[offset : offset + limit]}
        return Response(json.dumps(page))

    return answer


def seconds_of(item: dict) -> int:
    return int(datetime.fromisoformat(item["LastModeratedTime"]).timestamp())


def review_items(count: int, first: datetime, *, step: timedelta) -> list[dict]:
    key = email_key(simulator.SHARED_SECRET)
    return [
        {
            "Id": str(n),
            "LastModeratedTime": iso(first + step * n),
            "ModerationStatus": "APPROVED",
            "Rating": 5,
            "UserEmailAddress": encrypt_email(f"nobody{n}@example.com", key),
        }
        for n in range(count)
    ]


def test_a_review_re_moderated_while_the_pages_are_read_skips_no_other_review(bv, httpserver):
    items = review_items(250, today_start() - timedelta(days=1), step=timedelta(minutes=1))
    queries: list[dict] = []
    answer = fake_bazaarvoice_of(items, queries)

    def re_moderating(request: Request) -> Response:
        response = answer(request)
        if len(queries) == 1:  # between the first and the second page, review 5 is moderated again (now: today)
            items[5]["LastModeratedTime"] = iso(datetime.now(UTC))
        return response

    httpserver.expect_request("/data/reviews.json").respond_with_handler(re_moderating)
    bv.environment, bv.base_url = Connection.Environment.PRODUCTION, httpserver.url_for("")
    bv.save()

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    assert Review.objects.count() == 250  # review 100 moved up into Offset 99's place: read all the same


def test_many_reviews_of_one_second_are_paged_by_offset_within_that_second(bv, httpserver):
    same_second = review_items(230, today_start() - timedelta(hours=5), step=timedelta(0))
    items = [*same_second, *review_items(30, today_start() - timedelta(hours=4), step=timedelta(seconds=1))]
    for n, item in enumerate(items):
        item["Id"] = str(n)
    queries: list[dict] = []
    httpserver.expect_request("/data/reviews.json").respond_with_handler(fake_bazaarvoice_of(items, queries))
    bv.environment, bv.base_url = Connection.Environment.PRODUCTION, httpserver.url_for("")
    bv.save()

    result = bazaarvoice.pull_reviews(bv)

    assert result.outcome.ok, result.outcome.message
    assert Review.objects.count() == 260
    crowded = seconds_of(same_second[0])
    # Started again from that second (Offset 0: a page of it), then on by Offset while the pages stay in it.
    assert [q["offset"] for q in queries[1:] if q["gte"] == crowded] == [0, 100, 200]


def test_reviewer_addresses_stay_out_of_log_lines_and_odd_ones_are_escaped_and_found(bv):
    """urllib3 logs each request line (GET /users/<address>) at DEBUG: the address is redacted there, only while the
    look-up runs; an address with + / # goes escaped in the path and its member is found."""
    address = "o.neil+reviews/x#1@example.com"
    annex_cloud_simulator.state.members[address] = annex_cloud_simulator.profile({"id": address, "email": address})
    moderated = today_start() - timedelta(hours=2)
    encrypted = encrypt_email(address, email_key(simulator.SHARED_SECRET))
    simulator.state.reviews.append(simulator.review_item(999, encrypted, moderated))
    simulator.generate(5, days=1)
    stream = io.StringIO()
    handler = next(h for h in logging.getLogger().handlers if h.filters)  # the console handler and its redaction
    original, handler.stream = handler.stream, stream
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    try:
        result = bazaarvoice.pull_reviews(bv)
    finally:
        handler.stream = original
        urllib3.setLevel(level)

    assert result.outcome.ok, result.outcome.message
    review = Review.objects.get(review_id="46000999")
    assert review.outcome == Result.AWARDED and review.member.email == address
    assert annex_cloud_simulator.state.members[address]["availablePoints"] == 50
    # Found: the # (a fragment, never sent, if left as is) and the / went escaped. The call rows redact it too.
    looked_up = Review.objects.exclude(outcome=Result.UNDECRYPTABLE).count()
    assert VendorCall.objects.filter(url__endswith=f"/users/{REDACTED}").count() == looked_up
    logged = stream.getvalue()
    assert "/users/" in logged and f"/users/{REDACTED}" in logged  # urllib3 did log the look-ups ...
    for reviewer in [address, "o.neil%2Breviews%2Fx%231@example.com", "reviewer4@example.com"]:
        assert reviewer not in logged
    assert redact_text("reviewer4@example.com") == "reviewer4@example.com"  # redacted only for the look-up


def test_the_simulator_sorts_by_the_attribute_named(bv):
    simulator.generate(20, days=1)
    api = bazaarvoice.bazaarvoice_api(bv)

    by_rating = api.reviews(filters=[], sort="Rating:desc", limit=100, offset=0)["Results"]
    by_time = api.reviews(filters=[], sort="LastModeratedTime:asc", limit=100, offset=0)["Results"]

    ratings = [item["Rating"] for item in by_rating]
    assert ratings == sorted(ratings, reverse=True) and len(set(ratings)) > 1
    times = [item["LastModeratedTime"] for item in by_time]
    assert times == sorted(times)


def test_pending_reviews_are_settled_within_the_runs_time_and_the_next_run_settles_the_rest(bv, client_a):
    simulator.generate(10, days=1)
    for item in simulator.state.reviews[:6]:
        bazaarvoice.record_review(client_a, item)  # left pending by a stopped run

    short = bazaarvoice.pull_reviews(bv, budget=timedelta(0))

    assert short.outcome.ok and "the next run continues" in short.outcome.message
    assert Review.objects.filter(outcome=Result.PENDING).count() == 5 and not short.counts.get("pages")

    rest = bazaarvoice.pull_reviews(bv)

    assert rest.outcome.ok and Review.objects.count() == 10
    assert not Review.objects.filter(outcome=Result.PENDING).exists()


# --- Late reviews, "not today" by both readings, the quota's reset (issue 20, findings 1-3) ------------------------


def late_review(number: int, moderated: datetime) -> str:
    """A review Bazaarvoice indexes only now, moderated at `moderated` (behind the cursor), by a loyalty member
    (numbers ending 4-9); returns its review id."""
    until = moderated + timedelta(seconds=1)
    simulator.generate(1, first=number, moderated_from=moderated.isoformat(), moderated_until=until.isoformat())
    return str(46_000_000 + number)


def time_filters(query: list[tuple[str, str]]) -> list[str]:
    return [value for key, value in query if key == "Filter" and "LastModeratedTime" in value]


def test_a_review_indexed_late_behind_the_cursor_is_found_by_the_look_back_and_awarded_once(bv):
    simulator.generate(20, days=2)
    bazaarvoice.pull_reviews(bv)
    cursor = PullState.objects.get(connection=bv).cursor
    late = late_review(5004, cursor - timedelta(hours=30))
    simulator.state.queries.clear()

    found = bazaarvoice.pull_reviews(bv)
    again = bazaarvoice.pull_reviews(bv)

    review = Review.objects.get(review_id=late)
    assert review.outcome == Result.AWARDED and found.counts["new"] == 1 and not again.counts.get("new")
    assert credits().count(review.award_key) == 1 and len(credits()) == len(set(credits()))
    # What Bazaarvoice received: each run read from 72 hours (the default look-back) behind the cursor.
    start = int((cursor - timedelta(hours=72)).timestamp())
    assert time_filters(simulator.state.queries[0]) == [
        f"LastModeratedTime:gte:{start}",
        f"LastModeratedTime:lt:{int(cursor.timestamp())}",
    ]
    assert PullState.objects.get(connection=bv).cursor == cursor  # the look-back never moves the cursor back


def test_the_look_back_is_a_connection_setting_and_re_moderation_into_the_past_awards_nothing_twice(bv):
    bv.settings = {**bv.settings, "look_back_hours": 6}
    bv.save()
    simulator.generate(20, days=2)
    bazaarvoice.pull_reviews(bv)
    cursor = PullState.objects.get(connection=bv).cursor
    awarded = sorted(credits())
    inside, outside = late_review(5005, cursor - timedelta(hours=5)), late_review(5006, cursor - timedelta(hours=7))
    with simulator.state.lock:  # an awarded review re-moderated: its LastModeratedTime moves into the look-back
        rewarded = next(i for i in simulator.state.reviews if f"bv-review-{i['Id']}" in awarded)
        rewarded["LastModeratedTime"] = iso(cursor - timedelta(hours=1))

    bazaarvoice.pull_reviews(bv)

    assert Review.objects.get(review_id=inside).outcome == Result.AWARDED
    assert not Review.objects.filter(review_id=outside).exists()  # 7 hours back: only "Re-read from…" finds it
    assert sorted(credits()) == sorted([*awarded, f"bv-review-{inside}"])
    assert bazaarvoice.look_back(bv) == timedelta(hours=6)
    bv.settings = {**bv.settings, "look_back_hours": 0}
    assert bazaarvoice.look_back(bv) == timedelta(0)  # 0 is a choice, not "the default"
    assert bv.spec.clean_settings({"look_back_hours": "0"}) == {"look_back_hours": 0}


def test_re_read_from_moves_the_cursor_back_and_awards_only_what_was_never_recorded(bv):
    bv.settings = {**bv.settings, "look_back_hours": 0}
    bv.save()
    simulator.generate(30, days=3)
    bazaarvoice.pull_reviews(bv)
    cursor = PullState.objects.get(connection=bv).cursor
    awarded = len(credits())
    late = late_review(5007, cursor - timedelta(days=2))
    assert not bazaarvoice.pull_reviews(bv).counts.get("new")  # behind the cursor, no look-back: not found

    moved = bazaarvoice.reread_from(bv, cursor - timedelta(days=2, hours=1))
    found = bazaarvoice.pull_reviews(bv)

    assert moved.outcome.ok and moved.before == cursor and moved.after == cursor - timedelta(days=2, hours=1)
    assert found.counts["new"] == 1 and found.counts["duplicates"] >= 1
    assert Review.objects.get(review_id=late).outcome == Result.AWARDED
    assert len(credits()) == len(set(credits())) == awarded + 1
    assert PullState.objects.get(connection=bv).cursor == cursor  # the run read up to where it was, and no further


def test_re_read_from_is_refused_while_a_pull_runs_and_for_a_moment_not_behind_the_cursor(bv):
    assert not bazaarvoice.reread_from(bv, today_start()).outcome.ok  # never pulled: nothing to re-read
    simulator.generate(5, days=1)
    bazaarvoice.pull_reviews(bv)
    state = PullState.objects.get(connection=bv)

    ahead = bazaarvoice.reread_from(bv, state.cursor)
    PullState.objects.filter(pk=state.pk).update(lease_until=datetime.now(UTC) + timedelta(minutes=1))
    running = bazaarvoice.reread_from(bv, state.cursor - timedelta(days=1))

    assert not ahead.outcome.ok and "not before the cursor" in ahead.outcome.message
    assert not running.outcome.ok and "is running" in running.outcome.message
    assert PullState.objects.get(pk=state.pk).cursor == state.cursor


@pytest.mark.parametrize(
    ("zone", "now", "end"),
    [
        # Auckland (UTC+13 in November) at 01:00 on the 24th: its today began at 11:00 UTC on the 23rd, UTC's earlier.
        ("Pacific/Auckland", datetime(2026, 11, 23, 12, 0, tzinfo=UTC), datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
        ("Pacific/Auckland", datetime(2026, 11, 23, 5, 0, tzinfo=UTC), datetime(2026, 11, 22, 11, 0, tzinfo=UTC)),
        # Los Angeles (UTC-8) at 02:00 on the 23rd: its today began at 08:00 UTC, UTC's earlier.
        ("America/Los_Angeles", datetime(2026, 11, 23, 10, 0, tzinfo=UTC), datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
        ("America/Los_Angeles", datetime(2026, 11, 23, 5, 0, tzinfo=UTC), datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
        ("UTC", datetime(2026, 11, 23, 5, 0, tzinfo=UTC), datetime(2026, 11, 23, 0, 0, tzinfo=UTC)),
    ],
)
def test_not_today_ends_at_the_earlier_of_the_clients_midnight_and_utc_midnight(client_a, zone, now, end):
    client_a.time_zone = zone
    assert bazaarvoice.not_today_before(client_a, now) == end


@pytest.mark.parametrize(
    ("zone", "now"),
    [
        ("Pacific/Auckland", datetime(2026, 11, 23, 12, 0, tzinfo=UTC)),
        ("America/Los_Angeles", datetime(2026, 11, 23, 10, 0, tzinfo=UTC)),
    ],
)
def test_no_review_moderated_today_by_either_reading_is_taken(bv, client_a, zone, now):
    client_a.time_zone = zone
    client_a.save()
    utc_midnight = datetime(2026, 11, 23, tzinfo=UTC)
    # 48 reviews over the 24 hours before `now`: half of them moderated on the 23rd in UTC, before the client's today.
    simulator.generate(48, moderated_from=(now - timedelta(days=1)).isoformat(), moderated_until=now.isoformat())

    result = bazaarvoice.pull_reviews(bv, now=now)

    assert result.outcome.ok, result.outcome.message
    taken = list(Review.objects.values_list("moderated_at", flat=True))
    before = [i for i in simulator.state.reviews if datetime.fromisoformat(i["LastModeratedTime"]) < utc_midnight]
    assert taken and all(moment < utc_midnight for moment in taken) and len(taken) == len(before) < 48
    assert time_filters(simulator.state.queries[0])[-1] == f"LastModeratedTime:lt:{int(utc_midnight.timestamp())}"
    assert PullState.objects.get(connection=bv).cursor == utc_midnight


@pytest.mark.parametrize(("header", "wait"), [("0", 1), ("00:00:00", 1), ("00:00:59", 60)])
def test_a_429_waits_its_whole_reset_rounded_up_and_a_zero_reset_is_never_retried_at_once(bv, header, wait):
    simulator.generate(30, days=1)
    simulator.state.rate_limit, simulator.state.quota_reset = 1, header
    before = datetime.now(UTC)

    stopped = bazaarvoice.pull_reviews(bv)

    state = PullState.objects.get(connection=bv)
    assert not stopped.outcome.ok and "quota" in stopped.outcome.message
    assert simulator.state.calls == 1 and not Review.objects.exists()  # what Bazaarvoice received: the one call
    assert state.quota_reset_at >= before + timedelta(seconds=wait)
    assert bazaarvoice.pull_reviews(bv, now=state.quota_reset_at - timedelta(milliseconds=1)).counts == {"skipped": 1}
    assert simulator.state.calls == 1
