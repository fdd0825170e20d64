"""A member's timeline (members/timeline.py): everything that happened to the member across vendors, newest first,
each entry linked to its record — on an admin page and at GET /api/members/{id}/timeline/, scoped to the caller's
clients. The events are made by the real flows over HTTP (the Attentive simulator refusing the messages token, a
signed Attentive STOP), never written as timeline rows."""

from __future__ import annotations

import html
import time

import pytest
import requests
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations.attentive import sandbox as attentive_simulator
from integrations.bazaarvoice.models import Review
from integrations.http import EXPECTED_NOT_FOUND, EXPECTED_REFUSAL
from integrations.models import VendorCall, WebhookEvent
from integrations.sessionm.models import SessionMOffer, SessionMTransaction
from members import sync, timeline
from members.messaging import dispatch_messages
from members.models import (
    ChannelSubscription,
    LoyaltyEvent,
    Member,
    MemberVendorState,
    OutboundMessage,
    PointsTransaction,
)
from portal import zones
from tests.conftest import login
from tests.factories import ClientUserFactory, ConnectionFactory, LoyaltyEventFactory, MemberFactory
from tests.test_messaging_held import points_earned_sms
from tests.test_vibes_callbacks import REMOVED, deliver

PHONE = "+17707651750"
TOKEN_REFUSED = "ask Attentive to activate the legacy messages token"


@pytest.fixture
def sms_template(sandbox_attentive_connection, client_a):
    return points_earned_sms(client_a, sandbox_attentive_connection)


def earn(member: Member, n: int) -> LoyaltyEvent:
    return LoyaltyEventFactory(
        client=member.client, member=member, external_id=f"ev-{member.pk}-{n}", event_type="points_earned",
        data={"points": 50},
    )  # fmt: skip


@pytest.fixture
def held_member(sms_template, client_a, attentive_sandbox) -> Member:
    """Sent one SMS; the next is held because Attentive refused the messages token (a real 401 over HTTP)."""
    member = MemberFactory(client=client_a, phone=PHONE, email="dana@example.com", first_name="Dana", opted_in=True)
    ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    earn(member, 1)
    assert dispatch_messages()["sent"] == 1
    earn(member, 2)
    attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "401", "messages", 99
    assert dispatch_messages()["held"] == 1
    return member


def refused_call() -> VendorCall:
    """The call the simulator refused, as the portal logged it."""
    return VendorCall.objects.get(status_code=401)


# --- The flow -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_held_message_shows_its_reason_and_the_vendor_call_behind_it(held_member, attentive_sandbox):
    assert len(attentive_sandbox.messages) == 1  # what the simulator took: the first SMS only
    entries = timeline.timeline(held_member)
    assert [entry.at for entry in entries] == sorted((entry.at for entry in entries), reverse=True)
    held, sent = [entry for entry in entries if entry.kind == "message"]
    assert (held.status, sent.status) == ("held", "sent")
    assert TOKEN_REFUSED in held.detail
    held_message = OutboundMessage.objects.get(status="pending")
    assert held.url == reverse("admin:members_outboundmessage_change", args=[held_message.pk])
    [call] = held.related
    assert call.url == reverse("admin:integrations_vendorcall_change", args=[refused_call().pk])
    assert sent.related == ()  # a sent message needs no evidence
    kinds = {entry.kind for entry in entries}
    assert {"joined", "event", "subscription", "message"} <= kinds


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("expected_kind", [EXPECTED_NOT_FOUND, EXPECTED_REFUSAL])
def test_an_expected_answer_on_the_connection_is_never_the_call_behind_a_held_message(held_member, expected_kind):
    """A look-up's 404 or a refused verify probe that the caller expected (`ExpectedAnswer`) carries a 4xx and an
    error type, but nothing failed: the evidence stays the refused messages token, even when the expected answer was
    recorded on the same connection after it and before the message was held."""
    refused = refused_call()
    held_message = OutboundMessage.objects.get(status="pending")
    VendorCall.objects.create(
        connection=refused.connection,
        method="GET",
        url=f"{refused.url.rsplit('/', 1)[0]}/subscriptions?phone=%2B17707650000",
        status_code=404 if expected_kind == EXPECTED_NOT_FOUND else 403,
        error_type=expected_kind,
        error="the vendor has no such record (expected)",
        created_at=refused.created_at + (held_message.held_since - refused.created_at) / 2,
    )
    [held] = [entry for entry in timeline.timeline(held_member) if entry.status == "held"]
    [call] = held.related
    assert call.url == reverse("admin:integrations_vendorcall_change", args=[refused.pk])


