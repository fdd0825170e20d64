"""Member state converges at every vendor, whatever path a change came by, through outages, without a blind
re-subscribe. Vendors are the sandbox simulators over real HTTP; failures are injected at the simulator."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from integrations import connections
from integrations.annexcloud import flows as annexcloud
from integrations.attentive import flows as attentive
from integrations.models import Connection, WebhookEvent
from integrations.vibes.flows import person_id_of
from members import sync
from members.imports import import_members
from members.models import ChannelSubscription, Member, MemberVendorState
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = "+14155550142"


@pytest.fixture
def now_retries(settings):
    """A deferred change may be retried by the very next sweep."""
    settings.MEMBER_SYNC_RETRY_INTERVAL = timedelta(0)


@pytest.fixture
def member(sandbox_attentive_connection, client_a):
    return MemberFactory(client=client_a, phone=PHONE, email="pat@example.com")


def fail_everything(simulator_state, status: str = "500") -> None:
    simulator_state.fail, simulator_state.fail_path, simulator_state.fail_times = status, "", 10_000


def recover(simulator_state) -> None:
    simulator_state.fail, simulator_state.fail_times = "", 0


def text_state(member: Member) -> str:
    return member.subscriptions.get(vendor="attentive", channel="TEXT").state


# --- Finding 1: eligibility never downgrades a subscription; no re-subscribe --------------------------------------


def test_an_eligibility_check_never_downgrades_a_subscription(member, attentive_sandbox, api_client_for, client_a):
    assert attentive.subscribe(member).ok
    api = api_client_for(client_a)
    # A strict Attentive may answer eligibility oddly for a subscriber; whatever it says, "subscribed" stays.
    attentive_sandbox.subscribed.discard((PHONE, "TEXT"))
    assert api.post(f"/api/members/{member.pk}/eligibility/").status_code == 200
    assert text_state(member) == ChannelSubscription.State.SUBSCRIBED
    subscribes_before = attentive_sandbox.already_subscribed_texts
    assert api.post(f"/api/members/{member.pk}/subscribe/").json()["ok"]
    assert attentive_sandbox.already_subscribed_texts == subscribes_before  # no second POST /v1/subscriptions


def test_a_subscribe_whose_answer_was_lost_is_not_sent_again(member, attentive_sandbox, now_retries):
    """The subscribe reaches Attentive but its answer is lost (slow → read timeout): the retry asks first."""
    Member.objects.filter(pk=member.pk).update(opted_in=True)
    sync.bump(member, "attentive")
    attentive_sandbox.subscribed.add((PHONE, "TEXT"))  # what the lost subscribe did at Attentive
    state = MemberVendorState.objects.get(member=member, vendor="attentive")
    state.confirmed = {"subscribe_sent_to": PHONE}
    state.save()
    assert sync.reconcile(member.pk, "attentive").status == MemberVendorState.Status.IN_SYNC
    assert text_state(member) == ChannelSubscription.State.SUBSCRIBED
    assert attentive_sandbox.already_subscribed_texts == 0


# --- Finding 2: a change while the connection fails is deferred, then replayed --------------------------------------


def test_an_opt_in_while_attentive_fails_goes_out_after_recovery(
    member, attentive_sandbox, api_client_for, client_a, sandbox_attentive_connection, now_retries
):
    fail_everything(attentive_sandbox)
    connections.mark_failing(sandbox_attentive_connection, "Attentive is down")
    response = api_client_for(client_a).patch(f"/api/members/{member.pk}/", {"opted_in": True}, format="json")
    assert response.status_code == 200
    sync.reconcile_pending()
    state = MemberVendorState.objects.get(member=member, vendor="attentive")
    assert state.status == MemberVendorState.Status.DEFERRED and not state.in_step
    assert (PHONE, "TEXT") not in attentive_sandbox.subscribed
    recover(attentive_sandbox)
    sync.reconcile_pending()
    state.refresh_from_db()
    assert state.in_step and state.status == MemberVendorState.Status.IN_SYNC
    assert (PHONE, "TEXT") in attentive_sandbox.subscribed
    sandbox_attentive_connection.refresh_from_db()
    assert sandbox_attentive_connection.status == Connection.Status.ACTIVE  # recovered by the successful call


def test_a_disabled_connection_defers_and_says_why(member, sandbox_attentive_connection, api_client_for, client_a):
    connections.disable(Connection.objects.filter(pk=sandbox_attentive_connection.pk))
    api_client_for(client_a).patch(f"/api/members/{member.pk}/", {"opted_in": True}, format="json")
    result = sync.reconcile(member.pk, "attentive")
    assert result.status == MemberVendorState.Status.DEFERRED
    assert "Attentive connection is disabled" in result.detail
    assert [d.vendor for d in sync.drift()] == ["attentive"]


# --- Finding 3: refresh and import reach the vendors ------------------------------------------------------------


def test_an_import_that_opts_a_member_in_subscribes_them(member, attentive_sandbox, client_a, eager_celery):
    import_members(client_a, io.BytesIO(f"phone,opted_in\n{PHONE},yes\n".encode()))
    assert (PHONE, "TEXT") in attentive_sandbox.subscribed
    assert MemberVendorState.objects.get(member=member, vendor="attentive").in_step


def test_a_loyalty_opt_out_from_a_refresh_never_unsubscribes_sms(member, attentive_sandbox, annex_cloud_sandbox):
    # optInStatus is the loyalty program's opt-in, not SMS consent (issue 20, finding 11).
    annex_state, _ = annex_cloud_sandbox
    assert attentive.subscribe(member).ok
    annex_state.members["pat@example.com"] = {"id": "pat@example.com", "email": "pat@example.com", "optInStatus": "NO"}
    assert annexcloud.refresh_member(member).ok
    sync.reconcile(member.pk, "attentive")
    member.refresh_from_db()
    assert (member.opted_in, member.loyalty_opted_in) == (True, False)
    assert (PHONE, "TEXT") in attentive_sandbox.subscribed
    assert text_state(member) == ChannelSubscription.State.SUBSCRIBED


def test_a_new_number_moves_the_subscription(member, attentive_sandbox, api_client_for, client_a):
    assert attentive.subscribe(member).ok
    api_client_for(client_a).patch(f"/api/members/{member.pk}/", {"phone": "+14155550199"}, format="json")
    sync.reconcile(member.pk, "attentive")
    assert (PHONE, "TEXT") not in attentive_sandbox.subscribed
    assert ("+14155550199", "TEXT") in attentive_sandbox.subscribed


# --- Finding 6: Vibes dedup on (event_id, callback_type); STOP honoured everywhere ----------------------------------


def vibes_callback(callback_type: str, *, date: str, callback_id: str) -> dict:
    """Vibes' own two examples share event_id AB234SDFD234 for an added and a removed."""
    return {
        "callback_id": callback_id,
        "event_id": "AB234SDFD234",
        "callback_type": callback_type,
        "event_date": date,
        "delivery_attempt": "2",
        "subscription": {
            "person": {"id": "ABC123", "external_id": "ex1234"},
            "subscription_list": {"id": "1234"},
            "opt_out_reason": "user_opt_out",
        },
    }


