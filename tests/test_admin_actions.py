"""Every admin action, run the way a user runs it: the changelist's action form posted over HTTP. Vendors are the
sandbox simulators served by the live server; outcomes are read from the database and the simulators."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import messages
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone

from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import Connection, WebhookEvent
from integrations.vibes.flows import person_id_of
from integrations.vibes.models import VibesListSubscription
from members.models import OutboundMessage
from tests.factories import (
    ClientFactory,
    ConnectionFactory,
    MemberFactory,
    MessageTemplateFactory,
    OutboundMessageFactory,
    SegmentFactory,
    WebhookEventFactory,
)

live_vendors = pytest.mark.django_db(transaction=True)


def run_action(http, model: str, action: str, rows, **extra):
    """Post the changelist's action form for the given rows and follow the redirect back to the list."""
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    data = {"action": action, "_selected_action": [row.pk for row in rows], **extra}
    return http.post(url, data, follow=True)


def messages_of(response) -> list[tuple[int, str]]:
    return [(m.level, str(m)) for m in response.context["messages"]]


# --- Members --------------------------------------------------------------------------------------------------


@live_vendors
def test_refresh_from_annex_cloud_takes_the_simulators_profile(admin_http, client_a, annex_cloud_sandbox):
    state, _ = annex_cloud_sandbox
    state.members["AC-77"] = {
        "id": "AC-77",
        "email": "jacqueline@example.com",
        "firstName": "Jacqueline",
        "lastName": "Lee",
        "zipCode": "90002",
        "optInStatus": "YES",
        "status": "INACTIVE",
        "phone": "(202) 555-0147",
    }
    member = MemberFactory(
        client=client_a,
        annex_cloud_id="AC-77",
        email="jack@example.com",
        first_name="Jack",
        last_name="Old",
        zip_code="10001",
        opted_in=False,
    )
    ghost = MemberFactory(client=client_a, annex_cloud_id="AC-404", first_name="Ghost", last_name="Member")
    ghost_before = model_to_dict(ghost)

    response = run_action(admin_http, "members.member", "refresh_from_annex_cloud", [member, ghost])

    member.refresh_from_db()
    assert (
        member.email,
        member.first_name,
        member.last_name,
        member.zip_code,
        member.loyalty_opted_in,  # optInStatus: the loyalty opt-in, never the SMS opt-in (issue 20, finding 11)
        member.opted_in,
        member.status,
        member.phone,
    ) == ("jacqueline@example.com", "Jacqueline", "Lee", "90002", True, False, "inactive", "+12025550147")
    ghost.refresh_from_db()
    assert model_to_dict(ghost) == ghost_before  # unknown at Annex Cloud: nothing changes
    assert set(messages_of(response)) == {
        (messages.SUCCESS, "Jacqueline Lee refreshed from Annex Cloud."),
        (messages.WARNING, "AC-404 is not a loyalty member at Annex Cloud."),
    }
    assert "AC-404" not in state.members  # a lookup creates nobody


@live_vendors
def test_sync_to_vibes_creates_the_person_then_updates_it(admin_http, client_a, vibes_sandbox):
    state, _ = vibes_sandbox
    member = MemberFactory(
        client=client_a,
        annex_cloud_id="AC-9",
        email="zoe@example.com",
        first_name="Zoe",
        last_name="Quinn",
        zip_code="94110",
    )

    first = run_action(admin_http, "members.member", "sync_to_vibes", [member])

    member.refresh_from_db()
    person_id = person_id_of(member)
    assert person_id
    assert state.persons == {
        person_id: {
            "person_id": person_id,
            "external_person_id": "AC-9",
            "mobile_phone": {"mdn": member.phone},
            "custom_fields": {
                "first_name": "Zoe",
                "last_name": "Quinn",
                "email": "zoe@example.com",
                "zip_code": "94110",
            },
        }
    }
    assert messages_of(first) == [(messages.SUCCESS, f"Zoe Quinn created at Vibes (person {person_id}).")]

    member.first_name = "Zoey"
    member.save()
    again = run_action(admin_http, "members.member", "sync_to_vibes", [member])

    assert list(state.persons) == [person_id]  # the same person, not a second one
    assert state.persons[person_id]["custom_fields"]["first_name"] == "Zoey"
    member.refresh_from_db()
    assert person_id_of(member) == person_id
    assert messages_of(again) == [(messages.SUCCESS, f"Zoey Quinn updated at Vibes (person {person_id}).")]


