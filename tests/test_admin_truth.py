"""An admin that tells the truth (issue 24): members found through a vendor are existing members, never sign-ups, and
each vendor gets only members it can use; the portal's own reasons are named as the portal's; record pages that are
history are read-only. Over real HTTP against the sandbox simulators served by the live server."""

from __future__ import annotations

import re

import pytest

from integrations.attentive.models import SignUpSource
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.models import Review
from integrations.bazaarvoice.rewards import FOUND_THROUGH
from integrations.models import Connection, VendorCall
from integrations.sessionm import sandbox as sessionm_simulator
from members import sync
from members.models import EventType, LoyaltyEvent, Member, MemberVendorState, OutboundMessage
from tests.factories import ConnectionFactory, MemberFactory, simulator_connection

pytestmark = pytest.mark.django_db(transaction=True)
State = MemberVendorState.Status


@pytest.fixture
def every_vendor(bazaarvoice_connection, vibes_sandbox, sessionm_sandbox, sandbox_attentive_connection, client_a):
    """Client A with Bazaarvoice, Annex Cloud, Vibes, SessionM and Attentive all active on the simulators."""
    simulator_connection(client_a, "sessionm", sessionm_simulator)
    vibes_state, _ = vibes_sandbox
    return vibes_state, sandbox_attentive_connection


def test_reviewers_found_at_annex_cloud_are_members_with_their_names_and_no_welcome_nor_sms_vendor_without_a_number(
    every_vendor, client_a
):
    vibes_state, attentive = every_vendor
    bazaarvoice_simulator.generate(30, days=2)

    assert bazaarvoice.pull_reviews(Connection.objects.get(vendor="bazaarvoice")).outcome.ok
    sync.reconcile_pending(client_a.pk)

    found = Member.objects.filter(client=client_a, bazaarvoice_reviews__outcome=Review.Outcome.AWARDED).distinct()
    assert found.count() >= 10
    for member in found:
        # Annex Cloud's profile, as the simulator holds it: the real name, never a placeholder.
        assert member.found_through == FOUND_THROUGH
        assert member.first_name in bazaarvoice_simulator.FIRST_NAMES and member.last_name
        assert member.first_name != "Reviewer"
        # Its timeline names what made it: the review that found it (members/changes.py).
        reviews = member.bazaarvoice_reviews.values_list("review_id", flat=True)
        assert member.changes.order_by("pk").first().by in {f"Bazaarvoice's review {r}" for r in reviews}
    # Existing loyalty members, not sign-ups: no welcome event, no welcome message.
    assert not LoyaltyEvent.objects.filter(client=client_a, event_type=EventType.SIGNED_UP).exists()
    assert not OutboundMessage.objects.filter(member__in=found, event__event_type=EventType.SIGNED_UP).exists()
    # Vibes holds a person only for the reviewers with a mobile number (what the simulator received).
    with_number = {m.phone for m in found if m.phone}
    without_number = [m for m in found if not m.phone]
    assert with_number and without_number
    assert {(p.get("mobile_phone") or {}).get("mdn") for p in vibes_state.persons.values()} == with_number
    # Nothing is recorded for a vendor that cannot use the member: no state, so no red "rejected" on the member.
    assert not MemberVendorState.objects.filter(member__in=without_number, vendor__in=["vibes", "attentive"]).exists()
    # No SMS consent comes from Annex Cloud: Attentive was never called.
    assert not VendorCall.objects.filter(connection=attentive).exists()


def test_an_opted_in_member_without_a_number_is_no_business_of_the_sms_vendors(every_vendor, client_a):
    member = MemberFactory(client=client_a, phone="", opted_in=True)

    vendors = sync.record_change(member, {"opted_in", "email", "first_name"}, {"opted_in": False})

    assert "attentive" not in vendors and "vibes" not in vendors and "sessionm" in vendors