def test_vibes_examples_sharing_an_event_id_are_both_applied(
    client, vibes_sandbox, member, attentive_sandbox, eager_celery
):
    _, vibes = vibes_sandbox
    Member.objects.filter(pk=member.pk).update(annex_cloud_id="ex1234")
    assert attentive.subscribe(member).ok
    url = f"/api/webhooks/vibes/{vibes.inbound_token}/"
    for body in (
        vibes_callback("subscription_added", date="2017-02-15T15:42:23Z", callback_id="DEF123"),
        vibes_callback("subscription_removed", date="2017-03-15T15:42:23Z", callback_id="DEF124"),
    ):
        response = client.post(url, json.dumps(body), content_type="application/json")
        assert response.json()["detail"] == "accepted"
    events = WebhookEvent.objects.order_by("pk")
    assert [e.status for e in events] == ["processed", "processed"]
    assert [(e.delivery_id, e.delivery_attempt) for e in events] == [("DEF123", 2), ("DEF124", 2)]
    member.refresh_from_db()
    assert not member.opted_in  # the STOP at Vibes is an opt-out at the portal ...
    assert (PHONE, "TEXT") not in attentive_sandbox.subscribed  # ... and at Attentive


# --- Finding 7: Vibes 409 explained as Vibes means it, shown on the member; verify without side effects -----------