def test_add_to_segment_asks_for_the_segment_then_adds_the_members(admin_http, client_a, client_b):
    ours = SegmentFactory(client=client_a, name="VIP")
    theirs = SegmentFactory(client=client_b, name="Beta VIP")
    chosen = MemberFactory.create_batch(2, client=client_a)
    MemberFactory(client=client_a)  # not selected
    url = reverse("admin:members_member_changelist")
    data = {"action": "add_to_segment", "_selected_action": [m.pk for m in chosen]}

    page = admin_http.post(url, data)

    assert page.status_code == 200
    assert "admin/members/member/add_to_segment.html" in [t.name for t in page.templates]
    assert list(page.context["segments"]) == [ours]  # only segments of the members' client are offered
    assert sorted(page.context["pks"]) == sorted(m.pk for m in chosen)
    assert not ours.members.exists()  # nothing happens before the segment is chosen

    done = admin_http.post(url, {**data, "segment": ours.pk}, follow=True)

    assert set(ours.members.all()) == set(chosen)
    assert messages_of(done) == [(messages.INFO, "Added 2 members to VIP.")]
    assert not theirs.members.exists()


def test_add_to_segment_refuses_a_segment_of_another_client(admin_http, client_a, client_b):
    ours = SegmentFactory(client=client_a, name="VIP")
    theirs = SegmentFactory(client=client_b, name="Beta VIP")
    chosen = MemberFactory.create_batch(2, client=client_a)

    response = run_action(admin_http, "members.member", "add_to_segment", chosen, segment=theirs.pk)

    assert messages_of(response) == [(messages.ERROR, "Choose a segment of the members' client.")]
    assert not theirs.members.exists()
    assert not ours.members.exists()


# --- Outbound messages ------------------------------------------------------------------------------------------


def test_resend_returns_failed_messages_to_pending_and_leaves_sent_ones(admin_http, client_a):
    template = MessageTemplateFactory(client=client_a)
    claimed_at = timezone.now() - timedelta(minutes=5)
    failed = OutboundMessageFactory(
        template=template,
        status=OutboundMessage.Status.FAILED,
        detail="Attentive answered 500",
        claim="run-1",
        claimed_at=claimed_at,
    )
    sent = OutboundMessageFactory(
        template=template,
        status=OutboundMessage.Status.SENT,
        detail="sent",
        claim="run-1",
        claimed_at=claimed_at,
        sent_at=claimed_at,
    )
    sent_before = model_to_dict(sent)

    response = run_action(admin_http, "members.outboundmessage", "resend", [failed, sent])

    failed.refresh_from_db()
    assert (failed.status, failed.detail, failed.claim) == ("pending", "Resent from the admin.", "")
    sent.refresh_from_db()
    assert model_to_dict(sent) == sent_before
    assert messages_of(response) == [(messages.INFO, "1 message will go out with the next run of the message job.")]


# --- Connections ------------------------------------------------------------------------------------------------


@live_vendors
def test_verify_connections_reactivates_a_failing_sandbox_attentive_connection(
    admin_http, sandbox_attentive_connection
):
    Connection.objects.filter(pk=sandbox_attentive_connection.pk).update(
        status=Connection.Status.FAILING, consecutive_failures=3, last_check_ok=False, last_check_result="old"
    )

    response = run_action(admin_http, "integrations.connection", "verify_connections", [sandbox_attentive_connection])

    connection = Connection.objects.get(pk=sandbox_attentive_connection.pk)
    assert connection.status == Connection.Status.ACTIVE
    assert connection.last_check_ok is True and connection.consecutive_failures == 0
    assert connection.last_check_result == (
        "Verified: the API key belongs to Sandbox Outfitters and may manage subscriptions."
    )
    assert messages_of(response) == [(messages.SUCCESS, f"{connection}: {connection.last_check_result}")]


@live_vendors
def test_verify_connections_activates_a_draft_sandbox_attentive_connection(admin_http, sandbox_attentive_connection):
    run_action(admin_http, "integrations.connection", "reset_to_draft", [sandbox_attentive_connection])
    assert Connection.objects.get(pk=sandbox_attentive_connection.pk).status == Connection.Status.DRAFT

    response = run_action(admin_http, "integrations.connection", "verify_connections", [sandbox_attentive_connection])

    connection = Connection.objects.get(pk=sandbox_attentive_connection.pk)
    assert connection.last_check_result.startswith("Verified:")
    assert messages_of(response) == [(messages.SUCCESS, f"{connection}: {connection.last_check_result}")]
    assert connection.status == Connection.Status.ACTIVE


