"""The member and loyalty-event API: per-client tokens, field-level 400s, idempotent events, tenancy, and the
Attentive actions on members."""

from __future__ import annotations

import pytest

from integrations.models import VendorCall
from members.models import LoyaltyEvent, Member
from tests.factories import MemberFactory

EVENT = {
    "event_id": "ac-123",
    "event_type": "points_earned",
    "member": {"email": "ann@example.com"},
    "occurred_at": "2026-11-20T10:00:00Z",
    "data": {"points": 50},
}


@pytest.fixture
def ann(client_a):
    return MemberFactory(client=client_a, email="ann@example.com", phone="+17707651750", first_name="Ann")


def test_an_event_is_stored_once_per_event_id(api_client_for, client_a, ann):
    api = api_client_for(client_a)
    first = api.post("/api/loyalty-events/", EVENT, format="json")
    assert first.status_code == 201, first.json()
    assert first.json()["member_id"] == ann.pk
    again = api.post("/api/loyalty-events/", {**EVENT, "data": {"points": 999}}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert LoyaltyEvent.objects.get().data == {"points": 50}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_type": "bogus"}, "event_type"),
        ({"event_id": ""}, "event_id"),
        ({"member": {"email": "nobody@example.com"}}, "member"),
        ({"member": {}}, "member"),
        ({"member": {"phone": "12"}}, "member"),
        ({"data": [1, 2]}, "data"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_bad_events_get_field_errors_and_change_nothing(api_client_for, client_a, ann, change, field):
    response = api_client_for(client_a).post("/api/loyalty-events/", {**EVENT, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not LoyaltyEvent.objects.exists()


def test_a_token_cannot_post_events_for_another_clients_member(api_client_for, client_a, client_b, ann):
    response = api_client_for(client_b).post("/api/loyalty-events/", EVENT, format="json")
    assert response.status_code == 400
    client_field = api_client_for(client_b).post("/api/loyalty-events/", {**EVENT, "client": "alpha"}, format="json")
    assert client_field.status_code == 400 and "client" in client_field.json()
    assert not LoyaltyEvent.objects.exists()  # nothing stored, for either client
    assert list(Member.objects.all()) == [ann]  # and no member made up for client B


def test_members_are_created_with_e164_phones_and_scoped(api_client_for, client_a, client_b, ann):
    api = api_client_for(client_a)
    created = api.post("/api/members/", {"email": "bo@example.com", "phone": "404 555 0199"}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["phone"] == "+14045550199"
    duplicate = api.post("/api/members/", {"phone": "+17707651750"}, format="json")
    assert duplicate.status_code == 400 and "phone" in duplicate.json()
    invalid = api.post("/api/members/", {"phone": "not a phone"}, format="json")
    assert invalid.status_code == 400 and "phone" in invalid.json()
    other = api_client_for(client_b)
    assert other.get(f"/api/members/{ann.pk}/").status_code == 404
    assert other.post(f"/api/members/{ann.pk}/subscribe/").status_code == 404


def test_subscribe_action_without_attentive_is_a_clear_409(api_client_for, client_a, ann):
    response = api_client_for(client_a).post(f"/api/members/{ann.pk}/subscribe/")
    assert response.status_code == 409
    assert "Attentive is not active" in response.json()["message"]
    assert VendorCall.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_subscribe_action_through_the_sandbox(api_client_for, client_a, sandbox_attentive_connection, ann):
    response = api_client_for(client_a).post(f"/api/members/{ann.pk}/subscribe/")
    assert response.status_code == 200 and response.json()["ok"]
    assert {
        s["channel"]: s["state"]
        for s in api_client_for(client_a).get(f"/api/members/{ann.pk}/").json()["subscriptions"]
    } == {"TEXT": "subscribed", "EMAIL": "subscribed"}


@pytest.mark.django_db(transaction=True)
def test_opting_in_through_the_api_subscribes_once(
    api_client_for, client_a, sandbox_attentive_connection, ann, eager_celery
):
    api = api_client_for(client_a)
    assert api.patch(f"/api/members/{ann.pk}/", {"opted_in": True}, format="json").status_code == 200
    assert api.patch(f"/api/members/{ann.pk}/", {"opted_in": True}, format="json").status_code == 200
    assert ann.subscriptions.get(channel="TEXT").state == "subscribed"
    assert VendorCall.objects.filter(method="POST", url__endswith="/v1/subscriptions").count() == 1


@pytest.mark.django_db(transaction=True)
def test_opting_out_through_the_api_unsubscribes(
    api_client_for, client_a, sandbox_attentive_connection, ann, eager_celery
):
    api = api_client_for(client_a)
    api.patch(f"/api/members/{ann.pk}/", {"opted_in": True}, format="json")
    api.patch(f"/api/members/{ann.pk}/", {"opted_in": False}, format="json")
    assert ann.subscriptions.get(channel="TEXT").state == "unsubscribed"
