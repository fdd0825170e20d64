"""Attentive flows over real HTTP against the sandbox simulator: activation, subscribe once, eligibility,
unsubscribe, and the clear errors that come before any call."""

from __future__ import annotations

import pytest

from integrations import connections
from integrations.attentive import flows as attentive
from integrations.attentive.flows import SignUpSourceInput
from integrations.attentive.models import SignUpSource
from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import Connection, VendorCall
from members.models import ChannelSubscription
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
SOURCES = [SignUpSourceInput("132109", "Loyalty", True), SignUpSourceInput("555", "Store")]


@pytest.fixture
def sandbox_client(attentive_sandbox, client_a):
    Connection.objects.create(client=client_a, vendor="attentive", environment=Connection.Environment.SANDBOX)
    return client_a


@pytest.fixture
def member(client_a):
    return MemberFactory(client=client_a, phone="+17707651750", email="test@gmail.com", first_name="Ann")


def test_activation_verifies_the_key_and_activates(sandbox_client):
    outcome = attentive.activate(sandbox_client, api_key=API_KEY, legacy_token=LEGACY_TOKEN, sign_up_sources=SOURCES)
    assert outcome.ok, outcome.message
    connection = Connection.objects.get(client=sandbox_client, vendor="attentive")
    assert connection.status == Connection.Status.ACTIVE and connection.last_check_ok
    assert "Sandbox Outfitters" in connection.last_check_result
    assert connection.secrets == {"api_key": API_KEY, "legacy_token": LEGACY_TOKEN}
    assert list(SignUpSource.objects.filter(client=sandbox_client).values_list("source_id", "is_default")) == [
        ("132109", True),
        ("555", False),
    ]
    # Verification touched no subscriber.
    assert all(call.method == "GET" for call in VendorCall.objects.all())


def test_activation_with_an_invalid_key_stays_draft_and_says_what_to_do(sandbox_client):
    outcome = attentive.activate(sandbox_client, api_key="wrong-key", sign_up_sources=SOURCES)
    connection = Connection.objects.get(client=sandbox_client, vendor="attentive")
    assert not outcome.ok and connection.status == Connection.Status.DRAFT
    assert "rejected the API key" in outcome.message and "Integrations tab" in outcome.message
    assert connection.last_check_ok is False


def test_activation_with_a_key_lacking_the_subscriptions_scope(sandbox_client):
    outcome = attentive.activate(sandbox_client, api_key=f"{API_KEY}-noscope", sign_up_sources=SOURCES)
    assert not outcome.ok
    assert "Subscriptions" in outcome.message and "write permission" in outcome.message
    assert Connection.objects.get(client=sandbox_client, vendor="attentive").status == Connection.Status.DRAFT


def test_activation_when_attentive_is_unreachable_says_try_again(client_a, settings):
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:9/sandbox"
    Connection.objects.create(client=client_a, vendor="attentive", environment=Connection.Environment.SANDBOX)
    outcome = attentive.activate(client_a, api_key=API_KEY, sign_up_sources=SOURCES)
    assert not outcome.ok and "try again" in outcome.message.lower()


def test_reverify_failing_an_active_connection_marks_it_failing(sandbox_attentive_connection):
    sandbox_attentive_connection.secrets = {"api_key": "revoked"}
    sandbox_attentive_connection.save()
    assert not connections.verify(sandbox_attentive_connection).ok
    sandbox_attentive_connection.refresh_from_db()
    assert sandbox_attentive_connection.status == Connection.Status.FAILING


def test_subscribe_once_then_never_again(sandbox_attentive_connection, member, attentive_sandbox):
    first = attentive.subscribe(member)
    assert first.ok, first.message
    states = dict(member.subscriptions.values_list("channel", "state"))
    assert states == {"TEXT": "subscribed", "EMAIL": "subscribed"}
    member.refresh_from_db()
    assert member.opted_in
    again = attentive.subscribe(member)
    assert again.ok and "already subscribed" in again.message
    assert attentive_sandbox.already_subscribed_texts == 0
    assert VendorCall.objects.filter(method="POST", url__endswith="/v1/subscriptions").count() == 1


def test_a_subscriber_unknown_locally_is_found_by_eligibility_not_resubscribed(
    sandbox_attentive_connection, member, attentive_sandbox
):
    attentive_sandbox.subscribed.add((member.phone, "TEXT"))  # subscribed at Attentive, not known here
    outcome = attentive.subscribe(member)
    assert not outcome.ok and "not eligible" in outcome.message
    assert attentive_sandbox.already_subscribed_texts == 0
    assert member.subscriptions.get(channel="TEXT").state == ChannelSubscription.State.NOT_ELIGIBLE


def test_unsubscribe_and_eligibility(sandbox_attentive_connection, member):
    attentive.subscribe(member)
    assert attentive.unsubscribe(member).ok
    assert member.subscriptions.get(channel="TEXT").state == "unsubscribed"
    member.refresh_from_db()
    assert not member.opted_in
    outcome = attentive.check_eligibility(member)
    assert "TEXT eligible" in outcome.message
    assert member.subscriptions.get(channel="TEXT").state == "eligible"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_phone", "has no mobile number"),
        ("bad_phone", "not a valid number"),
        ("no_source", "no default sign-up source"),
        ("draft", "not active"),
    ],
)
def test_clear_errors_before_any_call(sandbox_attentive_connection, member, change, message):
    if change == "no_phone":
        member.phone = ""
    elif change == "bad_phone":
        member.phone = "+1555"
    elif change == "no_source":
        SignUpSource.objects.all().delete()
    else:
        Connection.objects.update(status=Connection.Status.DRAFT)
    with pytest.raises(attentive.AttentiveNotReady, match=message):
        attentive.subscribe(member)
    assert VendorCall.objects.count() == 0
