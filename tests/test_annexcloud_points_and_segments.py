"""Annex Cloud state that converges: a pushed segment is updated in place (never created twice), blank dates are
left out, AC1001 is a refused request, and points are credited or debited once per key — over real HTTP, to the
simulator or to a local server that checks the exact contract."""

from __future__ import annotations

import json
import uuid
from datetime import date

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from integrations.annexcloud.flows import adjust_points, annex_cloud_api, push_segment, refresh_member
from integrations.annexcloud.sandbox import SECRET
from integrations.http import NotFound, Rejected
from integrations.models import Connection, VendorCall
from integrations.sandbox.base import OUTAGES, Outage
from members.models import Member, PointsTransaction, Segment
from members.segments import add_members
from tests.factories import ClientFactory, MemberFactory, SegmentFactory, local_annex_cloud

pytestmark = pytest.mark.django_db(transaction=True)


# --- Fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def segment(client_a) -> Segment:
    return SegmentFactory(client=client_a, name="Only Members", external_id="123", external_name="Members")


@pytest.fixture
def ann(client_a) -> Member:
    return MemberFactory(client=client_a, email="ann@x.com", first_name="Ann", last_name="")  # "Ann" in messages


@pytest.fixture
def loyalty_member(annex_cloud_sandbox, ann):
    """Ann, a loyalty member at the simulator with 100 points."""
    state, _ = annex_cloud_sandbox
    state.members["ann@x.com"] = {"id": "ann@x.com", "email": "ann@x.com", "availablePoints": 100}
    return ann


@pytest.fixture
def contract_connection(httpserver: HTTPServer, client_a) -> Connection:
    """Client A's Annex Cloud connection pointed at a local server that checks the exact requests."""
    return local_annex_cloud(client_a, httpserver.url_for("/api/3.0"))


def calls(connection: Connection) -> list[tuple[str, str]]:
    rows = VendorCall.objects.filter(connection=connection).order_by("pk").values_list("method", "url")
    return [(method, url.removeprefix(connection.effective_base_url)) for method, url in rows]


def points_url(member: Member) -> str:
    return reverse("member-annexcloud-points", args=[member.pk])


# --- Segments ----------------------------------------------------------------------------------------------------


def test_a_repeated_push_updates_the_segment_in_place(annex_cloud_sandbox, segment, ann):
    state, connection = annex_cloud_sandbox
    add_members(segment, Member.objects.all())
    for name in ("Only Members", "Gold Members", "Gold Members"):
        segment.name = name
        segment.save()
        outcome = push_segment(segment)
        assert outcome.ok, outcome.message
    assert list(state.segments) == [101]
    assert state.segments[101]["name"] == "Gold Members"
    assert calls(connection) == [("POST", "/segment"), ("PATCH", "/segment/101"), ("PATCH", "/segment/101")]
    segment.refresh_from_db()
    assert segment.annex_cloud_segment_id == "101"
    assert segment.push_result == "Segment 'Gold Members' updated in place at Annex Cloud (segment 101)."


def test_blank_dates_are_left_out_of_the_body(httpserver, contract_connection, segment, ann):
    add_members(segment, Member.objects.all())
    body = {
        "name": "Only Members",
        "type": "Current Data",
        "member": "ann@x.com",
        "status": "ACTIVE",
        "externalId": "123",
        "externalName": "Members",
    }
    httpserver.expect_oneshot_request("/api/3.0/segment", method="POST", json=body).respond_with_json({"segmentId": 7})
    httpserver.expect_oneshot_request("/api/3.0/segment/7", method="PATCH", json=body).respond_with_json(
        {"segmentId": 7, "segmentFromDate": "", "segmentToDate": ""}
    )
    assert push_segment(segment).ok
    assert push_segment(segment).ok
    httpserver.check_assertions()
    for request, _ in httpserver.log:
        assert "Date" not in request.get_data(as_text=True)


