"""The site admin's journey in the admin (Django test client): activate Attentive for a client, with success and
each failure; the Annex Cloud site credentials; bulk member actions behind a confirmation page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.attentive.models import SignUpSource
from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import Connection, VendorCall
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)


def activate(http, client, **fields):
    url = reverse("admin:integrations_client_attentive", args=[client.pk])
    data = {
        "environment": "sandbox",
        "api_key": API_KEY,
        "legacy_token": LEGACY_TOKEN,
        "sign_up_sources": "132109, Loyalty\n777, Store",
    }
    return http.post(url, {**data, **fields}, follow=True)


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_activation_success(admin_http, client_a, attentive_sandbox):
    response = activate(admin_http, client_a)
    assert "Attentive is active for Alpha Apparel" in messages_of(response)
    connection = Connection.objects.get(client=client_a, vendor="attentive")
    assert connection.status == "active"
    assert SignUpSource.objects.get(client=client_a, is_default=True).source_id == "132109"


def test_activation_with_an_invalid_key(admin_http, client_a, attentive_sandbox):
    response = activate(admin_http, client_a, api_key="not-the-key")
    text = messages_of(response)
    assert "Attentive was not activated" in text and "rejected the API key" in text
    assert Connection.objects.get(client=client_a, vendor="attentive").status == "draft"
    assert "not-the-key" not in response.content.decode()


def test_activation_with_a_key_without_subscriptions_scope(admin_http, client_a, attentive_sandbox):
    response = activate(admin_http, client_a, api_key=f"{API_KEY}-noscope")
    assert "write permission for Subscriptions" in messages_of(response)


def test_activation_when_attentive_is_unreachable(admin_http, client_a, attentive_sandbox, settings):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9/sandbox"
    Connection.objects.create(client=client_a, vendor="attentive", environment="sandbox")
    response = activate(admin_http, client_a)
    assert "try again" in messages_of(response).lower()


def test_missing_sign_up_source_is_a_form_error_before_any_call(admin_http, client_a, attentive_sandbox):
    response = activate(admin_http, client_a, sign_up_sources="")
    assert "Add at least one sign-up source" in response.content.decode()
    response = activate(admin_http, client_a, sign_up_sources="abc, Bad")
    assert "is not a sign-up flow id" in response.content.decode()
    assert VendorCall.objects.count() == 0
    assert not Connection.objects.filter(vendor="attentive").exists()


def test_client_users_cannot_activate(alice_http, client_a, attentive_sandbox):
    response = alice_http.get(reverse("admin:integrations_client_attentive", args=[client_a.pk]))
    assert response.status_code == 403


def test_activate_button_is_on_the_client_page(admin_http, client_a):
    html = admin_http.get(reverse("admin:integrations_client_change", args=[client_a.pk])).content.decode()
    assert reverse("admin:integrations_client_attentive", args=[client_a.pk]) in html


def test_annex_cloud_site_credentials_derive_the_partner_token(admin_http, client_a):
    url = reverse("admin:integrations_client_annex_cloud", args=[client_a.pk])
    response = admin_http.post(url, {"site_id": "424242", "loyalty_token": "loyal-tok-1", "api_secret": "sec-2"})
    connection = Connection.objects.get(client=client_a, vendor="annex_cloud")
    assert response["Location"] == reverse("admin:integrations_connection_change", args=[connection.pk])
    client_a.refresh_from_db()
    assert client_a.site_id == "424242"
    assert connection.secrets == {"loyalty_token": "loyal-tok-1", "api_secret": "sec-2"}
    bad = admin_http.post(url, {"site_id": "abc", "loyalty_token": "x"})
    assert "The site id is a number" in bad.content.decode()


@pytest.fixture
def subscribable(sandbox_attentive_connection, client_a):
    return [MemberFactory(client=client_a, phone=f"+1770765{1760 + n}", email=f"m{n}@example.com") for n in range(3)]


def test_bulk_subscribe_asks_for_confirmation_first(admin_http, subscribable, attentive_sandbox):
    url = reverse("admin:members_member_changelist")
    data = {"action": "subscribe_at_attentive", "_selected_action": [m.pk for m in subscribable]}
    confirm = admin_http.post(url, data)
    assert b"Subscribe 3 members at Attentive?" in confirm.content
    assert attentive_sandbox.subscribed == set()
    done = admin_http.post(url, {**data, "confirm": "yes"}, follow=True)
    assert messages_of(done).count("subscribed with sign-up source 132109") == 3
    assert {phone for phone, channel in attentive_sandbox.subscribed if channel == "TEXT"} == {
        m.phone for m in subscribable
    }


def test_single_member_action_runs_at_once_and_reports_errors(admin_http, subscribable, client_a):
    no_phone = MemberFactory(client=client_a, email="nophone@example.com", phone="")
    url = reverse("admin:members_member_changelist")
    response = admin_http.post(
        url, {"action": "subscribe_at_attentive", "_selected_action": [no_phone.pk]}, follow=True
    )
    assert "has no mobile number" in messages_of(response)


def test_member_phone_is_stored_in_e164(admin_http, client_a):
    response = admin_http.post(
        reverse("admin:members_member_add"),
        {
            "client": client_a.pk,
            "phone": "(770) 765-1750",
            "status": "active",
            "points": 0,
            "subscriptions-TOTAL_FORMS": 0,
            "subscriptions-INITIAL_FORMS": 0,
            "vibes_subscriptions-TOTAL_FORMS": 0,
            "vibes_subscriptions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    assert Member.objects.get().phone == "+17707651750"
