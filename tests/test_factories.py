"""The factories make rows the portal itself would accept: valid E.164 phones, one client per row's paths, and
Vibes callbacks shaped as Vibes sends them."""

from __future__ import annotations

import json

import pytest

from integrations.models import Connection
from members.phones import is_e164
from tests.factories import (
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    OutboundMessageFactory,
    SegmentFactory,
    WebhookEventFactory,
)

pytestmark = pytest.mark.django_db


def test_members_get_distinct_valid_e164_phones():
    members = MemberFactory.create_batch(3)
    assert all(is_e164(m.phone) for m in members)
    assert len({m.phone for m in members}) == 3


def test_rows_reached_through_two_paths_agree_on_the_client(client_a):
    member = MemberFactory(client=client_a)
    assert LoyaltyEventFactory(member=member).client == client_a
    assert LoyaltyEventFactory(client=client_a).member.client == client_a
    template = MessageTemplateFactory(client=client_a)
    assert template.connection.client == client_a
    template.full_clean()
    again = MessageTemplateFactory(client=client_a, event_type="tier_changed")
    assert again.connection == template.connection  # the client's one Attentive connection
    assert MessageTemplateFactory(connection=template.connection, event_type="reward_issued").client == client_a
    message = OutboundMessageFactory(template=template)
    assert message.event.client == message.member.client == message.connection.client == client_a
    assert SegmentFactory(client=client_a).client == client_a


def test_webhook_events_carry_a_vibes_callback(client_a):
    event = WebhookEventFactory(connection__client=client_a, person_id="P9", external_id="AC-9")
    assert event.connection.vendor == "vibes" and event.connection.client == client_a
    assert event.connection.inbound_token
    body = json.loads(event.body)
    assert body["event_id"] == event.event_id and body["callback_type"] == event.event_type == "subscription_added"
    assert body["subscription"]["person"] == {
        "id": "P9",
        "external_id": "AC-9",
        "url": "/companies/:company_key/mobiledb/persons/P9",
    }
    assert WebhookEventFactory(connection__client=client_a).connection == event.connection
    assert Connection.objects.filter(client=client_a, vendor="vibes").count() == 1