def test_the_simulator_is_a_strict_vendor(annex_cloud_sandbox, client_a):
    api = annex_cloud_api(client_a)
    with pytest.raises(Rejected) as blank:
        api.create_segment({"name": "x", "type": "Current Data", "fromDate": ""})
    assert blank.value.code == "AC1004"
    with pytest.raises(NotFound) as unknown:
        api.update_segment("999", {"name": "x"})
    assert unknown.value.code == "AC1005"
    created = api.create_segment({"name": "x", "type": "Past Data", "toDate": "2020-02-14"})
    assert api.get_segment(str(created["segmentId"]))["segmentToDate"] == "2020-02-14T23:59:00+0000"


def test_a_segment_deleted_at_annex_cloud_is_created_again(annex_cloud_sandbox, segment):
    state, _ = annex_cloud_sandbox
    assert push_segment(segment).ok
    state.segments.clear()
    outcome = push_segment(segment)
    assert outcome.ok and "no longer had segment 101" in outcome.message
    assert list(state.segments) == [102]


def test_a_cleared_date_that_annex_cloud_keeps_is_reported(annex_cloud_sandbox, segment):
    segment.from_date = date(2020, 1, 17)
    segment.save()
    push_segment(segment)
    segment.from_date = None
    segment.save()
    outcome = push_segment(segment)
    assert outcome.ok and "keeps its from date 2020-01-17" in outcome.message