@live_vendors
def test_verify_connections_activates_a_draft_sandbox_vibes_connection(admin_http, vibes_sandbox):
    _, vibes = vibes_sandbox
    Connection.objects.filter(pk=vibes.pk).update(status=Connection.Status.DRAFT)

    response = run_action(admin_http, "integrations.connection", "verify_connections", [vibes])

    connection = Connection.objects.get(pk=vibes.pk)
    assert connection.status == Connection.Status.ACTIVE and connection.last_check_ok is True
    assert connection.last_check_result == "Verified: the credentials work for company acme."
    assert messages_of(response) == [(messages.SUCCESS, f"{connection}: {connection.last_check_result}")]


@live_vendors
def test_verify_connections_keeps_a_wrong_key_inactive_and_explains(admin_http, attentive_sandbox):
    wrong = ConnectionFactory(
        client=ClientFactory(name="Gamma Goods"),
        vendor="attentive",
        environment=Connection.Environment.SANDBOX,
        status=Connection.Status.DRAFT,
        secrets={"api_key": "not-the-sandbox-key", "legacy_token": LEGACY_TOKEN},
    )

    response = run_action(admin_http, "integrations.connection", "verify_connections", [wrong])

    wrong.refresh_from_db()
    assert wrong.status == Connection.Status.DRAFT
    assert wrong.last_check_ok is False and wrong.last_checked_at is not None
    assert "Attentive rejected the API key" in wrong.last_check_result
    assert "Integrations tab" in wrong.last_check_result  # says what to do
    assert messages_of(response) == [(messages.ERROR, f"{wrong}: {wrong.last_check_result}")]
    assert API_KEY not in wrong.last_check_result


def test_reset_to_draft_returns_the_selected_connections_to_draft(admin_http, client_a, client_b):
    active = ConnectionFactory(client=client_a, vendor="attentive", consecutive_failures=2)
    failing = ConnectionFactory(
        client=client_a, vendor="vibes", status=Connection.Status.FAILING, consecutive_failures=5
    )
    untouched = ConnectionFactory(client=client_b, vendor="attentive", consecutive_failures=1)

    response = run_action(admin_http, "integrations.connection", "reset_to_draft", [active, failing])

    for connection in (active, failing):
        connection.refresh_from_db()
        assert (connection.status, connection.consecutive_failures) == (Connection.Status.DRAFT, 0)
    untouched.refresh_from_db()
    assert (untouched.status, untouched.consecutive_failures) == (Connection.Status.ACTIVE, 1)
    assert messages_of(response) == [(messages.INFO, "2 connections back to draft: verify them to activate.")]


# --- Webhook events ---------------------------------------------------------------------------------------------


@pytest.fixture
def failed_callback(client_a):
    """A Vibes callback for a member of client A whose processing failed (kept with its error, as the portal keeps
    it), and the member it is about."""
    member = MemberFactory(client=client_a, annex_cloud_id="AC-5")
    event = WebhookEventFactory(
        connection__client=client_a,
        person_id="P-5",
        external_id="AC-5",
        list_id="777",
        status=WebhookEvent.Status.FAILED,
        error="OperationalError: database is locked",
        traceback="Traceback (most recent call last): ...",
    )
    return event, member


def test_reprocess_applies_a_failed_event(admin_http, failed_callback):
    event, member = failed_callback
    processed = WebhookEventFactory(
        connection=event.connection,
        person_id="P-6",
        status=WebhookEvent.Status.PROCESSED,
        error="subscribed on list 1234; no member yet (kept to match later).",
        processed_at=timezone.now() - timedelta(days=1),
    )
    processed_before = model_to_dict(processed)

    response = run_action(admin_http, "integrations.webhookevent", "reprocess", [event, processed])

    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.processed_at is not None and event.traceback == ""
    assert event.error == f"subscribed on list 777; matched to {member}."  # the member as named everywhere
    state = VibesListSubscription.objects.get(client=member.client)  # the failed event's effect, and only its
    assert (state.person_id, state.list_id, state.state, state.member, state.last_event_id) == (
        "P-5",
        "777",
        VibesListSubscription.State.SUBSCRIBED,
        member,
        event.event_id,
    )
    member.refresh_from_db()
    assert person_id_of(member) == "P-5"
    processed.refresh_from_db()
    assert model_to_dict(processed) == processed_before  # applied already: left alone
    assert messages_of(response) == [(messages.SUCCESS, "Reprocessed: 1 applied, 0 failed again.")]


def test_reprocess_is_for_site_admins_only(alice_http, failed_callback):
    event, member = failed_callback

    response = run_action(alice_http, "integrations.webhookevent", "reprocess", [event])

    assert messages_of(response) == [(messages.ERROR, "Only site admins can reprocess events.")]
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED
    assert not VibesListSubscription.objects.exists()
    assert person_id_of(member) == ""
