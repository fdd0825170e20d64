"""Attentive's webhooks (issue 20, finding 12): a STOP at Attentive reaches the portal and Vibes. Events are sent over
real HTTP by the Attentive simulator (signed with its key) or posted raw to the live server; what Vibes was told is
read from the Vibes simulator's own record."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import pytest
import requests
from django.urls import reverse

from integrations.attentive import sandbox as attentive_simulator
from integrations.models import Connection, VendorCall, WebhookEvent
from integrations.vibes.models import VibesListSubscription
from members.models import ChannelSubscription, Member, MemberVendorState
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
PHONE, EMAIL = "+17707651750", "test@gmail.com"
PERSON, LIST = "ABC123", "1234"


@pytest.fixture
def attentive(sandbox_attentive_connection: Connection) -> Connection:
    sandbox_attentive_connection.secrets = {
        **sandbox_attentive_connection.secrets,
        "webhook_signing_key": attentive_simulator.WEBHOOK_SIGNING_KEY,
    }
    sandbox_attentive_connection.save()
    return sandbox_attentive_connection


@pytest.fixture
def member(attentive, client_a, vibes_sandbox, attentive_sandbox, eager_celery) -> Member:
    """Opted in and subscribed to SMS and e-mail at Attentive, and on a Vibes list (in the portal and at Vibes)."""
    vibes_state, _ = vibes_sandbox
    member = MemberFactory(client=client_a, phone=PHONE, email=EMAIL, annex_cloud_id="ex1234", opted_in=True)
    for channel in ("TEXT", "EMAIL"):
        ChannelSubscription.objects.create(
            member=member, vendor="attentive", channel=channel, state="subscribed", last_result="NEWLY_CREATED"
        )
        attentive_sandbox.subscribed.add((PHONE, channel))
    VibesListSubscription.objects.create(
        client=client_a,
        member=member,
        person_id=PERSON,
        list_id=LIST,
        state="subscribed",
        last_event_date=datetime(2024, 1, 1, tzinfo=UTC),
    )
    vibes_state.list_subscriptions.add((PERSON, LIST))
    return member


def now_ms(offset_seconds: float = 0) -> int:
    return int((time.time() + offset_seconds) * 1000)


def send_as_attentive(live_server, connection: Connection, event_type: str, **extra) -> dict:
    """The Attentive simulator sends a signed event to the connection's webhook URL; returns what it sent and the
    portal's answer."""
    order = {"token": connection.inbound_token, "type": event_type, "phone": PHONE, "email": EMAIL, **extra}
    answer = requests.post(f"{live_server.url}/sandbox/attentive/_control", json={"webhook": order}, timeout=60)
    return answer.json()["webhook"]


def post_raw(live_server, connection: Connection, body: bytes, signature: str | None, content_type: str = "") -> dict:
    headers = {"Content-Type": content_type or "application/json"}
    if signature is not None:
        headers["x-attentive-hmac-sha256"] = signature
    url = live_server.url + reverse("attentive-callback", args=[connection.inbound_token])
    return requests.post(url, data=body, headers=headers, timeout=60)


