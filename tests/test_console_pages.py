"""Pages that used to leave a newcomer guessing: a held message says why (not a bare "Pending"), a segment's page lists
and pages its members with counts and explains its Annex Cloud fields, and "Push to Annex Cloud" refuses a connection
that was never verified, saying what to do (then works once it is verified, over real HTTP to the simulator)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.models import Connection, VendorCall
from members.messaging import dispatch_messages
from members.models import Member, OutboundMessage, Segment
from members.segments import add_members
from tests.factories import MemberFactory, MessageTemplateFactory, SegmentFactory
from tests.list_pages import column
from tests.test_messaging_held import member_with_event


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


# --- Held messages ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_held_message_shows_why_in_the_list_and_on_its_page(admin_http, client_a, sandbox_attentive_connection):
    Connection.objects.filter(pk=sandbox_attentive_connection.pk).update(status="draft")
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection, text="Hi {first_name}"
    )
    member_with_event(client_a, 0)
    assert dispatch_messages()["held"] == 1
    held = OutboundMessage.objects.get()
    why = "the Attentive connection is a draft (not verified yet) — verify it to send the messages."
    listing = admin_http.get(reverse("admin:members_outboundmessage_changelist")).content.decode()
    page = admin_http.get(reverse("admin:members_outboundmessage_change", args=[held.pk])).content.decode()
    for html in (listing, page):
        assert "Held since" in html and why in html
    [state] = column(listing, "short_state")  # its state says held and why, never a bare "Pending"
    assert state["text"].startswith("Held since") and why in state["title"]


# --- Segments -----------------------------------------------------------------------------------------------------


@pytest.fixture
def big_segment(client_a, client_b) -> Segment:
    segment = SegmentFactory(client=client_a, name="Thirty")
    for n in range(30):
        MemberFactory(client=client_a, last_name=f"Member{n:02}", opted_in=n < 10)
    add_members(segment, Member.objects.filter(client=client_a))
    MemberFactory(client=client_b, last_name="Outsider")
    return segment


@pytest.mark.django_db
def test_a_segments_page_lists_and_pages_its_members_with_counts(admin_http, big_segment):
    url = reverse("admin:members_segment_change", args=[big_segment.pk])
    first = admin_http.get(url).content.decode()
    assert "<strong>30</strong> members · 10 opted in to SMS · showing 1\N{EN DASH}25" in first
    assert first.count('class="segment-member"') == 25 and "Member00" in first and "Member25" not in first
    second = admin_http.get(url + "?members_page=2").content.decode()
    assert second.count('class="segment-member"') == 5 and "Member29" in second and "showing 26\N{EN DASH}30" in second
    assert "Outsider" not in first + second


@pytest.mark.django_db
def test_a_client_user_cannot_open_another_clients_segment(alice_http, client_b):
    other = SegmentFactory(client=client_b, name="Beta only")
    response = alice_http.get(reverse("admin:members_segment_change", args=[other.pk]), follow=True)
    assert "Beta only" not in response.content.decode()


@pytest.mark.django_db
def test_the_segment_form_explains_its_annex_cloud_fields(admin_http):
    form = admin_http.get(reverse("admin:members_segment_add")).context["adminform"].form
    for name in ("type", "from_date", "to_date", "external_id"):
        assert form.fields[name].help_text, name
    assert "Past Data" in form.fields["type"].help_text


# --- Push to Annex Cloud ------------------------------------------------------------------------------------------


def push(http, segment):
    return http.post(
        reverse("admin:members_segment_changelist"),
        {"action": "push_to_annex_cloud", "_selected_action": [segment.pk]},
        follow=True,
    )


@pytest.mark.django_db(transaction=True)
def test_push_refuses_a_never_verified_connection_then_works_once_verified(admin_http, annex_cloud_sandbox, client_a):
    state, connection = annex_cloud_sandbox
    Connection.objects.filter(pk=connection.pk).update(status=Connection.Status.DRAFT)
    segment = SegmentFactory(client=client_a, name="Loyal")
    refused = messages_of(push(admin_http, segment))
    assert "never verified" in refused and "Verify the selected connections" in refused
    assert state.segments == {} and not VendorCall.objects.exists()
    verified = admin_http.post(
        reverse("admin:integrations_connection_changelist"),
        {"action": "verify_connections", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert "Verified: Annex Cloud accepts the signed calls" in messages_of(verified)
    push(admin_http, segment)
    segment.refresh_from_db()
    assert len(state.segments) == 1 and segment.annex_cloud_segment_id


@pytest.mark.django_db(transaction=True)
def test_verifying_annex_cloud_with_a_wrong_secret_says_what_to_check(admin_http, annex_cloud_sandbox):
    _, connection = annex_cloud_sandbox
    Connection.objects.filter(pk=connection.pk).update(
        status=Connection.Status.DRAFT,
        secrets={"api_secret": "sandbox-annex-wrong-shared-secret-98765", "loyalty_token": "x"},
    )
    response = admin_http.post(
        reverse("admin:integrations_connection_changelist"),
        {"action": "verify_connections", "_selected_action": [connection.pk]},
        follow=True,
    )
    assert "Check the site id and the API shared secret" in messages_of(response)
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.DRAFT
    assert annex_cloud_simulator.SECRET not in response.content.decode()
