"""Loyalty messages that cannot go out say why: a template on a connection that cannot send SMS is refused and its
events' messages are skipped with the reason; a message waiting on its connection is held with the reason and
since when; a balance the portal does not know is never stated."""

from __future__ import annotations

import html
import json
from datetime import UTC

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.connections import verify
from integrations.models import Client, Connection, VendorCall
from members.messaging import dispatch_messages
from members.models import ChannelSubscription, LoyaltyEvent, Member, MessageTemplate, OutboundMessage
from tests.factories import (
    ConnectionFactory,
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    OutboundMessageFactory,
)

VIBES_REFUSAL = "The template's connection (Vibes) cannot send SMS: choose an SMS connection (Attentive)."


@pytest.fixture
def vibes_connection(client_a):
    return ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})


@pytest.fixture
def attentive_connection(client_a):
    """An Attentive connection that is never called: a draft, so the job sends nothing through it."""
    return ConnectionFactory(client=client_a, vendor="attentive", status=Connection.Status.DRAFT)


def member_with_event(client, n: int = 0, data: dict | None = None, **member_fields) -> Member:
    member = MemberFactory(client=client, phone=f"+1770765{1750 + n}", first_name=f"M{n}", **member_fields)
    ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    LoyaltyEventFactory(
        client=client,
        member=member,
        external_id=f"ev-{member.pk}",
        event_type="points_earned",
        data={"points": 50} if data is None else data,
    )
    return member


# --- Templates send through SMS connections only ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_template_form_offers_only_sms_connections(admin_http, client_a, attentive_connection, vibes_connection):
    page = admin_http.get(reverse("admin:members_messagetemplate_add"))
    choices = page.context["adminform"].form.fields["connection"].queryset
    assert list(choices) == [attentive_connection]
    # A Vibes connection posted anyway is refused.
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
    template = MessageTemplateFactory(
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
    MessageTemplateFactory(
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
    template = MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=vibes_connection, text="Hi {first_name}"
    )
    member = member_with_event(client_a)
    # Planned by the old job: pending on a connection no run ever claims.
    event = LoyaltyEvent.objects.get()
    event.messages_planned_at = event.received_at
    event.save()
    OutboundMessageFactory(
        event=event, template=template, member=member, connection=vibes_connection, to=member.phone, body="Hi M0"
    )
    assert dispatch_messages()["skipped"] == 1
    assert OutboundMessage.objects.get().detail == VIBES_REFUSAL


# --- Held messages say why and since when ---------------------------------------------------------------------------


def points_earned_sms(client: Client, connection: Connection) -> MessageTemplate:
    """The client's SMS for points earned, sent through the connection (Attentive in the held-message tests)."""
    return MessageTemplateFactory(
        client=client,
        event_type="points_earned",
        connection=connection,
        text="Hi {first_name}, you earned {points} points!",
    )


@pytest.fixture
def sms_template(sandbox_attentive_connection, client_a):
    return points_earned_sms(client_a, sandbox_attentive_connection)


def pending_messages() -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(status="pending").order_by("pk"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("disabled", "the Attentive connection is disabled — return it to draft and verify it to send the messages."),
        ("draft", "the Attentive connection is a draft (not verified yet) — verify it to send the messages."),
    ],
)
def test_messages_on_an_unusable_connection_are_held_with_the_reason(
    sms_template, sandbox_attentive_connection, client_a, attentive_sandbox, status, why
):
    Connection.objects.filter(pk=sandbox_attentive_connection.pk).update(status=status)
    first = member_with_event(client_a, 0)
    counts = dispatch_messages()
    assert counts["sent"] == 0 and counts["held"] == 1
    [held] = pending_messages()
    assert held.held_since is not None
    assert held.detail == f"Held since {held.held_since.astimezone(UTC):%Y-%m-%d %H:%M} UTC: {why}"
    # A later run keeps when it was first held; a new message is held from its own time.
    member_with_event(client_a, 1)
    dispatch_messages()
    messages = pending_messages()
    assert messages[0].held_since == held.held_since and messages[0].detail == held.detail
    assert messages[1].held_since > held.held_since and messages[1].detail.endswith(f" UTC: {why}")
    assert attentive_sandbox.messages == []
    # Once the connection is verified again, they go out and are no longer held.
    Connection.objects.filter(pk=sandbox_attentive_connection.pk).update(status="active")
    assert dispatch_messages()["sent"] == 2
    assert list(OutboundMessage.objects.values_list("status", "held_since", "detail")) == [("sent", None, "")] * 2
    assert first.phone in {m["to"] for m in attentive_sandbox.messages}