@pytest.mark.django_db(transaction=True)
def test_the_callback_that_set_a_channel_is_on_the_timeline(
    live_server, sandbox_attentive_connection, client_a, eager_celery
):
    connection = sandbox_attentive_connection
    connection.secrets = {**connection.secrets, "webhook_signing_key": attentive_simulator.WEBHOOK_SIGNING_KEY}
    connection.save()
    client_a.honour_opt_outs_everywhere = False
    client_a.save()
    member = MemberFactory(client=client_a, phone=PHONE, email="dana@example.com", opted_in=True)
    other = MemberFactory(client=client_a, phone="+17707651751", email="eve@example.com", opted_in=True)
    now = int(time.time() * 1000)
    for someone, stamp in ((member, now), (other, now - 1000)):
        order = {"token": connection.inbound_token, "type": "sms.unsubscribed", "phone": someone.phone}
        answer = requests.post(
            f"{live_server.url}/sandbox/attentive/_control", json={"webhook": {**order, "timestamp": stamp}}, timeout=60
        )
        assert answer.json()["webhook"]["status"] == 200
    mine = WebhookEvent.objects.get(event_id__startswith=f"{now}:")
    assert member.phone in mine.body
    [callback] = [entry for entry in timeline.timeline(member) if entry.kind == "callback"]
    assert callback.url == reverse("admin:integrations_webhookevent_change", args=[mine.pk])
    assert (callback.status, callback.vendor) == ("processed", "Attentive")


@pytest.mark.django_db
def test_each_source_is_read_with_a_bounded_query_whatever_the_history(client_a):
    """Twice the cap of events and points: each source still gives its newest `per_source`, in as many queries as a
    member with a short history."""
    member, short = MemberFactory(client=client_a), MemberFactory(client=client_a)
    for n in range(12):
        earn(member, n)
        PointsTransaction.objects.create(
            client=client_a,
            member=member,
            key=f"k{n}",
            activity="credit",
            points=n + 1,
            action_id="a",
            status="applied",
        )
    earn(short, 0)
    timeline.timeline(short)  # caches what every later call finds cached (the member's content type)
    with CaptureQueriesContext(db_connection) as long_history:
        entries = timeline.timeline(member, per_source=6)
    with CaptureQueriesContext(db_connection) as short_history:
        timeline.timeline(short, per_source=6)
    assert len(long_history) == len(short_history)
    assert sum(entry.kind == "event" for entry in entries) == 6
    points = [entry.title for entry in entries if entry.kind == "points"]
    assert points == [f"+{n} points" for n in range(12, 6, -1)]  # the newest six


# --- The admin page ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_timeline_page_shows_the_reason_the_call_and_times_in_the_viewers_zone(
    held_member, client_a, client_b, site_admin, user_a
):
    client_a.time_zone = "America/New_York"
    client_a.save()
    url = reverse("admin:members_member_timeline", args=[held_member.pk])
    # Linked from the member's page and the members' list.
    alice = login(user_a)
    assert url in alice.get(reverse("admin:members_member_change", args=[held_member.pk])).content.decode()
    assert url in alice.get(reverse("admin:members_member_changelist")).content.decode()
    page = html.unescape(alice.get(url).content.decode())
    assert TOKEN_REFUSED in page
    assert reverse("admin:integrations_vendorcall_change", args=[refused_call().pk]) in page
    # Alice sees one client: its zone, named; the held message's time read there.
    message = OutboundMessage.objects.get(status="pending")
    assert 'Times in <strong id="timeline-zone">America/New_York</strong>' in page
    assert zones.local_time(message.created_at, client_a.zone) in page
    assert zones.local_time(message.created_at, client_a.zone).endswith(("EST", "EDT"))
    # A site admin sees every client: UTC, said so.
    admin_page = login(site_admin).get(url).content.decode()
    assert 'id="timeline-zone">UTC<' in admin_page
    # Another client's user cannot open it.
    bob = login(ClientUserFactory(username="bob", client=client_b))
    assert bob.get(url).status_code == 404


@pytest.mark.django_db
def test_the_members_page_shows_how_the_member_was_found(admin_http, client_a):
    member = MemberFactory(client=client_a, found_through="Annex Cloud, as a Bazaarvoice reviewer")
    page = admin_http.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "Annex Cloud, as a Bazaarvoice reviewer" in page


