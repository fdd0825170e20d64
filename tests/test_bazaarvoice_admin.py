"""Bazaarvoice in the admin and the client API: reviews scoped to the user's clients (client A never sees B's), the
connection page's pull state and "Pull now" (over the simulators), "Reverse award" for site admins only, with a
reason, once; `GET /api/reviews/` scoped and filtered, with field messages for bad filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice import sandbox as simulator
from integrations.bazaarvoice.models import PullState, Review
from integrations.bazaarvoice.tasks import pull_reviews
from integrations.models import AuditEntry, Connection, JobRun
from integrations.schedules import ensure_schedules
from tests.factories import ConnectionFactory, MemberFactory

CHANGELIST = "admin:bazaarvoice_review_changelist"


def review(client, review_id: str, outcome: str = Review.Outcome.AWARDED, **fields) -> Review:
    moderated = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    return Review.objects.create(
        client=client, review_id=review_id, moderated_at=moderated, outcome=outcome, points=50, **fields
    )


@pytest.fixture
def reviews(client_a, client_b):
    return [
        review(client_a, "A-1", masked_email="a•••@example.com"),
        review(client_a, "A-2", Review.Outcome.NOT_MEMBER),
        review(client_b, "B-1", masked_email="b•••@example.com"),
    ]


@pytest.fixture
def bv(bazaarvoice_connection):
    return bazaarvoice_connection


# --- Tenancy -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_client_user_sees_only_their_clients_reviews_in_the_admin(alice_http, reviews):
    page = alice_http.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert b"A-1" in page.content and b"A-2" in page.content and b"B-1" not in page.content
    other = alice_http.get(reverse("admin:bazaarvoice_review_change", args=[reviews[2].pk]))
    assert other.status_code in (302, 404)


@pytest.mark.django_db
def test_the_client_api_lists_only_the_callers_reviews_with_their_outcome(api_client_for, client_a, reviews):
    answer = api_client_for(client_a).get("/api/reviews/")
    assert answer.status_code == 200
    rows = answer.json()["results"] if isinstance(answer.json(), dict) else answer.json()
    assert sorted(r["review_id"] for r in rows) == ["A-1", "A-2"]
    awarded = next(r for r in rows if r["review_id"] == "A-1")
    assert awarded["outcome"] == "awarded" and awarded["points"] == 50 and awarded["reviewer"] == "a•••@example.com"
    assert "encrypted_email" not in awarded


@pytest.mark.django_db
def test_the_client_api_filters_and_says_what_is_wrong_with_a_filter(api_client_for, client_a, reviews):
    api = api_client_for(client_a)
    answer = api.get("/api/reviews/", {"outcome": "not_member"})
    rows = answer.json()["results"] if isinstance(answer.json(), dict) else answer.json()
    assert [r["review_id"] for r in rows] == ["A-2"]
    assert api.get("/api/reviews/", {"outcome": "won"}).json() == {
        "outcome": "Must be one of: pending, awarded, not_member, not_eligible, not_counted, undecryptable, failed, "
        "reversed."
    }
    bad_date = api.get("/api/reviews/", {"moderated_after": "2026-13-01T00:00:00Z"})
    assert bad_date.status_code == 400 and "moderated_after" in bad_date.json()
    none_before = api.get("/api/reviews/", {"moderated_before": "2026-11-01T00:00:00Z"}).json()
    assert (none_before["results"] if isinstance(none_before, dict) else none_before) == []


# --- Site admin's actions ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_client_users_cannot_retry_or_reverse(alice_http, reviews):
    page = alice_http.get(reverse(CHANGELIST))
    assert b"reverse_award" not in page.content and b'value="retry"' not in page.content
    posted = alice_http.post(
        reverse(CHANGELIST),
        {"action": "reverse_award", "_selected_action": [reviews[0].pk], "confirm": "yes", "reason": "x"},
    )
    assert posted.status_code in (200, 302)
    reviews[0].refresh_from_db()
    assert reviews[0].outcome == Review.Outcome.AWARDED


@pytest.mark.django_db(transaction=True)
def test_reverse_award_asks_why_then_debits_once(admin_http, bv, client_a):
    simulator.generate(5, days=1)
    pull_reviews.apply(args=[client_a.pk])
    awarded = Review.objects.get(review_id="46000004")
    assert awarded.outcome == Review.Outcome.AWARDED
    action = {"action": "reverse_award", "_selected_action": [awarded.pk]}

    asked = admin_http.post(reverse(CHANGELIST), action)
    no_reason = admin_http.post(reverse(CHANGELIST), {**action, "confirm": "yes", "reason": ""})
    done = admin_http.post(reverse(CHANGELIST), {**action, "confirm": "yes", "reason": "Bot farm"}, follow=True)
    again = admin_http.post(reverse(CHANGELIST), {**action, "confirm": "yes", "reason": "Bot farm"}, follow=True)

    assert b"Reverse the award of 1 review" in asked.content
    assert b"Say why the award is reversed" in no_reason.content
    awarded.refresh_from_db()
    assert awarded.outcome == Review.Outcome.REVERSED and awarded.reversal_reason == "Bot farm"
    assert b"debited 50 points" in done.content and b"already reversed" in again.content
    assert [k for k in annex_cloud_simulator.state.points if k.endswith("-reversal")] == [awarded.reversal_key]
    # The balance the debit left is the person's change on the member's timeline, named with the action.
    last_change = awarded.member.changes.order_by("pk").last()
    assert last_change.by == "site-admin with “Reverse the award of the selected reviews…” on the reviews list"


@pytest.mark.django_db(transaction=True)
def test_retry_settles_an_undecryptable_review_again_once_the_key_is_fixed(admin_http, bv, client_a):
    simulator.state.derivation = "sha1"
    simulator.generate(5, days=1)
    pull_reviews.apply(args=[client_a.pk])
    bv.settings = {**bv.settings, "email_key_derivation": "sha1"}
    bv.save()
    stuck = Review.objects.get(review_id="46000004")
    assert stuck.outcome == Review.Outcome.UNDECRYPTABLE

    done = admin_http.post(reverse(CHANGELIST), {"action": "retry", "_selected_action": [stuck.pk]}, follow=True)

    stuck.refresh_from_db()
    assert stuck.outcome == Review.Outcome.AWARDED and b"awarded" in done.content
    assert list(annex_cloud_simulator.state.points) == [stuck.award_key]


@pytest.mark.django_db(transaction=True)
def test_the_connection_page_shows_the_pull_and_pull_now_queues_the_job(admin_http, bv, eager_celery):
    ensure_schedules()
    simulator.generate(10, days=1)
    change = reverse("admin:integrations_connection_change", args=[bv.pk])
    pull = reverse("admin:integrations_connection_bazaarvoice_pull", args=[bv.pk])

    before = admin_http.get(change)
    confirm = admin_http.get(pull)
    admin_http.post(pull)
    after = admin_http.get(change)

    assert b"not started" in before.content and b"Next run due" in before.content and pull.encode() in before.content
    assert b"the schedule is off" not in before.content  # a time: the hourly schedule exists
    assert b"Yes, pull now" in confirm.content
    assert JobRun.objects.filter(job="bazaarvoice.pull_reviews").count() == 1
    assert Review.objects.count() == 10
    state = PullState.objects.get(connection=bv)
    assert state.cursor and b"Pulled 10 reviews" in after.content
    assert timedelta(0) < state.cursor - (datetime.now(UTC) - timedelta(days=1)) <= timedelta(days=1)


@pytest.mark.django_db
def test_pull_now_on_a_connection_not_verified_says_to_verify_it(admin_http, client_a):
    draft = ConnectionFactory(
        client=client_a, vendor="bazaarvoice", status=Connection.Status.DRAFT, secrets=dict(simulator.DEMO_SECRETS)
    )
    answer = admin_http.post(reverse("admin:integrations_connection_bazaarvoice_pull", args=[draft.pk]), follow=True)
    assert b"verify it first" in answer.content
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_a_client_user_cannot_pull_another_clients_connection(alice_http, client_b):
    other = ConnectionFactory(client=client_b, vendor="bazaarvoice", secrets=dict(simulator.DEMO_SECRETS))
    answer = alice_http.post(reverse("admin:integrations_connection_bazaarvoice_pull", args=[other.pk]))
    assert answer.status_code == 404
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_the_member_link_of_an_awarded_review(admin_http, client_a):
    member = MemberFactory(client=client_a, email="m@example.com", first_name="Mia", last_name="Reviewer")
    awarded = review(client_a, "A-9", member=member)
    page = admin_http.get(reverse("admin:bazaarvoice_review_change", args=[awarded.pk]))
    assert reverse("admin:members_member_change", args=[member.pk]).encode() in page.content


@pytest.mark.django_db(transaction=True)
def test_a_client_user_can_pull_their_own_clients_reviews_now(alice_http, bv, eager_celery):
    simulator.generate(3, days=1)
    answer = alice_http.post(reverse("admin:integrations_connection_bazaarvoice_pull", args=[bv.pk]), follow=True)
    assert b"Queued: a pull" in answer.content
    assert JobRun.objects.get(job="bazaarvoice.pull_reviews").client == bv.client
    assert Review.objects.count() == 3


@pytest.mark.django_db
def test_the_review_list_shows_annex_cloud_answer_in_short_for_awarded_and_failed(admin_http, client_a):
    review(client_a, "A-9", annex_cloud_answer={"updatedAvailablePoints": "150", "updatedUserTier": "Silver"})
    refused = {"errorCode": "AC1004", "errorMessage": "Missing parameters: actionId"}
    review(client_a, "A-10", Review.Outcome.FAILED, annex_cloud_answer=refused, detail="Annex Cloud refused it.")

    page = admin_http.get(reverse(CHANGELIST)).content.decode()

    assert "balance 150, tier Silver" in page
    assert "AC1004: Missing parameters: actionId" in page and "Annex Cloud refused it." in page


# --- Re-read from… (issue 20, finding 1) ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_re_read_from_asks_from_when_then_moves_the_cursor_back_audited_and_the_late_review_is_awarded(
    admin_http, bv, client_a
):
    bv.settings = {**bv.settings, "look_back_hours": 0}
    bv.save()
    simulator.generate(10, days=3)
    pull_reviews.apply(args=[client_a.pk])
    cursor = PullState.objects.get(connection=bv).cursor
    late = cursor - timedelta(days=2)  # indexed late: behind the cursor, out of the (zero) look-back
    simulator.generate(1, first=504, moderated_from=late.isoformat(), moderated_until=cursor.isoformat())
    change = reverse("admin:integrations_connection_change", args=[bv.pk])
    reread = reverse("admin:integrations_connection_bazaarvoice_reread", args=[bv.pk])

    page = admin_http.get(change)
    asked = admin_http.get(reread)
    ahead = admin_http.post(reread, {"moment": f"{cursor + timedelta(hours=1):%Y-%m-%d %H:%M:%S}"})
    done = admin_http.post(reread, {"moment": f"{late - timedelta(hours=1):%Y-%m-%d %H:%M:%S}"}, follow=True)
    pull_reviews.apply(args=[client_a.pk])

    assert reread.encode() in page.content and b"Re-read from" in page.content
    said = " ".join(asked.content.decode().split())
    assert "Move the cursor back" in said and "Reviews already recorded are not rewarded again" in said
    assert b"not before the cursor" in ahead.content
    assert b"moved back" in done.content
    entry = AuditEntry.objects.get(subject_id=bv.pk, fields=["bazaarvoice.cursor"])
    assert entry.actor is not None
    assert "Re-read from" in entry.note and f"{cursor:%Y-%m-%d %H:%M:%S} UTC" in entry.changes[0]
    assert Review.objects.get(review_id="46000504").outcome == Review.Outcome.AWARDED
    credited = [key for key, answer in annex_cloud_simulator.state.points.items() if answer["activity"] == "CREDIT"]
    assert len(credited) == len(set(credited)) == Review.objects.filter(outcome=Review.Outcome.AWARDED).count()


@pytest.mark.django_db(transaction=True)
def test_only_site_admins_re_read(alice_http, bv, client_a):
    simulator.generate(3, days=1)
    pull_reviews.apply(args=[client_a.pk])
    cursor = PullState.objects.get(connection=bv).cursor
    reread = reverse("admin:integrations_connection_bazaarvoice_reread", args=[bv.pk])

    page = alice_http.get(reverse("admin:integrations_connection_change", args=[bv.pk]))
    refused = alice_http.post(reread, {"moment": f"{cursor - timedelta(days=1):%Y-%m-%d %H:%M:%S}"})

    assert page.status_code == 200 and reread.encode() not in page.content
    assert refused.status_code == 403 and PullState.objects.get(connection=bv).cursor == cursor
    assert not AuditEntry.objects.filter(subject_id=bv.pk).exists()