@pytest.mark.django_db(transaction=True)
def test_a_draft_whose_check_failed_says_what_the_check_found(
    sms_template, sandbox_attentive_connection, client_a, attentive_sandbox
):
    connection = sandbox_attentive_connection
    connection.status, connection.secrets = "draft", {**connection.secrets, "api_key": "wrong"}
    connection.save()
    assert not verify(connection).ok
    member_with_event(client_a)
    dispatch_messages()
    [held] = pending_messages()
    assert " UTC: the Attentive connection is a draft — Attentive rejected the API key" in held.detail


@pytest.mark.django_db(transaction=True)
def test_a_run_stopped_by_a_refused_messages_token_holds_the_rest_with_the_instruction(
    sms_template, client_a, attentive_sandbox
):
    member_with_event(client_a, 0)
    assert dispatch_messages()["sent"] == 1  # the token worked before
    for n in (1, 2, 3):
        member_with_event(client_a, n)
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "401", "messages", 99
    counts = dispatch_messages()
    assert counts["stopped"] == 1 and counts["held"] == 3
    held = pending_messages()
    assert len(held) == 3 and all(m.held_since for m in held)
    for message in held:
        assert message.detail.startswith("Held since ")
        assert " UTC: the Attentive connection is failing — " in message.detail
        assert "ask Attentive to activate the legacy messages token (legacyapi@attentivemobile.com)" in message.detail
    # Still refused on the next run: still held since the first time.
    dispatch_messages()
    assert [(m.held_since, m.detail) for m in pending_messages()] == [(m.held_since, m.detail) for m in held]
    # The token is fixed: the held messages go out and are no longer held.
    attentive_sandbox.fail_times = 0
    assert dispatch_messages()["sent"] == 3
    assert not OutboundMessage.objects.exclude(held_since=None).exists()
    assert len(attentive_sandbox.messages) == 4


@pytest.mark.django_db(transaction=True)
def test_a_throttled_run_holds_the_messages_and_says_so(sms_template, client_a, attentive_sandbox):
    member_with_event(client_a)
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "429", "messages", 99
    assert dispatch_messages()["held"] == 1
    [held] = pending_messages()
    assert " UTC: Attentive is throttling the messages — Attentive: Too Many Requests (HTTP 429)" in held.detail


@pytest.mark.django_db
def test_the_admin_lists_held_messages_with_since_when_and_why(admin_http, client_a, attentive_connection):
    template = MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=attentive_connection, text="Hi {first_name}"
    )
    held_member, sent_member = member_with_event(client_a, 0), member_with_event(client_a, 1)
    for member, fields in [
        (held_member, {"held_since": timezone.now(), "detail": "Held since …: the Attentive connection is disabled"}),
        (sent_member, {"status": "sent"}),
    ]:
        OutboundMessageFactory(
            event=member.loyalty_events.get(), template=template, member=member, connection=attentive_connection,
            to=member.phone, body=f"Hi {member.first_name}", **fields,
        )  # fmt: skip
    page = admin_http.get(reverse("admin:members_outboundmessage_changelist"), {"held": "yes"})
    assert [m.member for m in page.context["cl"].result_list] == [held_member]
    content = page.content.decode()
    assert "the Attentive connection is disabled" in content
    assert "column-short_state" in content and "Held since" in content  # one column says held, since when and why


# --- A balance the portal does not know is never stated -------------------------------------------------------------

UNKNOWN_BALANCE = (
    "The template states the balance, which the portal does not know for this member: send the balance in the "
    "event's data or refresh the member from Annex Cloud."
)


@pytest.fixture
def balance_template(sandbox_attentive_connection, client_a):
    return MessageTemplateFactory(
        client=client_a,
        event_type="points_earned",
        connection=sandbox_attentive_connection,
        text="Hi {first_name}, +{points} points. Balance: {points_balance}.",
    )