def test_a_vibes_409_on_update_says_the_number_cannot_change_and_shows_on_the_member(
    vibes_sandbox, client_a, admin_http
):
    member = MemberFactory(client=client_a, phone="+14155550150")
    sync.bump(member, "vibes")
    assert sync.reconcile(member.pk, "vibes").status == MemberVendorState.Status.IN_SYNC
    member.refresh_from_db()
    member.phone = "+14155550151"
    member.save()
    sync.record_change(member, {"phone"})
    result = sync.reconcile(member.pk, "vibes")
    assert result.status == MemberVendorState.Status.REJECTED
    assert "MDN cannot be changed" in result.detail and "another person" not in result.detail
    page = admin_http.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "MDN cannot be changed" in page


def test_vibes_verify_uses_a_documented_update_with_no_side_effect(vibes_sandbox):
    state, connection = vibes_sandbox
    connection.status = Connection.Status.DRAFT
    connection.save()
    assert connections.verify(connection).ok
    assert state.persons == {}  # the probe changed nothing
    call = connection.calls.get()
    assert call.method == "PUT" and "/mobiledb/persons/external/portal-verify-" in call.url


# --- The drift report -------------------------------------------------------------------------------------------


def test_check_member_state_lists_what_differs_and_why(member, attentive_sandbox, client_a, now_retries):
    Member.objects.filter(pk=member.pk).update(opted_in=True)
    sync.bump(member, "attentive")
    fail_everything(attentive_sandbox, "503")
    sync.reconcile(member.pk, "attentive")
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_member_state", client=client_a.slug, stdout=out)
    assert "attentive" in out.getvalue() and "deferred" in out.getvalue()
    recover(attentive_sandbox)
    sync.reconcile_pending()
    out = io.StringIO()
    call_command("check_member_state", client=client_a.slug, read=True, stdout=out)
    assert out.getvalue().strip().endswith("0 member-vendor states differ.")


def test_a_connection_activated_later_receives_the_earlier_changes(client_a, vibes_sandbox, eager_celery):
    persons, vibes = vibes_sandbox
    Connection.objects.filter(pk=vibes.pk).delete()
    early = MemberFactory(client=client_a, first_name="Early")
    sync.change_member(early, first_name="Earlier")  # no Vibes connection yet: nothing recorded for it
    vibes.pk = None
    vibes.status = Connection.Status.DRAFT
    vibes.save()
    assert connections.verify(vibes).ok  # first activation: the members are recorded for Vibes
    sync.reconcile_pending()
    assert [p["custom_fields"]["first_name"] for p in persons.persons.values()] == ["Earlier"]


def test_an_import_that_renames_a_member_updates_the_vibes_person(client_a, vibes_sandbox):
    persons, _ = vibes_sandbox
    member = MemberFactory(client=client_a, first_name="Old")
    import_members(client_a, io.BytesIO(f"phone,first_name\n{member.phone},New\n".encode()))
    assert sync.reconcile(member.pk, "vibes").status == MemberVendorState.Status.IN_SYNC
    member.refresh_from_db()
    assert persons.persons[person_id_of(member)]["custom_fields"]["first_name"] == "New"


def test_a_recovered_connection_clears_its_old_error(sandbox_attentive_connection):
    connections.mark_failing(sandbox_attentive_connection, "Attentive: Unauthorized (HTTP 401)")
    connections.recover(sandbox_attentive_connection)
    sandbox_attentive_connection.refresh_from_db()
    assert sandbox_attentive_connection.status == Connection.Status.ACTIVE
    assert "Unauthorized" not in sandbox_attentive_connection.last_check_result
    assert sandbox_attentive_connection.last_check_ok is True


