"""The points rule (`adjust_points` in integrations/annexcloud/flows.py), pinned where `make mutate` found changes
that passed: what is refused before any call, the customId and action id sent, what a refusal stores, and the words
an applied adjustment is summed up in. Annex Cloud answers over real HTTP (pytest-httpserver checks the exact
body)."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db
from pytest_httpserver import HTTPServer

from integrations.annexcloud.flows import MAX_POINTS, AnnexCloudNotReady, KeyReused, adjust_points
from integrations.models import Connection
from members.models import Member, PointsTransaction
from tests.factories import MemberFactory, local_annex_cloud
from tests.meanwhile import at_query, statement

pytestmark = pytest.mark.django_db

POINTS = "/api/3.0/points"


@pytest.fixture
def annex_cloud(httpserver: HTTPServer, client_a) -> Connection:
    client_a.site_id = "100001"
    client_a.save()
    return local_annex_cloud(client_a, httpserver.url_for("/api/3.0"))


@pytest.fixture
def bo(client_a) -> Member:
    return MemberFactory(client=client_a, annex_cloud_id="AC-42", email="bo@x.com", points=100, tier="")


def sent(httpserver: HTTPServer) -> list[dict[str, str]]:
    return [json.loads(request.get_data()) for request, _ in httpserver.log]


def answer_points(httpserver: HTTPServer, answer: dict, status: int = 200) -> None:
    httpserver.expect_request(POINTS, method="POST").respond_with_json(answer, status=status)


# --- Refused before any call ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activity", "points"), [("refund", 5), ("credit", 0), ("debit", -3), ("credit", MAX_POINTS + 1)]
)
def test_an_unknown_activity_or_points_out_of_range_are_refused_before_any_call(
    annex_cloud, httpserver, bo, activity, points
):
    with pytest.raises(ValueError, match="credit or debit"):
        adjust_points(bo, activity=activity, points=points, key="k-1")
    assert httpserver.log == [] and not PointsTransaction.objects.exists()


@pytest.mark.parametrize("points", [1, MAX_POINTS])
def test_one_point_and_the_maximum_are_sent(annex_cloud, httpserver, bo, points):
    answer_points(httpserver, {"updatedAvailablePoints": str(100 + points)})
    assert adjust_points(bo, activity="credit", points=points, key=f"k-{points}").outcome.ok
    assert [body["credit"] for body in sent(httpserver)] == [str(points)]


def test_a_member_annex_cloud_cannot_identify_is_refused_before_any_call(annex_cloud, httpserver, client_a):
    nobody = MemberFactory(client=client_a, annex_cloud_id="", email="", phone="+14045550101")
    with pytest.raises(AnnexCloudNotReady, match="neither an Annex Cloud id nor an e-mail"):
        adjust_points(nobody, activity="credit", points=5, key="k-1")
    assert httpserver.log == [] and not PointsTransaction.objects.exists()


def test_a_settled_key_reused_for_other_points_is_refused_without_a_call(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "105"})
    adjust_points(bo, activity="credit", points=5, key="k-1")
    with pytest.raises(KeyReused, match="'k-1' was already used"):
        adjust_points(bo, activity="credit", points=6, key="k-1")
    assert len(httpserver.log) == 1


# --- What is sent -----------------------------------------------------------------------------------------------


def test_the_custom_id_sent_is_the_key_unless_the_caller_names_the_first_attempts(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "110"})
    adjust_points(bo, activity="credit", points=5, key="award-1")
    adjust_points(bo, activity="credit", points=5, key="award-2-retry-1", custom_id="award-2")
    assert [body["customId"] for body in sent(httpserver)] == ["award-1", "award-2"]
    assert set(PointsTransaction.objects.values_list("key", flat=True)) == {"award-1", "award-2-retry-1"}


def test_the_action_id_is_the_callers_else_the_connections_else_the_manual_credit(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "110"})
    adjust_points(bo, activity="credit", points=1, key="k-1")
    annex_cloud.settings = {**annex_cloud.settings, "points_action_id": "777"}
    annex_cloud.save()
    adjust_points(bo, activity="credit", points=1, key="k-2")
    adjust_points(bo, activity="credit", points=1, key="k-3", action_id="9")
    assert [body["actionId"] for body in sent(httpserver)] == ["100", "777", "9"]
    assert list(PointsTransaction.objects.order_by("pk").values_list("action_id", flat=True)) == ["100", "777", "9"]


# --- What is stored ---------------------------------------------------------------------------------------------


def test_a_refusal_is_stored_with_annex_clouds_code_and_words(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"errorCode": "AC1004", "errorMessage": "reason is required"})
    result = adjust_points(bo, activity="debit", points=5, key="k-1")
    txn = PointsTransaction.objects.get()
    assert txn.status == PointsTransaction.Status.FAILED and not result.repeated
    assert txn.response == {"errorCode": "AC1004", "errorMessage": "reason is required"}
    assert (
        txn.detail
        == "Annex Cloud refused the debit: reason is required. A required parameter is missing from the request."
    )
    assert not result.outcome.ok and result.outcome.message == f"{bo}: {txn.detail}"


def test_a_non_member_refusal_keeps_its_code_and_says_who(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"errorCode": "AC1005", "errorMessage": "No data found"})
    adjust_points(bo, activity="credit", points=5, key="k-1")
    txn = PointsTransaction.objects.get()
    assert txn.response == {"errorCode": "AC1005", "errorMessage": "No data found"}
    assert txn.detail == "AC-42 is not a loyalty member at Annex Cloud."


def test_an_unanswered_adjustment_stays_pending_with_no_answer_stored(annex_cloud, httpserver, bo, settings):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0
    answer_points(httpserver, {"message": "busy"}, status=503)
    adjust_points(bo, activity="credit", points=5, key="k-1")
    txn = PointsTransaction.objects.get()
    assert txn.status == PointsTransaction.Status.PENDING and txn.response == {}
    assert txn.detail.endswith("Repeat with the same key to send it again.")


@pytest.mark.parametrize(
    ("activity", "answer", "detail"),
    [
        (
            "credit",
            {"updatedAvailablePoints": "125", "updatedUserTier": "Gold"},
            "credited 25 points at Annex Cloud (balance 125, tier Gold).",
        ),
        ("debit", {"updatedAvailablePoints": 75}, "debited 25 points at Annex Cloud (balance 75)."),
        ("credit", {"updatedUserTier": "Silver"}, "credited 25 points at Annex Cloud (tier Silver)."),
        ("debit", {"updatedAvailablePoints": "", "updatedUserTier": ""}, "debited 25 points at Annex Cloud."),
        ("credit", {}, "credited 25 points at Annex Cloud."),
    ],
)
def test_an_applied_adjustment_is_summed_up_with_the_balance_and_tier_annex_cloud_gave(
    annex_cloud, httpserver, bo, activity, answer, detail
):
    answer_points(httpserver, answer)
    result = adjust_points(bo, activity=activity, points=25, key="k-1")
    assert result.transaction.detail == detail and result.outcome.message == f"{bo}: {detail}"
    assert PointsTransaction.objects.get().response == answer


def test_a_repeat_says_it_was_not_sent_again(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "105"})
    adjust_points(bo, activity="credit", points=5, key="k-1")
    again = adjust_points(bo, activity="credit", points=5, key="k-1")
    assert again.repeated and len(httpserver.log) == 1
    assert (
        again.outcome.message
        == f"{bo}: credited 5 points at Annex Cloud (balance 105). (already applied with this key: not sent again)"
    )


@pytest.mark.parametrize(("balance", "points"), [("4545", 4545), (4545, 4545), ("0", 0)])
def test_the_balance_annex_cloud_answers_becomes_the_members_as_a_string_or_a_number(
    annex_cloud, httpserver, bo, balance, points
):
    answer_points(httpserver, {"updatedAvailablePoints": balance, "updatedUserTier": 7})
    adjust_points(bo, activity="credit", points=5, key="k-1")
    bo.refresh_from_db()
    assert (bo.points, bo.tier) == (points, "7") and bo.points_synced_at is not None


@pytest.mark.parametrize("balance", ["n/a", "12.5", None])
def test_a_balance_that_is_no_whole_number_leaves_the_members_points_and_takes_the_tier(
    annex_cloud, httpserver, bo, balance
):
    answer_points(httpserver, {"updatedAvailablePoints": balance, "updatedUserTier": "Gold"})
    assert adjust_points(bo, activity="credit", points=5, key="k-1").outcome.ok
    bo.refresh_from_db()
    assert (bo.points, bo.tier, bo.points_synced_at) == (100, "Gold", None)


def test_without_a_reason_or_order_the_body_has_an_empty_reason_and_no_order_id(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "105"})
    adjust_points(bo, activity="credit", points=5, key="k-1")
    (body,) = sent(httpserver)
    assert body["reason"] == "" and "orderId" not in body
    assert PointsTransaction.objects.values_list("reason", "order_id").get() == ("", "")


@pytest.mark.parametrize("answer", ["", "[]", "null"])
def test_an_applied_answer_that_is_no_object_is_applied_without_balance_or_tier(annex_cloud, httpserver, bo, answer):
    httpserver.expect_request(POINTS, method="POST").respond_with_data(answer, content_type="application/json")
    result = adjust_points(bo, activity="credit", points=5, key="k-1")
    assert result.transaction.status == PointsTransaction.Status.APPLIED
    assert result.transaction.detail == "credited 5 points at Annex Cloud." and result.transaction.response == {}
    bo.refresh_from_db()
    assert (bo.points, bo.tier) == (100, "")


def test_a_settled_key_answers_from_the_portal_even_when_annex_cloud_is_disabled_now(annex_cloud, httpserver, bo):
    answer_points(httpserver, {"updatedAvailablePoints": "105"})
    first = adjust_points(bo, activity="credit", points=5, key="k-1")
    Connection.objects.filter(pk=annex_cloud.pk).update(status=Connection.Status.DISABLED)
    again = adjust_points(bo, activity="credit", points=5, key="k-1")
    assert again.repeated and again.transaction.pk == first.transaction.pk and len(httpserver.log) == 1


def test_a_key_is_one_clients_another_client_may_use_it_too(annex_cloud, httpserver, bo, client_b):
    theirs = MemberFactory(client=client_b, email="cy@x.com")
    PointsTransaction.objects.create(
        client=client_b, member=theirs, key="k-1", activity="debit", points=9, action_id="100", status="applied"
    )
    answer_points(httpserver, {"updatedAvailablePoints": "105"})
    result = adjust_points(bo, activity="credit", points=5, key="k-1")
    assert not result.repeated and result.transaction.member == bo and len(httpserver.log) == 1


# --- Two requests with one key ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_key_another_request_settles_between_the_first_read_and_the_locked_one_is_answered_from_it(
    annex_cloud, httpserver, bo
):
    """The instant the docs called unreachable: this request found the key unsettled, and before its locked read
    another request (its own connection) sends and settles it. This one answers from that settlement, sends nothing,
    and says it was a repeat. The other request is let in by a wrapper around this connection's queries, which
    changes nothing the flow does."""
    answer_points(httpserver, {"updatedAvailablePoints": "120"})
    other: list = []

    def another_request() -> None:
        other.append(adjust_points(Member.objects.get(pk=bo.pk), activity="credit", points=20, key="k-race"))

    # Just after the first read found nothing settled; the locked one comes next.
    with db.execute_wrapper(at_query(statement("SELECT", "members_pointstransaction"), another_request, after=True)):
        result = adjust_points(bo, activity="credit", points=20, key="k-race")

    [first] = other
    assert first.repeated is False and first.transaction.status == PointsTransaction.Status.APPLIED
    assert result.repeated is True and result.transaction.pk == first.transaction.pk
    assert result.transaction.status == PointsTransaction.Status.APPLIED
    assert len(sent(httpserver)) == 1 and PointsTransaction.objects.count() == 1
