"""Unsubscribe by channel at Attentive (issue 20, finding 7): SMS, e-mail or both, from the client API, the admin
action and a STOP at Vibes. What Attentive holds is read from the simulator's own record (over real HTTP)."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from integrations import inbound
from integrations.admin.base import SYNC_ACTION_LIMIT
from integrations.attentive import flows as attentive
from integrations.queue import enqueue
from members import sync
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
PHONE, EMAIL = "+17707651750", "test@gmail.com"
TEXT_AT_ATTENTIVE, EMAIL_AT_ATTENTIVE = (PHONE, "TEXT"), (PHONE, "EMAIL")


@pytest.fixture
def member(sandbox_attentive_connection, client_a, attentive_sandbox):
    """A member subscribed at Attentive to both channels (Attentive subscribes the e-mail it is given)."""
    member = MemberFactory(client=client_a, phone=PHONE, email=EMAIL, annex_cloud_id="ex1234")
    assert attentive.subscribe(member).ok
    assert attentive_sandbox.subscribed == {TEXT_AT_ATTENTIVE, EMAIL_AT_ATTENTIVE}
    return member


def opted_in(member: Member) -> bool:
    member.refresh_from_db()
    return member.opted_in


# --- The client API ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "left_at_attentive", "still_opted_in"),
    [
        (None, {EMAIL_AT_ATTENTIVE}, False),  # no body: SMS only, as the seed's "unsubscribe from the SMS services"
        ({"channels": ["sms"]}, {EMAIL_AT_ATTENTIVE}, False),
        ({"channels": ["email"]}, {TEXT_AT_ATTENTIVE}, True),
        ({"channels": ["sms", "email"]}, set(), False),
    ],
)
def test_the_api_unsubscribes_the_channels_asked_for(
    member, attentive_sandbox, api_client_for, client_a, body, left_at_attentive, still_opted_in
):
    response = api_client_for(client_a).post(f"/api/members/{member.pk}/unsubscribe/", body, format="json")
    assert response.status_code == 200 and response.json()["ok"], response.content
    assert attentive_sandbox.subscribed == left_at_attentive
    assert opted_in(member) is still_opted_in


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"channels": ["fax"]}, "not a valid choice"),
        ({"channels": []}, "may not be empty"),
        ({"channels": "sms"}, "Expected a list"),
    ],
)
def test_bad_channels_are_refused_with_the_field_and_change_nothing(
    member, attentive_sandbox, api_client_for, client_a, body, message
):
    response = api_client_for(client_a).post(f"/api/members/{member.pk}/unsubscribe/", body, format="json")
    assert response.status_code == 400
    assert message in json.dumps(response.json()["channels"])
    assert attentive_sandbox.subscribed == {TEXT_AT_ATTENTIVE, EMAIL_AT_ATTENTIVE}
    assert opted_in(member)


@pytest.mark.parametrize(("channels", "named"), [(["email"], "EMAIL"), (["sms"], "TEXT")])
def test_the_unsubscribe_body_is_the_seeds_naming_only_the_chosen_channel(
    member, sandbox_attentive_connection, api_client_for, client_a, httpserver, channels, named
):
    sandbox_attentive_connection.base_url = httpserver.url_for("")
    sandbox_attentive_connection.save()
    httpserver.expect_oneshot_request(
        "/v1/subscriptions/unsubscribe",
        method="POST",
        json={"user": {"phone": PHONE, "email": EMAIL}, "subscriptions": [{"type": "MARKETING", "channel": named}]},
    ).respond_with_json({"subscriptionResponses": []})
    response = api_client_for(client_a).post(
        f"/api/members/{member.pk}/unsubscribe/", {"channels": channels}, format="json"
    )
    assert response.status_code == 200, response.content
    httpserver.check_assertions()


# --- The admin action ---------------------------------------------------------------------------------------------


def test_the_admin_action_asks_which_channels_then_leaves_email(admin_http, member, attentive_sandbox):
    url = reverse("admin:members_member_changelist")
    data = {"action": "unsubscribe_at_attentive", "_selected_action": [member.pk]}
    confirm = admin_http.post(url, data)
    page = confirm.content.decode()
    assert "Unsubscribe 1 member at Attentive?" in page and "SMS and e-mail" in page
    assert attentive_sandbox.subscribed == {TEXT_AT_ATTENTIVE, EMAIL_AT_ATTENTIVE}  # nothing before the choice
    admin_http.post(url, {**data, "confirm": "yes", "channels": "sms"}, follow=True)
    assert attentive_sandbox.subscribed == {EMAIL_AT_ATTENTIVE}
    assert not opted_in(member)


def test_the_admin_action_can_unsubscribe_email_only(admin_http, member, attentive_sandbox):
    url = reverse("admin:members_member_changelist")
    data = {"action": "unsubscribe_at_attentive", "_selected_action": [member.pk], "confirm": "yes"}
    admin_http.post(url, {**data, "channels": "email"}, follow=True)
    assert attentive_sandbox.subscribed == {TEXT_AT_ATTENTIVE}
    assert opted_in(member)


def many_subscribed_members(client, attentive_sandbox, count: int) -> list[Member]:
    """More members than the action runs at once, each subscribed at Attentive to SMS and e-mail."""
    members = [
        MemberFactory(client=client, phone=f"+1770555{n:04d}", email=f"m{n}@example.com", opted_in=True)
        for n in range(count)
    ]
    attentive_sandbox.subscribed.update((m.phone, channel) for m in members for channel in ("TEXT", "EMAIL"))
    return members


@pytest.mark.parametrize(
    ("choice", "left"), [("email", {"TEXT"}), ("sms", {"EMAIL"}), ("both", set())], ids=["email", "sms", "both"]
)
def test_a_queued_unsubscribe_leaves_only_the_channels_chosen(
    admin_http, client_a, sandbox_attentive_connection, attentive_sandbox, eager_celery, choice, left
):
    members = many_subscribed_members(client_a, attentive_sandbox, SYNC_ACTION_LIMIT + 1)
    url = reverse("admin:members_member_changelist")
    data = {"action": "unsubscribe_at_attentive", "_selected_action": [m.pk for m in members], "confirm": "yes"}
    page = admin_http.post(url, {**data, "channels": choice}, follow=True).content.decode()
    assert f"Queued: unsubscribe {SYNC_ACTION_LIMIT + 1} members" in page
    assert attentive_sandbox.subscribed == {(m.phone, channel) for m in members for channel in left}
    assert all(opted_in(m) is ("TEXT" in left) for m in members)


def test_an_unsubscribe_queued_before_it_carried_channels_is_sms_only(member, attentive_sandbox, eager_celery):
    enqueue("integrations.attentive_unsubscribe", member.pk)  # as the task's messages were before channels
    assert attentive_sandbox.subscribed == {EMAIL_AT_ATTENTIVE}
    assert not opted_in(member)


# --- STOP anywhere ------------------------------------------------------------------------------------------------


def test_a_stop_at_vibes_unsubscribes_sms_only_at_attentive(client, member, vibes_sandbox, attentive_sandbox):
    _, vibes = vibes_sandbox
    removed = {
        "event_id": "STOP-1",
        "callback_type": "subscription_removed",
        "event_date": "2024-03-15T15:42:23Z",
        "subscription": {
            "person": {"id": "ABC123", "external_id": "ex1234"},
            "subscription_list": {"id": "1234"},
            "opt_out_reason": "user_opt_out",
        },
    }
    url = reverse("vibes-callback", args=[vibes.inbound_token])
    assert client.post(url, json.dumps(removed), content_type="application/json").status_code == 200
    inbound.process_received()
    assert not opted_in(member)
    sync.reconcile(member.pk, "attentive")
    assert attentive_sandbox.subscribed == {EMAIL_AT_ATTENTIVE}


def test_an_sms_resubscribe_does_not_bring_back_the_email_the_member_left(member, attentive_sandbox):
    assert attentive.unsubscribe(member, {attentive.SMS, attentive.EMAIL}).ok
    member.refresh_from_db()
    assert attentive.subscribe(member).ok
    assert attentive_sandbox.subscribed == {TEXT_AT_ATTENTIVE}