@pytest.mark.django_db(transaction=True)
def test_an_unknown_balance_is_not_stated(balance_template, client_a, attentive_sandbox):
    member_with_event(client_a)  # never refreshed from Annex Cloud: points is the default 0, not a balance
    counts = dispatch_messages()
    assert counts["sent"] == 0 and counts["skipped"] == 1
    message = OutboundMessage.objects.get()
    assert (message.status, message.detail) == ("skipped", UNKNOWN_BALANCE)
    assert message.body == "Hi M0, +50 points. Balance: {points_balance}."
    assert attentive_sandbox.messages == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("data", "synced", "balance"),
    [
        ({"points": 50, "balance": 1250}, False, "1250"),
        ({"points": 50, "points_balance": 1250}, False, "1250"),
        ({"points": 50, "balance": 1250}, True, "1250"),  # the event's own balance wins over the member's
        ({"points": 50}, True, "700"),  # else the balance last read from Annex Cloud
        ({"points": 50, "balance": 0}, False, "0"),  # a balance of 0 that the sender states is known
    ],
)
def test_the_balance_comes_from_the_event_else_from_annex_cloud(
    balance_template, client_a, attentive_sandbox, data, synced, balance
):
    member = member_with_event(client_a, data=data, points=700, points_synced_at=timezone.now() if synced else None)
    assert dispatch_messages()["sent"] == 1
    assert attentive_sandbox.messages == [{"to": member.phone, "body": f"Hi M0, +50 points. Balance: {balance}."}]


@pytest.mark.django_db
def test_an_unknown_tier_is_not_stated(client_a, attentive_connection):
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=attentive_connection, text="You are {tier} now!"
    )
    member_with_event(client_a, 0)
    member_with_event(client_a, 1, data={"tier": "Gold"})
    member_with_event(client_a, 2, tier="Silver")
    dispatch_messages()  # a draft connection: what may go out is held
    messages = OutboundMessage.objects.order_by("member__first_name")
    assert [(m.status, m.body) for m in messages] == [
        ("skipped", "You are {tier} now!"),
        ("pending", "You are Gold now!"),
        ("pending", "You are Silver now!"),
    ]
    assert messages[0].detail.startswith("The template states the tier, which the portal does not know")


EVENT = {
    "event_id": "ac-123",
    "event_type": "points_earned",
    "member": {"email": "ann@example.com"},
    "data": {"points": 50, "balance": 1250},
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"points": "fifty"}, "points"),
        ({"points": 50, "balance": "1,250"}, "balance"),
        ({"points": 50, "balance": 12.5}, "balance"),
        ({"points": 50, "points_balance": True}, "points_balance"),
    ],
)
def test_event_points_and_balance_must_be_whole_numbers(api_client_for, client_a, data, field):
    MemberFactory(client=client_a, email="ann@example.com", phone="+17707651750")
    response = api_client_for(client_a).post("/api/loyalty-events/", {**EVENT, "data": data}, format="json")
    assert response.status_code == 400
    assert response.json()["data"][field] == [f"Must be a whole number, e.g. 50 (got {json.dumps(data[field])})."]
    assert not LoyaltyEvent.objects.exists()
    # With whole numbers the event is taken as sent.
    assert api_client_for(client_a).post("/api/loyalty-events/", EVENT, format="json").status_code == 201
    assert LoyaltyEvent.objects.get().data == {"points": 50, "balance": 1250}


@pytest.mark.django_db
def test_the_admin_refuses_an_event_whose_balance_is_not_a_number(admin_http, client_a):
    member = MemberFactory(client=client_a, email="ann@example.com", phone="+17707651750")
    response = admin_http.post(
        reverse("admin:members_loyaltyevent_add"),
        {
            "client": client_a.pk,
            "member": member.pk,
            "external_id": "by-hand-1",
            "event_type": "points_earned",
            "occurred_at_0": "2026-11-20",
            "occurred_at_1": "10:00:00",
            "data": '{"points": 50, "balance": "lots"}',
        },
    )
    assert response.status_code == 200
    assert "balance: Must be a whole number" in response.context["adminform"].form.errors["data"][0]
    assert not LoyaltyEvent.objects.exists()
