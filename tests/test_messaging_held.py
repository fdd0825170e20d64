"""Loyalty messages that cannot go out say why: a template on a connection that cannot send SMS is refused and its
events' messages are skipped with the reason; a message waiting on its connection is held with the reason and
since when; a balance the portal does not know is never stated."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from integrations.models import VendorCall
from members.messaging import dispatch_messages
from members.models import ChannelSubscription, LoyaltyEvent, Member, MessageTemplate, OutboundMessage
from tests.factories import ConnectionFactory

VIBES_REFUSAL = "The template's connection (Vibes) cannot send SMS: choose an SMS connection (Attentive)."


@pytest.fixture
def vibes_connection(client_a):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


@pytest.fixture
def attentive_connection(client_a):
    """An Attentive connection that is never called (the tests using it send nothing)."""
    return ConnectionFactory(client=client_a, vendor="attentive")


def member_with_event(client, n: int = 0, data: dict | None = None, **member_fields) -> Member:
    member = Member.objects.create(client=client, phone=f"+1770765{1750 + n}", first_name=f"M{n}", **member_fields)
    ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    LoyaltyEvent.objects.create(
        client=client,
        member=member,
        external_id=f"ev-{member.pk}",
        event_type="points_earned",
        data={"points": 50} if data is None else data,
    )
    return member


# --- Templates send through SMS connections only ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_template_form_offers_only_sms_connections(admin_http, attentive_connection, vibes_connection):
    page = admin_http.get(reverse("admin:members_messagetemplate_add"))
    choices = page.context["adminform"].form.fields["connection"].queryset
    assert list(choices) == [attentive_connection]


@pytest.mark.django_db
def test_the_template_form_refuses_a_vibes_connection(admin_http, client_a, attentive_connection, vibes_connection):
    response = admin_http.post(
        reverse("admin:members_messagetemplate_add"),
        {"client": client_a.pk, "event_type": "points_earned", "connection": vibes_connection.pk, "text": "Hi"},
    )
    assert response.status_code == 200
    assert "connection" in response.context["adminform"].form.errors
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_an_existing_template_on_vibes_shows_why_it_cannot_be_saved(admin_http, client_a, vibes_connection):
    # Saved before templates were checked (no clean() on this path).
    template = MessageTemplate.objects.create(
        client=client_a, event_type="points_earned", connection=vibes_connection, text="Hi {first_name}"
    )
    listing = admin_http.get(reverse("admin:members_messagetemplate_changelist"))
    assert VIBES_REFUSAL in html.unescape(listing.content.decode())
    response = admin_http.post(
        reverse("admin:members_messagetemplate_change", args=[template.pk]),
        {
            "client": client_a.pk,
            "event_type": "points_earned",
            "connection": vibes_connection.pk,
            "text": "Hi again",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["connection"] == [VIBES_REFUSAL]
    template.refresh_from_db()
    assert template.text == "Hi {first_name}"


@pytest.mark.django_db
def test_events_of_a_template_on_vibes_are_skipped_with_the_reason(client_a, vibes_connection):
    MessageTemplate.objects.create(
        client=client_a, event_type="points_earned", connection=vibes_connection, text="Hi {first_name}"
    )
    member_with_event(client_a)
    counts = dispatch_messages()
    assert counts["planned"] == 1 and counts["skipped"] == 1
    message = OutboundMessage.objects.get()
    assert (message.status, message.detail) == ("skipped", VIBES_REFUSAL)
    assert not VendorCall.objects.exists()


@pytest.mark.django_db
def test_messages_already_pending_on_vibes_are_skipped_with_the_reason(client_a, vibes_connection):
    template = MessageTemplate.objects.create(
        client=client_a, event_type="points_earned", connection=vibes_connection, text="Hi {first_name}"
    )
    member = member_with_event(client_a)
    # Planned by the old job: pending on a connection no run ever claims.
    event = LoyaltyEvent.objects.get()
    event.messages_planned_at = event.received_at
    event.save()
    OutboundMessage.objects.create(
        event=event, template=template, member=member, connection=vibes_connection, to=member.phone, body="Hi M0"
    )
    assert dispatch_messages()["skipped"] == 1
    assert OutboundMessage.objects.get().detail == VIBES_REFUSAL
