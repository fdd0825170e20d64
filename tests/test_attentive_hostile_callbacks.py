"""Attentive webhooks with hostile strings (issue 21, finding 11): a lone surrogate or a NUL anywhere in a signed
event is answered 400 with the reason and the delivery is stored (rejected), never a 500."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from integrations.attentive import sandbox as attentive_simulator
from integrations.attentive.webhooks import SIGNATURE_HEADER, signature
from integrations.models import WebhookEvent
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db
SIGNING_KEY = "signing-key-for-tests"


@pytest.fixture
def attentive(client_a):
    return ConnectionFactory(client=client_a, vendor="attentive", secrets={"webhook_signing_key": SIGNING_KEY})


def event(**changes) -> dict:
    return {**attentive_simulator.webhook_event("sms.unsubscribed", phone="+17707651750"), **changes}


def post_signed(http, connection, body: bytes):
    url = reverse("attentive-callback", args=[connection.inbound_token])
    headers = {SIGNATURE_HEADER: signature(SIGNING_KEY, body)}
    return http.post(url, body, content_type="application/json", headers=headers)


HOSTILE = {
    "a lone surrogate in type": (json.dumps(event(type="sms.\ud800")), "type"),
    "a lone surrogate in the subscriber's id": (
        json.dumps(event(subscriber={"external_id": "x\udfff", "phone": "+17707651750"})),
        "subscriber.external_id",
    ),
    "a lone surrogate in the creative's name": (json.dumps(event(creative={"name": "\ud800"})), "creative.name"),
    "a lone surrogate in a field the portal does not read": (json.dumps(event(company="\ud800")), "company"),
    "a NUL in a field the portal does not read": (json.dumps(event(company={"x": "a\u0000"})), "company.x"),
}


@pytest.mark.parametrize(("body", "field"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_string_is_a_400_naming_the_field_and_is_stored(client, attentive, body, field):
    response = post_signed(client, attentive, body.encode())
    assert response.status_code == 400 and field in response.json()["detail"]
    stored = WebhookEvent.objects.get()
    assert stored.status == WebhookEvent.Status.REJECTED and field in stored.error
    stored.body.encode("utf-8")


def test_a_lone_surrogate_sent_as_raw_bytes_is_a_400_and_stored_replaced(client, attentive):
    body = json.dumps(event(type="sms.\ud800"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    response = post_signed(client, attentive, body)
    assert response.status_code == 400 and "surrogate" in response.json()["detail"]
    assert "\ufffd" in WebhookEvent.objects.get().body


def test_a_valid_event_is_still_accepted(client, attentive):
    assert post_signed(client, attentive, json.dumps(event()).encode()).status_code == 200
