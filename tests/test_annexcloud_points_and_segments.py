"""Annex Cloud state that converges: a pushed segment is updated in place (never created twice), blank dates are
left out, AC1001 is a refused request, and points are credited or debited once per key — over real HTTP, to the
simulator or to a local server that checks the exact contract."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse
from pytest_httpserver import HTTPServer

from integrations.annexcloud.flows import annex_cloud_api, push_segment
from integrations.annexcloud.sandbox import SECRET
from integrations.http import NotFound, Rejected
from integrations.models import Connection, VendorCall
from members.models import Member, Segment
from members.segments import add_members
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)


# --- Fixtures ----------------------------------------------------------------------------------------------------


@pytest.fixture
def segment(client_a) -> Segment:
    return Segment.objects.create(client=client_a, name="Only Members", external_id="123", external_name="Members")


@pytest.fixture
def ann(client_a) -> Member:
    return Member.objects.create(client=client_a, email="ann@x.com", first_name="Ann")


@pytest.fixture
def loyalty_member(annex_cloud_sandbox, ann):
    """Ann, a loyalty member at the simulator with 100 points."""
    state, _ = annex_cloud_sandbox
    state.members["ann@x.com"] = {"id": "ann@x.com", "email": "ann@x.com", "availablePoints": 100}
    return ann


@pytest.fixture
def contract_connection(httpserver: HTTPServer, client_a) -> Connection:
    """Client A's Annex Cloud connection pointed at a local server that checks the exact requests."""
    return ConnectionFactory(
        client=client_a,
        vendor="annex_cloud",
        base_url=httpserver.url_for("/api/3.0"),
        secrets={"api_secret": "contract-secret-0123456789abcdef"},
    )


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
    # Entering the site credentials again brings the connection back (draft: calls may be made again).
    admin_http.post(
        reverse("admin:integrations_client_annex_cloud", args=[segment.client_id]),
        {"site_id": "100001", "loyalty_token": "", "api_secret": SECRET},
    )
    connection.refresh_from_db()
    assert connection.status == Connection.Status.DRAFT
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
