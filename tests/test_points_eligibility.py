"""Manual points to a member Annex Cloud reported opted out, inactive or unknown are sent only when someone confirms
them: `"force": true` in the API (409 otherwise), a confirmation in the admin action naming the reason. What Annex
Cloud received is read from the simulator (issue 20, finding 10)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.annexcloud.flows import refresh_member
from members.models import Member, PointsTransaction
from tests.factories import MemberFactory


@pytest.fixture
def simulator(annex_cloud_sandbox):
    state, _ = annex_cloud_sandbox
    return state


def read_from_annex_cloud(simulator, client, email: str, **profile: str) -> Member:
    """A member refreshed from the simulator's record of them (none when `profile` is empty: an unknown member)."""
    member = MemberFactory(client=client, email=email, first_name=email.split("@")[0].title(), last_name="")
    if profile:
        simulator.members[email] = {"id": email, "email": email, **profile}
    refresh_member(member)
    member.refresh_from_db()
    return member


def credit(api, member: Member, key: str, **extra: object):
    body = {"activity": "credit", "points": 25, "idempotency_key": key, **extra}
    return api.post(reverse("member-annexcloud-points", args=[member.pk]), body, format="json")


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ({"optInStatus": "NO"}, "opted out of the loyalty program"),
        ({"status": "INACTIVE"}, "inactive"),
        ({}, "unknown to Annex Cloud"),
    ],
)
def test_a_credit_to_an_ineligible_member_is_refused_without_force(
    simulator, client_a, api_client_for, profile, reason
):
    member = read_from_annex_cloud(simulator, client_a, "ann@x.com", **profile)
    response = credit(api_client_for(client_a), member, "k-1")
    assert response.status_code == 409
    assert reason in response.json()["message"] and '"force": true' in response.json()["message"]
    assert simulator.points == {}  # nothing reached Annex Cloud
    assert not PointsTransaction.objects.exists()


def test_force_credits_an_opted_out_member_once(simulator, client_a, api_client_for):
    member = read_from_annex_cloud(simulator, client_a, "ann@x.com", optInStatus="NO")
    api = api_client_for(client_a)
    forced = credit(api, member, "k-1", force=True)
    assert forced.status_code == 201, forced.json()
    assert list(simulator.points) == ["k-1"] and simulator.members["ann@x.com"]["availablePoints"] == 25
    # A repeat of the key sends nothing, so it needs no second confirmation.
    again = credit(api, member, "k-1")
    assert (again.status_code, again.json()) == (200, forced.json())
    assert list(simulator.points) == ["k-1"]


def test_eligible_members_and_debits_need_no_confirmation(simulator, client_a, api_client_for):
    eligible = read_from_annex_cloud(simulator, client_a, "bo@x.com", optInStatus="YES", status="ACTIVE")
    opted_out = read_from_annex_cloud(simulator, client_a, "cy@x.com", optInStatus="NO", availablePoints="50")
    api = api_client_for(client_a)
    assert credit(api, eligible, "k-bo").status_code == 201
    debit = {"activity": "debit", "points": 10, "idempotency_key": "k-cy"}
    assert api.post(reverse("member-annexcloud-points", args=[opted_out.pk]), debit, format="json").status_code == 201
    assert sorted(simulator.points) == ["k-bo", "k-cy"]


def test_the_admin_action_asks_to_confirm_and_names_the_reason(simulator, client_a, admin_http):
    opted_out = read_from_annex_cloud(simulator, client_a, "ann@x.com", optInStatus="NO")
    eligible = read_from_annex_cloud(simulator, client_a, "bo@x.com", optInStatus="YES")
    url = reverse("admin:members_member_changelist")
    selected = {"action": "adjust_points_at_annex_cloud", "_selected_action": [opted_out.pk, eligible.pk]}
    submission = admin_http.post(url, selected).context["form"]["submission"].value()
    form = {**selected, "apply": "yes", "activity": "credit", "points": "40", "reason": "", "action_id": ""}
    form |= {"order_id": "", "submission": submission}
    asked = admin_http.post(url, form)
    assert asked.status_code == 200
    assert "Ann is opted out of the loyalty program" in asked.content.decode()
    assert simulator.points == {}  # nothing sent to anyone until confirmed
    confirmed = admin_http.post(url, {**form, "credit_anyway": "on"}, follow=True)
    texts = sorted(str(m) for m in confirmed.context["messages"])
    assert [text.split(":")[0] for text in texts] == ["Ann", "Bo"]
    assert {answer["id"] for answer in simulator.points.values()} == {"ann@x.com", "bo@x.com"}