def test_a_member_the_vendor_cannot_take_is_not_sent_for_the_portals_reason_never_rejected_by_the_vendor(
    every_vendor, client_a, admin_http
):
    _, attentive = every_vendor
    member = MemberFactory(client=client_a, phone="+14155550177", opted_in=True)
    sync.bump(member, "attentive")  # held by Attentive before the number was removed
    Member.objects.filter(pk=member.pk).update(phone="")

    result = sync.reconcile(member.pk, "attentive")

    assert result.status == State.NOT_SENT
    assert result.detail.startswith("Not sent by the portal:") and "no mobile number" in result.detail
    assert not VendorCall.objects.filter(connection=attentive).exists()
    assert not sync.pending_states("attentive").exists()  # waits for a change, as a refusal does
    page = admin_http.get("/admin/members/member/").content.decode()
    [chip] = re.findall(r'<span class="chip chip-not_sent" title="([^"]*)">Attentive: not sent</span>', page)
    assert chip.startswith("Not sent by the portal:") and "no mobile number" in chip
    assert "rejected by the vendor" not in page
    (drift,) = sync.drift(client_a.pk)
    assert drift.reason.startswith("not sent to Attentive (the portal's reason)")


def test_a_signed_up_member_is_still_welcomed(every_vendor, client_a):
    SignUpSource.objects.get_or_create(client=client_a, source_id="132109", defaults={"is_default": True})
    member = MemberFactory(client=client_a)
    sync.record_change(member, {"email", "phone"}, {})
    assert LoyaltyEvent.objects.filter(member=member, event_type=EventType.SIGNED_UP).count() == 1


# --- Record pages that are history are read-only -------------------------------------------------------------------


@pytest.fixture
def history(client_a):
    """One record of each kind of history, as the portal writes them."""
    from integrations.first_orion import sandbox as first_orion_simulator
    from integrations.first_orion.models import ProgramContent, Push, PushBatch
    from integrations.models import JobRun
    from tests.factories import OutboundMessageFactory, WebhookEventFactory

    content = ProgramContent.objects.create(
        client=client_a,
        name="Order ready",
        program_content_uuid=first_orion_simulator.DEMO_PROGRAM,
        a_numbers=first_orion_simulator.DEMO_A_NUMBERS,
    )
    push = Push.objects.create(client=client_a, program_content=content, source="numbers", status="failed")
    connection = ConnectionFactory(client=client_a, vendor="annex_cloud")
    held = OutboundMessageFactory(
        template__client=client_a,
        status=OutboundMessage.Status.PENDING,
        detail="Held since 09:00: Attentive is failing.",
    )
    OutboundMessage.objects.filter(pk=held.pk).update(held_since=held.created_at)
    return {
        "integrations/jobrun": JobRun.objects.create(job="integrations.prune_old_records", outcome="failed"),
        "integrations/vendorcall": VendorCall.objects.create(connection=connection, method="GET", url="https://x/y"),
        "integrations/webhookevent": WebhookEventFactory(connection__client=client_a),
        "first_orion/push": push,
        "first_orion/pushbatch": PushBatch.objects.create(push=push, index=0, size=1, destinations=["+14155550100"]),
        "members/outboundmessage": held,
    }


def test_history_pages_have_no_delete_and_no_status_input_and_deleting_is_refused(admin_http, history):
    for model, record in history.items():
        base = f"/admin/{model.replace('/', '/')}/{record.pk}"
        page = admin_http.get(f"{base}/change/")
        assert page.status_code == 200, model
        html = page.content.decode()
        assert f"{base}/delete/" not in html and 'class="deletelink"' not in html, model
        assert 'name="status"' not in html and 'name="outcome"' not in html, model
        assert admin_http.get(f"{base}/delete/").status_code == 403, model
        assert admin_http.post(f"{base}/delete/", {"post": "yes"}).status_code == 403, model
        assert type(record).objects.filter(pk=record.pk).exists(), model
        listing = admin_http.get(f"/admin/{model}/").content.decode()
        assert 'value="delete_selected"' not in listing, model


def test_the_held_message_page_says_its_state_and_reason_once_and_keeps_its_actions(admin_http, history):
    message = history["members/outboundmessage"]
    html = admin_http.get(f"/admin/members/outboundmessage/{message.pk}/change/").content.decode()
    assert html.count("Attentive is failing.") == 1
    assert "<select" not in html.split('id="content-main"')[1].split("</form>")[0] or 'name="status"' not in html
    listing = admin_http.get("/admin/members/outboundmessage/").content.decode()
    assert 'value="send_anyway"' in listing and 'value="resend"' in listing