def signed(body: bytes) -> str:
    return hmac.new(attentive_simulator.WEBHOOK_SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()


def text_row(member: Member) -> ChannelSubscription:
    return member.subscriptions.get(vendor="attentive", channel="TEXT")


def email_row(member: Member) -> ChannelSubscription:
    return member.subscriptions.get(vendor="attentive", channel="EMAIL")


def stored_state(member: Member) -> tuple:
    member.refresh_from_db()
    rows = sorted(member.subscriptions.values_list("channel", "state", "last_result"))
    lists = sorted(VibesListSubscription.objects.values_list("list_id", "state"))
    return member.opted_in, rows, lists


# --- A STOP at Attentive --------------------------------------------------------------------------------------------


def test_a_signed_stop_opts_out_at_the_portal_and_at_vibes(live_server, attentive, member, vibes_sandbox):
    vibes_state, _ = vibes_sandbox
    sent = send_as_attentive(live_server, attentive, "sms.unsubscribed")
    assert (sent["status"], json.loads(sent["answer"])["detail"]) == (200, "accepted")
    event = WebhookEvent.objects.get()
    assert (event.event_type, event.status) == ("sms.unsubscribed", "processed"), event.error
    member.refresh_from_db()
    assert not member.opted_in
    assert text_row(member).state == "unsubscribed"
    assert email_row(member).state == "subscribed"  # a STOP is about texts
    assert vibes_state.list_unsubscribes == [(PERSON, LIST)]
    assert VibesListSubscription.objects.get().state == "unsubscribed"
    assert MemberVendorState.objects.get(member=member, vendor="vibes").in_step


def test_a_stop_leaves_vibes_alone_when_the_client_does_not_honour_opt_outs_everywhere(
    live_server, attentive, member, vibes_sandbox, client_a
):
    vibes_state, _ = vibes_sandbox
    client_a.honour_opt_outs_everywhere = False
    client_a.save()
    send_as_attentive(live_server, attentive, "sms.unsubscribed")
    member.refresh_from_db()
    assert not member.opted_in and text_row(member).state == "unsubscribed"
    assert vibes_state.list_unsubscribes == []
    assert VibesListSubscription.objects.get().state == "subscribed"


def test_an_sms_subscribe_at_attentive_is_an_sms_opt_in_and_is_not_sent_back(
    live_server, attentive, member, attentive_sandbox
):
    Member.objects.filter(pk=member.pk).update(opted_in=False)
    ChannelSubscription.objects.filter(channel="TEXT").delete()
    attentive_sandbox.subscribed.discard((PHONE, "TEXT"))
    send_as_attentive(live_server, attentive, "sms.subscribed")
    member.refresh_from_db()
    assert member.opted_in and text_row(member).state == "subscribed"
    # The reconciler found Attentive in step: no subscribe was sent (Attentive would text "already subscribed").
    assert not VendorCall.objects.filter(method="POST", url__endswith="/v1/subscriptions").exists()
    assert attentive_sandbox.already_subscribed_texts == 0


def test_an_email_unsubscribe_changes_only_the_email_channel(live_server, attentive, member, vibes_sandbox):
    vibes_state, _ = vibes_sandbox
    send_as_attentive(live_server, attentive, "email.unsubscribed")
    member.refresh_from_db()
    assert email_row(member).state == "unsubscribed"
    assert member.opted_in and text_row(member).state == "subscribed"
    assert vibes_state.list_unsubscribes == []


# --- Deliveries that are not Attentive's, or not right ---------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "status"),
    [(None, 401), ("0" * 64, 401), (signed(b"another body"), 401)],
)
def test_a_bad_signature_is_refused_and_nothing_stored_changes(
    live_server, attentive, member, vibes_sandbox, signature, status
):
    vibes_state, _ = vibes_sandbox
    before = stored_state(member)
    body = json.dumps(attentive_simulator.webhook_event("sms.unsubscribed", phone=PHONE, email=EMAIL)).encode()
    response = post_raw(live_server, attentive, body, signature)
    assert response.status_code == status and "signature" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    assert stored_state(member) == before and vibes_state.list_unsubscribes == []


def test_the_simulator_signing_with_another_key_is_refused(live_server, attentive, member):
    sent = send_as_attentive(live_server, attentive, "sms.unsubscribed", signing_key="not-the-webhook-signing-key")
    assert sent["status"] == 401
    member.refresh_from_db()
    assert member.opted_in and not WebhookEvent.objects.exists()