def test_a_backfill_records_each_member_the_vendor_can_hold_as_pending_once_and_no_one_else(
    client_a, client_b, eager_celery
):
    """Activation's backfill (sync.backfill): every member of the connection's client that the vendor can use gets
    one pending change; a vendor keyed by the mobile number gets none for a member without one, and another client's
    members are not touched."""
    with_phone = [MemberFactory(client=client_a, phone=f"+1415555017{n}") for n in (1, 2)]
    MemberFactory(client=client_a, phone="")
    MemberFactory(client=client_b, phone="+14155550179")
    vibes = Connection.objects.create(client=client_a, vendor="vibes", settings={"company_key": "acme"})

    assert sync.backfill(vibes.pk) == {"recorded": 2}
    states = MemberVendorState.objects.filter(vendor="vibes")
    assert sorted(states.values_list("member_id", flat=True)) == sorted(m.pk for m in with_phone)
    assert {(s.status, s.desired_version) for s in states} == {(MemberVendorState.Status.PENDING, 1)}
    # Nothing queued (tasks run at once here): the sweep sends them at the vendor's pace, not a burst on activation.
    assert {s.detail for s in states} == {"Waiting to be sent."}


def test_a_backfill_for_a_vendor_that_keeps_no_member_state_records_nothing(client_a):
    MemberFactory(client=client_a)
    reviews = Connection.objects.create(client=client_a, vendor="bazaarvoice")
    assert sync.backfill(reviews.pk) == {"recorded": 0}
    assert not MemberVendorState.objects.exists()


def in_step_state(member: Member, vendor: str, confirmed: dict) -> MemberVendorState:
    return MemberVendorState.objects.create(
        member=member,
        vendor=vendor,
        desired_version=1,
        synced_version=1,
        confirmed=confirmed,
        status=MemberVendorState.Status.IN_SYNC,
    )


def test_the_drift_report_asks_the_vendor_about_members_in_step_and_names_each_one_that_differs(
    member, attentive_sandbox, client_b
):
    """check_member_state --read: a member the portal believes subscribed whom Attentive finds eligible to subscribe
    (no subscription there) is listed with the vendor's reason; an unreadable vendor is listed as such."""
    in_step_state(member, "attentive", {"phone": PHONE, "text": "subscribed"})
    drifts = sync.drift(member.client_id, read_vendors=True)
    assert [(d.member, d.vendor) for d in drifts] == [(member, "attentive")]
    assert drifts[0].reason.startswith("the vendor holds no TEXT subscription")
    assert sync.drift(member.client_id) == []  # without reading the vendors, the portal's own view: in step

    fail_everything(attentive_sandbox, "503")
    (unreadable,) = sync.drift(member.client_id, read_vendors=True)
    assert (unreadable.member, unreadable.vendor) == (member, "attentive")
    assert unreadable.reason.startswith("could not be read:")


def test_retrying_rejected_members_sends_only_those_out_of_step_again(member, client_a):
    rejected = MemberVendorState.objects.create(
        member=member, vendor="attentive", desired_version=2, synced_version=1, status=MemberVendorState.Status.REJECTED
    )
    MemberVendorState.objects.filter(pk=rejected.pk).update(next_attempt_at=rejected.changed_at)
    second = MemberFactory(client=client_a, phone="+14155550176")
    MemberVendorState.objects.create(
        member=second, vendor="attentive", desired_version=1, synced_version=0, status=MemberVendorState.Status.REJECTED
    )
    other = MemberFactory(client=client_a, phone="+14155550177")
    in_step = in_step_state(other, "attentive", {"phone": other.phone})

    assert sync.retry_rejected(MemberVendorState.objects.all()) == 2
    rejected.refresh_from_db()
    in_step.refresh_from_db()
    assert (rejected.status, rejected.next_attempt_at) == (MemberVendorState.Status.PENDING, None)
    assert in_step.status == MemberVendorState.Status.IN_SYNC