# --- The API -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_timeline_is_scoped_to_the_tokens_client(held_member, client_b, api_client_for):
    url = f"/api/members/{held_member.pk}/timeline/"
    answer = api_client_for(held_member.client).get(url)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["member"] == held_member.pk
    held = next(entry for entry in body["entries"] if entry["status"] == "held")
    assert TOKEN_REFUSED in held["detail"]
    assert held["related"][0]["url"] == reverse("admin:integrations_vendorcall_change", args=[refused_call().pk])
    assert api_client_for(client_b).get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_vibes_list_and_the_callback_that_set_it_are_on_the_timeline(client, client_a, eager_celery):
    """Vibes' part of the timeline comes from its package (integrations/vibes/timeline.py): the list's state, and
    the callback found by the event id the list keeps."""
    vibes = ConnectionFactory(client=client_a, vendor="vibes", secrets={}, settings={"company_key": "acme"})
    member = MemberFactory(client=client_a, annex_cloud_id="ex1234", phone="+12995551234")
    assert deliver(client, vibes, REMOVED).status_code == 200
    entries = timeline.timeline(member)
    [listed] = [entry for entry in entries if entry.kind == "subscription" and entry.vendor == "Vibes"]
    assert (listed.title, listed.status, listed.detail) == ("List 1234", "unsubscribed", "Opted out (user_opt_out)")
    [callback] = [entry for entry in entries if entry.kind == "callback"]
    event = WebhookEvent.objects.get(event_id=REMOVED["event_id"])
    assert callback.url == reverse("admin:integrations_webhookevent_change", args=[event.pk])
    assert (callback.vendor, callback.title) == ("Vibes", "Callback subscription_removed")


@pytest.mark.django_db
def test_reviews_offers_and_transactions_come_from_their_vendors_packages(client_a):
    """Bazaarvoice's and SessionM's records of the member, through their timeline modules (registry order)."""
    member = MemberFactory(client=client_a)
    Review.objects.create(
        client=client_a, member=member, review_id="r-1", product_id="kettle", rating=5, moderated_at=timezone.now()
    )
    SessionMOffer.objects.create(client=client_a, member=member, offer_id="o-1", name="Free coffee")
    SessionMTransaction.objects.create(client=client_a, member=member, request_id="t-1", status="accepted")
    mine = {(entry.kind, entry.vendor, entry.title) for entry in timeline.timeline(member)}
    assert {
        ("review", "Bazaarvoice", "Review 5★ of kettle"),
        ("offer", "SessionM", "Offer Free coffee"),
        ("transaction", "SessionM", "Transaction t-1"),
    } <= mine


@pytest.mark.django_db(transaction=True)
def test_a_vendor_state_links_the_calls_of_its_last_attempt_and_no_other_members(client_a, vibes_sandbox):
    """The call log names no member: the sync notes which calls it made for whom, and the timeline links those."""
    ada, bo = MemberFactory(client=client_a, phone="+14155550150"), MemberFactory(client=client_a)
    for member in (ada, bo):
        sync.bump(member, "vibes")
    calls_made = CallsMade()
    assert sync.reconcile(ada.pk, "vibes").status == MemberVendorState.Status.IN_SYNC
    first_attempt = calls_made.since_last_asked()
    assert sync.reconcile(bo.pk, "vibes").status == MemberVendorState.Status.IN_SYNC
    calls_made.since_last_asked()
    assert vendor_call_links(ada) == [timeline.admin_url(call) for call in first_attempt] != []
    # A refused change (Vibes' 409: an MDN cannot change) is an attempt too: its calls replace the earlier ones.
    ada.phone = "+14155550151"
    ada.save()
    sync.record_change(ada, {"phone"})
    assert sync.reconcile(ada.pk, "vibes").status == MemberVendorState.Status.REJECTED
    refused = calls_made.since_last_asked()
    assert vendor_call_links(ada) == [timeline.admin_url(call) for call in refused] != []
    assert any(call.status_code == 409 for call in refused)


class CallsMade:
    """The vendor calls recorded since the last question, oldest first."""

    def __init__(self) -> None:
        self.last_pk = VendorCall.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def since_last_asked(self) -> list[VendorCall]:
        calls = list(VendorCall.objects.filter(pk__gt=self.last_pk).order_by("pk"))
        self.last_pk = calls[-1].pk if calls else self.last_pk
        return calls


def vendor_call_links(member: Member) -> list[str]:
    [state] = [entry for entry in timeline.timeline(member) if entry.kind == "vendor" and entry.vendor == "Vibes"]
    return [link.url for link in state.related]