def test_without_a_signing_key_every_delivery_is_refused(live_server, attentive, member):
    attentive.secrets = {k: v for k, v in attentive.secrets.items() if k != "webhook_signing_key"}
    attentive.save()
    body = json.dumps(attentive_simulator.webhook_event("sms.unsubscribed", phone=PHONE)).encode()
    response = post_raw(live_server, attentive, body, signed(body))
    assert response.status_code == 403 and "signing key" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (
            {"timestamp": "yesterday", "subscriber": {"phone": "7707651750"}, "subscription": {"type": "PROMO"}},
            ["timestamp:", "subscriber.phone:", "subscription.type:"],
        ),
        ({"type": None, "subscriber": None}, ["type: is required", "subscriber: is required"]),
        ({"subscriber": {"email": "not-an-address"}}, ["subscriber.email:"]),
        ({"timestamp": 10**17}, ["timestamp: is outside"]),
    ],
)
def test_a_malformed_event_gets_a_400_naming_each_field_and_changes_nothing(
    live_server, attentive, member, vibes_sandbox, change, fields
):
    vibes_state, _ = vibes_sandbox
    before = stored_state(member)
    event = {**attentive_simulator.webhook_event("sms.unsubscribed", phone=PHONE, email=EMAIL), **change}
    body = json.dumps(event).encode()
    response = post_raw(live_server, attentive, body, signed(body))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert all(field in detail for field in fields), detail
    # Kept for inspection, never applied.
    assert list(WebhookEvent.objects.values_list("status", flat=True)) == ["rejected"]
    assert stored_state(member) == before and vibes_state.list_unsubscribes == []


def test_a_body_that_is_not_json_gets_a_400(live_server, attentive, member):
    body = b'{"type": "sms.unsubscribed", "timestamp": '
    response = post_raw(live_server, attentive, body, signed(body))
    assert response.status_code == 400 and "not valid JSON" in response.json()["detail"]


# --- Duplicates and order ----------------------------------------------------------------------------------------


def test_a_duplicate_is_answered_2xx_and_applied_once(live_server, attentive, member, vibes_sandbox):
    vibes_state, _ = vibes_sandbox
    at = now_ms()
    first = send_as_attentive(live_server, attentive, "sms.unsubscribed", timestamp=at)
    again = send_as_attentive(live_server, attentive, "sms.unsubscribed", timestamp=at)
    assert json.loads(first["answer"])["detail"] == "accepted"
    assert again["status"] == 200 and "duplicate" in json.loads(again["answer"])["detail"]
    assert list(WebhookEvent.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "duplicate"]
    assert vibes_state.list_unsubscribes == [(PERSON, LIST)]


def test_an_older_event_after_a_newer_one_changes_nothing(live_server, attentive, member, vibes_sandbox):
    vibes_state, _ = vibes_sandbox
    Member.objects.filter(pk=member.pk).update(opted_in=False)
    ChannelSubscription.objects.filter(channel="TEXT").delete()
    send_as_attentive(live_server, attentive, "sms.subscribed", timestamp=now_ms())
    before = stored_state(member)
    late = send_as_attentive(live_server, attentive, "sms.unsubscribed", timestamp=now_ms(-60))  # a minute older
    assert late["status"] == 200
    assert WebhookEvent.objects.get(event_type="sms.unsubscribed").status == "ignored"
    assert stored_state(member) == before
    member.refresh_from_db()
    assert member.opted_in and text_row(member).state == "subscribed"
    assert vibes_state.list_unsubscribes == []


def test_a_newer_stop_after_an_older_subscribe_applies(live_server, attentive, member):
    send_as_attentive(live_server, attentive, "sms.unsubscribed", timestamp=now_ms(1))
    send_as_attentive(live_server, attentive, "sms.subscribed", timestamp=now_ms(-60))
    member.refresh_from_db()
    assert not member.opted_in and text_row(member).state == "unsubscribed"
    assert list(WebhookEvent.objects.order_by("pk").values_list("status", flat=True)) == ["processed", "ignored"]


# --- Where a site admin finds the webhook URL ------------------------------------------------------------------


def test_the_connection_page_shows_the_webhook_url(admin_http, attentive):
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[attentive.pk])).content.decode()
    assert f"/api/webhooks/attentive/{attentive.inbound_token}/" in page
    assert "Webhook signing key: <code>••••-key</code>" in page  # stored, shown masked like every secret