def test_push_refuses_a_disabled_connection_and_says_to_enter_the_credentials(annex_cloud_sandbox, segment, admin_http):
    state, connection = annex_cloud_sandbox
    connection.status = Connection.Status.DISABLED
    connection.save()
    response = admin_http.post(
        reverse("admin:members_segment_changelist"),
        {"action": "push_to_annex_cloud", "_selected_action": [segment.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "disabled" in text and "site credentials" in text
    assert state.segments == {} and not VendorCall.objects.exists()
    # Entering the site credentials again brings the connection back: verified at once, so active.
    admin_http.post(
        reverse("admin:integrations_client_annex_cloud", args=[segment.client_id]),
        {"site_id": "100001", "loyalty_token": "", "api_secret": SECRET},
    )
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE
    assert push_segment(segment).ok


def test_ac1001_under_http_404_is_refused_without_marking_the_connection_failing(
    httpserver, contract_connection, segment, settings
):
    httpserver.expect_request("/api/3.0/segment", method="POST").respond_with_json(
        {"errorCode": "AC1001", "errorMessage": "Oops! Something went wrong."}, status=404
    )
    for _ in range(settings.CONNECTION_FAILURE_THRESHOLD + 1):
        outcome = push_segment(segment)
        assert not outcome.ok and "Oops! Something went wrong." in outcome.message
    contract_connection.refresh_from_db()
    assert contract_connection.status == Connection.Status.ACTIVE
    assert contract_connection.consecutive_failures == 0
    assert len(httpserver.log) == settings.CONNECTION_FAILURE_THRESHOLD + 1  # never retried


# --- Points: the flow --------------------------------------------------------------------------------------------


def test_a_credit_updates_the_members_balance_and_tier_from_the_answer(annex_cloud_sandbox, loyalty_member):
    state, _ = annex_cloud_sandbox
    state.members["ann@x.com"]["availablePoints"] = 4990
    result = adjust_points(loyalty_member, activity="credit", points=20, key="order-1-bonus", reason="bonus")
    assert result.outcome.ok, result.outcome.message
    loyalty_member.refresh_from_db()
    assert (loyalty_member.points, loyalty_member.tier) == (5010, "Gold")
    assert loyalty_member.points_synced_at is not None
    txn = PointsTransaction.objects.get()
    assert txn.status == PointsTransaction.Status.APPLIED and txn.action_id == "100"
    assert txn.response["updatedAvailablePoints"] == "5010"
    assert state.points["order-1-bonus"]["credit"] == "20"


def test_a_debit_sends_the_documented_body(httpserver, contract_connection, client_a):
    member = MemberFactory(client=client_a, annex_cloud_id="AC-42", email="bo@x.com", points=100)
    body = {
        "id": "AC-42",
        "actionId": "100",
        "activity": "DEBIT",
        "debit": "30",
        "reason": "redeemed",
        "orderId": "OD001",
        "customId": "debit-1",
        "retry": "YES",
    }
    httpserver.expect_oneshot_request("/api/3.0/points", method="POST", json=body).respond_with_json(
        {**body, "updatedAvailablePoints": "70", "updatedUserTier": "Bronze"}
    )
    result = adjust_points(member, activity="debit", points=30, key="debit-1", reason="redeemed", order_id="OD001")
    httpserver.check_assertions()
    assert result.outcome.ok
    member.refresh_from_db()
    assert (member.points, member.tier) == (70, "Bronze")


def test_debits_at_the_simulator_stop_at_the_balance(annex_cloud_sandbox, loyalty_member):
    _, connection = annex_cloud_sandbox
    assert adjust_points(loyalty_member, activity="debit", points=30, key="d-1").outcome.ok
    loyalty_member.refresh_from_db()
    assert loyalty_member.points == 70
    refused = adjust_points(loyalty_member, activity="debit", points=500, key="d-2")
    assert refused.transaction.status == PointsTransaction.Status.FAILED
    assert "Insufficient points" in refused.transaction.detail
    loyalty_member.refresh_from_db()
    assert loyalty_member.points == 70
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE and connection.consecutive_failures == 0


def test_an_unanswered_adjustment_is_sent_again_with_the_same_key(httpserver, contract_connection, ann):
    answers = iter([Response("busy", status=503)] * 4)  # every attempt of the first call

    def vendor(request: Request) -> Response:
        return next(answers, None) or Response(
            json.dumps({"updatedAvailablePoints": "15", "updatedUserTier": "Bronze"}), content_type="application/json"
        )

    httpserver.expect_request("/api/3.0/points", method="POST").respond_with_handler(vendor)
    first = adjust_points(ann, activity="credit", points=15, key="k-1")
    assert first.transaction.status == PointsTransaction.Status.PENDING
    assert "Repeat with the same key" in first.transaction.detail
    second = adjust_points(ann, activity="credit", points=15, key="k-1")
    assert second.transaction.status == PointsTransaction.Status.APPLIED and not second.repeated
    assert {json.loads(r.get_data())["customId"] for r, _ in httpserver.log} == {"k-1"}
    assert PointsTransaction.objects.count() == 1


def test_refresh_takes_points_and_tier_from_the_simulators_profile(annex_cloud_sandbox, ann):
    state, _ = annex_cloud_sandbox
    state.members["ann@x.com"] = {"id": "ann@x.com", "email": "ann@x.com", "availablePoints": 1200}
    assert refresh_member(ann).ok
    ann.refresh_from_db()
    assert (ann.points, ann.tier) == (1200, "Silver")


# --- Points: the API ---------------------------------------------------------------------------------------------


def test_points_are_awarded_once_per_key(annex_cloud_sandbox, loyalty_member, api_client_for, client_a):
    state, connection = annex_cloud_sandbox
    api = api_client_for(client_a)
    body = {"activity": "credit", "points": 25, "reason": "birthday", "idempotency_key": "birthday-2026"}
    first = api.post(points_url(loyalty_member), body, format="json")
    again = api.post(points_url(loyalty_member), body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["status"] == "applied"
    assert (first.json()["points_after"], first.json()["tier"]) == (125, "Bronze")
    assert calls(connection) == [("POST", "/points")]
    assert list(state.points) == ["birthday-2026"]
    loyalty_member.refresh_from_db()
    assert loyalty_member.points == 125
    # The balance Annex Cloud answered is the API caller's change on the member's timeline (members/changes.py).
    assert list(loyalty_member.changes.values_list("by", flat=True)) == ["the API, token “test token”"]


def test_the_idempotency_key_header_is_accepted(annex_cloud_sandbox, loyalty_member, api_client_for, client_a):
    api = api_client_for(client_a)
    response = api.post(
        points_url(loyalty_member), {"activity": "debit", "points": 10}, format="json", HTTP_IDEMPOTENCY_KEY="h-1"
    )
    assert response.status_code == 201 and response.json()["idempotency_key"] == "h-1"
    assert response.json()["points_after"] == 90


def test_a_non_member_is_explained_and_not_asked_twice(annex_cloud_sandbox, ann, api_client_for, client_a):
    _, connection = annex_cloud_sandbox
    api = api_client_for(client_a)
    body = {"activity": "credit", "points": 5, "idempotency_key": "n-1"}
    first = api.post(points_url(ann), body, format="json")
    again = api.post(points_url(ann), body, format="json")
    # Annex Cloud's refusal is its final answer, not a gateway failure: a 4xx, never a 5xx (found by schemathesis).
    assert first.status_code == again.status_code == 422
    assert first.json() == again.json()
    assert first.json()["status"] == "failed"
    assert first.json()["detail"] == "ann@x.com is not a loyalty member at Annex Cloud."
    assert calls(connection) == [("POST", "/points")]
    connection.refresh_from_db()
    assert connection.status == Connection.Status.ACTIVE


def test_a_token_of_another_client_cannot_touch_the_member(annex_cloud_sandbox, loyalty_member, api_client_for):
    other = ClientFactory(name="Beta Boutique", slug="beta")
    response = api_client_for(other).post(
        points_url(loyalty_member), {"activity": "credit", "points": 5, "idempotency_key": "x"}, format="json"
    )
    assert response.status_code == 404
    assert not PointsTransaction.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points": 0}, "points"),
        ({"points": -5}, "points"),
        ({"points": 1_000_001}, "points"),
        ({"points": "many"}, "points"),
        ({"points": 2.5}, "points"),
        ({"activity": "refund"}, "activity"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
        ({"idempotency_key": None}, "idempotency_key"),
    ],
)
def test_bad_input_is_400_with_field_errors(
    annex_cloud_sandbox, loyalty_member, api_client_for, client_a, change, field
):
    body = {"activity": "credit", "points": 5, "idempotency_key": "ok-key", **change}
    body = {name: value for name, value in body.items() if value is not None}
    response = api_client_for(client_a).post(points_url(loyalty_member), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not VendorCall.objects.exists()


@pytest.mark.parametrize("other", [{"points": 50}, {"activity": "debit"}], ids=["other points", "debit"])
def test_a_key_reused_for_another_adjustment_is_422_and_changes_nothing(
    annex_cloud_sandbox, loyalty_member, api_client_for, client_a, other
):
    state, connection = annex_cloud_sandbox
    api = api_client_for(client_a)
    body = {"activity": "credit", "points": 5, "idempotency_key": "same"}
    assert api.post(points_url(loyalty_member), body, format="json").status_code == 201
    at_annex_cloud = json.dumps([state.points, state.members], sort_keys=True)
    in_the_portal = portal_records(connection, loyalty_member)
    response = api.post(points_url(loyalty_member), {**body, **other}, format="json")
    assert response.status_code == 422 and "already used" in response.json()["idempotency_key"][0]
    assert json.dumps([state.points, state.members], sort_keys=True) == at_annex_cloud  # the simulator's record
    assert portal_records(connection, loyalty_member) == in_the_portal


def portal_records(connection: Connection, member: Member) -> tuple[list, list, dict]:
    """The portal's rows a points request may touch: its transactions, its calls to Annex Cloud, the member."""
    return (
        list(PointsTransaction.objects.order_by("pk").values()),
        list(VendorCall.objects.filter(connection=connection).order_by("pk").values_list("pk", flat=True)),
        Member.objects.filter(pk=member.pk).values().get(),
    )


def test_without_annex_cloud_the_answer_is_409(ann, api_client_for, client_a):
    response = api_client_for(client_a).post(
        points_url(ann), {"activity": "credit", "points": 5, "idempotency_key": "x"}, format="json"
    )
    assert response.status_code == 409
    assert "Annex Cloud site credentials" in response.json()["message"]


# --- Points: the admin -------------------------------------------------------------------------------------------


def test_the_admin_action_applies_a_submission_once(annex_cloud_sandbox, loyalty_member, client_a, admin_http):
    state, _ = annex_cloud_sandbox
    bo = MemberFactory(client=client_a, email="bo@x.com", first_name="Bo", last_name="")  # "Bo" in messages
    state.members["bo@x.com"] = {"id": "bo@x.com", "email": "bo@x.com"}
    url = reverse("admin:members_member_changelist")
    selected = {"action": "adjust_points_at_annex_cloud", "_selected_action": [loyalty_member.pk, bo.pk]}
    page = admin_http.post(url, selected)
    assert page.status_code == 200 and "Credit or debit points of 2 members" in page.content.decode()
    submission = page.context["form"]["submission"].value()
    form = {**selected, "apply": "yes", "activity": "credit", "points": "40", "reason": "apology"}
    form |= {"action_id": "", "order_id": "", "submission": submission}
    first = admin_http.post(url, form, follow=True)
    double = admin_http.post(url, form, follow=True)
    texts = [str(m) for m in first.context["messages"]]
    assert sorted(texts) == [
        "Ann: credited 40 points at Annex Cloud (balance 140, tier Bronze).",
        "Bo: credited 40 points at Annex Cloud (balance 40, tier Bronze).",
    ]
    assert all("not sent again" in str(m) for m in double.context["messages"])
    assert len(state.points) == 2
    assert set(PointsTransaction.objects.values_list("key", flat=True)) == {
        f"admin-{uuid.UUID(submission)}-{loyalty_member.pk}",
        f"admin-{uuid.UUID(submission)}-{bo.pk}",
    }


def test_the_admin_action_takes_at_most_20_members(annex_cloud_sandbox, client_a, admin_http):
    members = [MemberFactory(client=client_a, email=f"m{n}@x.com") for n in range(21)]
    response = admin_http.post(
        reverse("admin:members_member_changelist"),
        {"action": "adjust_points_at_annex_cloud", "_selected_action": [m.pk for m in members]},
        follow=True,
    )
    assert "at most 20 members" in " ".join(str(m) for m in response.context["messages"])


def test_points_transactions_are_listed_per_client(alice_http, client_a, client_b):
    mine = MemberFactory(client=client_a, email="mine@x.com")
    theirs = MemberFactory(client=client_b, email="theirs@x.com")
    for member in (mine, theirs):
        PointsTransaction.objects.create(
            client=member.client, member=member, key=f"k-{member.pk}", activity="credit", points=1, action_id="100"
        )
    response = alice_http.get(reverse("admin:members_pointstransaction_changelist"))
    assert response.status_code == 200
    assert [txn.member for txn in response.context["cl"].result_list] == [mine]


def test_a_segment_create_whose_answer_is_lost_is_uncertain_and_not_resent(annex_cloud_sandbox, client_a):

    _, connection = annex_cloud_sandbox
    segment = SegmentFactory(client=client_a, name="Lost answer")
    OUTAGES["annex_cloud"] = Outage(status=504, times=1)  # a gateway gives up on the create
    try:
        outcome = push_segment(segment)
    finally:
        OUTAGES.clear()
    assert not outcome.ok and outcome.message.startswith("Uncertain:") and "before pushing again" in outcome.message
    assert VendorCall.objects.filter(connection=connection, url__contains="/segment").count() == 1  # not retried
