"""SessionM flows over real HTTP against the sandbox simulator: verify, profiles through the reconciler (a failing
SessionM defers, nothing drops), forget, the welcome once on every member path, and the wallet scan's offer events
exactly once across repeated, killed and overlapping runs (expiring: the end within 10 times 24 hours of now)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from integrations import connections
from integrations.annexcloud import flows as annexcloud
from integrations.models import Connection, JobRun
from integrations.sandbox.base import OUTAGES, Outage
from integrations.schedules import ensure_schedules
from integrations.sessionm import demo, tasks
from integrations.sessionm import sandbox as simulator
from integrations.sessionm.campaigns import eligible_campaigns
from integrations.sessionm.connection import sessionm_api
from integrations.sessionm.forget import forget_profiles
from integrations.sessionm.models import OfferScan, SessionMOffer, SessionMProfile
from integrations.sessionm.offers import claim_scan, members_per_run, scan_connection, scan_offers
from integrations.sessionm.profiles import profile_of, reconcile_member
from integrations.sessionm.wallet import record_wallet
from members import sync
from members.imports import import_members
from members.messaging import plan_messages
from members.models import EventType, LoyaltyEvent, Member, MemberVendorState, MessageTemplate, OutboundMessage
from tests.factories import ConnectionFactory, MemberFactory, simulator_connection

pytestmark = pytest.mark.django_db(transaction=True)
InSync = MemberVendorState.Status.IN_SYNC


@pytest.fixture
def sandbox(sessionm_sandbox):
    return sessionm_sandbox


@pytest.fixture
def connection(sandbox, client_a):
    return simulator_connection(client_a, "sessionm", simulator)


def new_member(client, n: int = 1, **fields) -> Member:
    """A member created as every path creates one: saved, then the change recorded."""
    values = {"phone": f"+1404555{n:04d}", "email": f"m{n}@example.com", "first_name": f"M{n}", "opted_in": True}
    member = MemberFactory(client=client, **{**values, **fields})
    sync.record_change(member, set(values) | set(fields), {})
    return member


def in_sync(member: Member) -> Member:
    assert sync.reconcile(member.pk, "sessionm").status == InSync
    return member


def outage(status: int = 503) -> None:
    OUTAGES["sessionm"] = Outage(status=status, times=1_000_000)


# --- Connection ---------------------------------------------------------------------------------------------------


def test_verify_reads_without_side_effects_and_activates(connection, sandbox):
    connection.status = Connection.Status.DRAFT
    connection.save()
    outcome = connections.verify(connection)
    assert outcome.ok, outcome.message
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.ACTIVE
    assert sandbox.users == {} and sandbox.transactions == []
    assert [r["method"] for r in sandbox.requests] == ["GET", "POST"]  # campaigns probe, wallet probe


def test_verify_with_a_wrong_secret_says_which_credentials(connection):
    connection.secrets = {**connection.secrets, "api_secret": "not-the-secret"}
    connection.save()
    outcome = connections.verify(connection)
    assert not outcome.ok and "Core API key and secret" in outcome.message


def test_verify_fails_with_a_wrong_connect_store_id(connection):
    connection.settings = {**connection.settings, "store_id": "not-our-store"}
    connection.save()
    outcome = connections.verify(connection)
    assert not outcome.ok and "store_id" in outcome.message and "not-our-store" in outcome.message
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.FAILING


def test_verify_takes_connects_unknown_user_as_a_404_too(connection, sandbox):
    sandbox.unknown_user_404 = True
    connection.status = Connection.Status.DRAFT
    connection.save()
    outcome = connections.verify(connection)
    assert outcome.ok, outcome.message
    # A wrong store is still refused when unknown users come as 404s.
    connection.settings = {**connection.settings, "connect_client_id": "someone-else"}
    connection.save()
    assert not connections.verify(connection).ok


def test_separate_connect_credentials_are_checked_and_used_for_connect_only(connection, sandbox):
    connection.secrets = {
        **connection.secrets,
        "connect_api_key": simulator.CONNECT_KEY,
        "connect_api_secret": "not-the-connect-secret",
    }
    connection.save()
    outcome = connections.verify(connection)
    assert not outcome.ok and "Connect" in outcome.message and "not-the-connect-secret" not in outcome.message
    connection.secrets = {**connection.secrets, "connect_api_secret": simulator.CONNECT_SECRET}
    connection.status = Connection.Status.ACTIVE
    connection.save()
    sandbox.requests.clear()
    assert connections.verify(connection).ok
    member = in_sync(new_member(connection.client))
    member.refresh_from_db()
    give(member, days=30)
    assert scan_offers()["issued"] == 1
    users = {("connect" if "/api/2.0/" in r["path"] else "core", r["user"]) for r in sandbox.requests}
    assert users == {("core", simulator.API_KEY), ("connect", simulator.CONNECT_KEY)}


def test_a_production_connection_without_tenant_host_asks_for_it(client_a):
    connection = ConnectionFactory(client=client_a, vendor="sessionm", secrets=dict(simulator.DEMO_SECRETS))
    outcome = connections.verify(connection)
    assert not outcome.ok and "tenant host" in outcome.message


# --- Profiles -----------------------------------------------------------------------------------------------------


def test_a_new_member_gets_a_profile_and_changes_update_it(connection, sandbox):
    member = in_sync(new_member(connection.client))
    profile = SessionMProfile.objects.get(member=member)
    stored = sandbox.users[profile.user_id]
    assert stored["external_id"] == f"portal-{member.pk}" and stored["opted_in"] is True
    assert stored["phone_numbers"] == [{"phone_number": member.phone, "phone_type": "mobile"}]
    sync.change_member(member, email="new@example.com")
    in_sync(member)
    assert sandbox.users[profile.user_id]["email"] == "new@example.com"
    assert [r["method"] for r in sandbox.requests] == ["POST", "PUT"]
    assert len(sandbox.users) == 1


def test_a_create_whose_answer_was_lost_adopts_the_user_instead_of_a_second(connection, sandbox):
    member = new_member(connection.client)
    # The first create reached SessionM, its answer did not reach the portal.
    sandbox.users["u-lost"] = {"id": "u-lost", "external_id": f"portal-{member.pk}"}
    sandbox.by_external_id[f"portal-{member.pk}"] = "u-lost"
    in_sync(member)
    assert SessionMProfile.objects.get(member=member).user_id == "u-lost"
    assert len(sandbox.users) == 1 and sandbox.users["u-lost"]["email"] == member.email


def test_a_failing_sessionm_defers_profile_work_and_nothing_drops(connection, sandbox):
    member = new_member(connection.client)
    outage(503)
    result = sync.reconcile(member.pk, "sessionm")
    assert result.status == MemberVendorState.Status.DEFERRED and "Will retry" in result.detail
    assert not SessionMProfile.objects.filter(member=member).exclude(user_id="").exists()
    OUTAGES.pop("sessionm")
    assert sync.reconcile_pending()["in_sync"] == 1
    assert SessionMProfile.objects.get(member=member).user_id in sandbox.users


def test_a_deleted_member_is_forgotten_at_sessionm_even_after_an_outage(connection, sandbox):
    member = in_sync(new_member(connection.client))
    user_id = SessionMProfile.objects.get(member=member).user_id
    outage(503)
    member.delete()
    assert forget_profiles() == {"forgotten": 0, "deferred": 1}
    profile = SessionMProfile.objects.get(user_id=user_id)
    assert profile.member is None and profile.forget_requested_at and "Will retry" in profile.detail
    OUTAGES.pop("sessionm")
    assert forget_profiles() == {"forgotten": 1, "deferred": 0}
    assert user_id not in sandbox.users and sandbox.forgotten == [user_id]


# --- Welcome ------------------------------------------------------------------------------------------------------


def welcome_template(connection) -> MessageTemplate:
    sms = ConnectionFactory(client=connection.client, vendor="attentive", status=Connection.Status.ACTIVE)
    return MessageTemplate.objects.create(
        client=connection.client, event_type=EventType.SIGNED_UP, connection=sms, text="Welcome {first_name}!"
    )


def admin_form(admin_http, url: str, **fields) -> dict:
    """The fields to post to an admin page: its hidden inputs (inlines' management forms and row ids) as the page
    renders them, and ours."""
    page = admin_http.get(url).content.decode()
    hidden = re.findall(r'<input type="hidden" name="([\w-]+)" value="([^"]*)"', page)
    return {**dict(hidden), "status": "active", "points": 0, **fields}


def test_one_welcome_per_member_across_every_member_path(connection, api_client_for, admin_http):
    client = connection.client
    welcome_template(connection)
    api = api_client_for(client)
    by_api = api.post("/api/members/", {"phone": "+14045550101", "first_name": "Api"}, format="json")
    assert by_api.status_code == 201, by_api.json()
    add = "/admin/members/member/add/"
    page = admin_http.post(add, admin_form(admin_http, add, client=client.pk, phone="+14045550102", first_name="Admin"))
    assert page.status_code == 302, page.content.decode()[:2000]
    csv = b"phone,first_name,email\n+14045550103,Csv,csv@example.com\n"
    import_members(client, io.BytesIO(csv))
    members = {m.first_name: m for m in Member.objects.filter(client=client)}
    assert set(members) == {"Api", "Admin", "Csv"}
    # Again, by every path: re-save, re-import, an Annex Cloud refresh.
    assert api.patch(f"/api/members/{by_api.json()['id']}/", {"last_name": "Again"}, format="json").status_code == 200
    change = f"/admin/members/member/{members['Admin'].pk}/change/"
    fields = {"client": client.pk, "phone": "+14045550102", "first_name": "Admin", "last_name": "X"}
    assert admin_http.post(change, admin_form(admin_http, change, **fields)).status_code == 302
    import_members(client, io.BytesIO(b"phone,first_name,email\n+14045550103,Csv,csv2@example.com\n"))
    for member in members.values():
        annexcloud.apply_profile(member, {"id": f"ac-{member.pk}", "firstName": member.first_name})
    plan_messages()
    welcomes = LoyaltyEvent.objects.filter(client=client, event_type=EventType.SIGNED_UP)
    assert sorted(welcomes.values_list("member__first_name", flat=True)) == ["Admin", "Api", "Csv"]
    assert OutboundMessage.objects.filter(event__in=welcomes).count() == 3
    assert {m.body for m in OutboundMessage.objects.all()} == {"Welcome Api!", "Welcome Admin!", "Welcome Csv!"}


def test_members_from_before_sessionm_was_connected_are_not_welcomed(client_a, sandbox):
    earlier = MemberFactory(client=client_a, phone="+14045550111")
    ConnectionFactory(client=client_a, vendor="sessionm", environment="sandbox", secrets=dict(simulator.DEMO_SECRETS))
    sync.change_member(earlier, first_name="Changed")
    sync.backfill(Connection.objects.get(client=client_a, vendor="sessionm").pk)
    assert not LoyaltyEvent.objects.filter(event_type=EventType.SIGNED_UP).exists()


def test_members_imported_while_the_connection_was_a_draft_are_not_welcomed_on_activation(connection, sandbox):
    connection.status = Connection.Status.DRAFT
    connection.save()
    connection.sessionm_activation.delete()  # the factory saved it active: this one was set up as a draft
    Connection.objects.filter(pk=connection.pk).update(created_at=timezone.now() - timedelta(days=3))
    imported = [new_member(connection.client, n) for n in (1, 2)]
    assert connections.verify(connection).ok
    sync.backfill(connection.pk)
    sync.change_member(imported[0], first_name="Changed")
    assert not LoyaltyEvent.objects.filter(event_type=EventType.SIGNED_UP).exists()
    joined = new_member(connection.client, 3)
    assert [e.member_id for e in LoyaltyEvent.objects.filter(event_type=EventType.SIGNED_UP)] == [joined.pk]


def test_no_welcome_while_the_sessionm_connection_is_not_usable(connection, sandbox):
    connections.disable(Connection.objects.filter(pk=connection.pk))
    new_member(connection.client)
    assert not LoyaltyEvent.objects.filter(event_type=EventType.SIGNED_UP).exists()


def test_a_client_without_sessionm_records_no_welcome(client_a):
    new_member(client_a)
    assert not LoyaltyEvent.objects.exists()


# --- Offers -------------------------------------------------------------------------------------------------------


def wallet_member(connection, n: int = 1) -> Member:
    return in_sync(new_member(connection.client, n))


def give(member: Member, **offer) -> str:
    simulator.state.wallets.setdefault(member.sessionm_profile.user_id, [])
    added = simulator.add_offer({"user_id": member.sessionm_profile.user_id, "name": "Fries", **offer})
    return added["id"]


def events(kind: str) -> list[LoyaltyEvent]:
    return list(LoyaltyEvent.objects.filter(event_type=kind).order_by("pk"))


def local_day(client, days: int) -> str:
    return (client.local_date(timezone.now()) + timedelta(days=days)).isoformat()


def test_issued_and_expiring_once_per_offer_across_repeated_runs(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    new_offer = give(member, name="Large fries", days=40)
    soon = give(member, name="Snack box", description="A box of snacks", end_date=local_day(connection.client, 9))
    for _ in range(3):
        scan_offers()
    assert [e.data["offer_id"] for e in events(EventType.OFFER_ISSUED)] == [new_offer, soon]
    [expiring] = events(EventType.OFFER_EXPIRING)
    assert expiring.data["offer_id"] == soon and expiring.data["offer_description"] == "A box of snacks"
    offer = SessionMOffer.objects.get(offer_id=soon)
    assert offer.issued_event and offer.expiring_event == expiring and not offer.redeemed


def test_offers_already_in_the_wallet_of_a_member_from_before_sessionm_are_not_announced_as_new(client_a, sandbox):
    earlier = MemberFactory(client=client_a, phone="+14045550121", opted_in=True)
    connection = simulator_connection(client_a, "sessionm", simulator)
    sync.record_change(earlier, {"phone"}, {})
    member = in_sync(earlier)
    member.refresh_from_db()
    give(member, days=30)
    soon = give(member, end_date=local_day(connection.client, 5))
    scan_offers()
    assert events(EventType.OFFER_ISSUED) == []
    assert [e.data["offer_id"] for e in events(EventType.OFFER_EXPIRING)] == [soon]
    later = give(member, days=30)
    scan_offers()
    assert [e.data["offer_id"] for e in events(EventType.OFFER_ISSUED)] == [later]


def test_an_offer_ending_just_over_ten_days_away_is_not_announced_just_under_it_is(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    # An hour either side of 240 hours: room for a slow scan, and a calendar-day count cannot tell them apart.
    later = give(member, days=10 + 1 / 24)
    sooner = give(member, days=10 - 1 / 24)
    scan_offers()
    assert [e.data["offer_id"] for e in events(EventType.OFFER_EXPIRING)] == [sooner]
    assert later in [e.data["offer_id"] for e in events(EventType.OFFER_ISSUED)]


def test_expiring_is_an_instant_not_calendar_days_in_the_clients_zone(connection, sandbox):
    """Issue 20, finding 9: at 05:00 in Tokyo, an offer ending in 10.5 days ends on the 10th calendar day there, and
    counting calendar days announced it 12 hours before "10 days before it ends". It is announced once its end is
    within 240 hours; the date in the message is still the client's (Tokyo's) date, in its format."""
    client = connection.client
    client.time_zone, client.date_format = "Asia/Tokyo", "d/m/Y"
    client.save()
    member = wallet_member(connection)
    member.refresh_from_db()
    now = datetime.combine(client.local_date(timezone.now()), time(5), tzinfo=ZoneInfo("Asia/Tokyo"))
    ten_and_a_half, nine_point_nine = now + timedelta(days=10.5), now + timedelta(days=9.9)
    later = give(member, end_date=f"{ten_and_a_half.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    sooner = give(member, end_date=f"{nine_point_nine.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}")
    offers = sessionm_api(connection).get_user_offers(member.sessionm_profile.user_id)

    def announced_at(moment: datetime) -> list[str]:
        record_wallet(member, offers, 10, now=moment)
        return [e.data["offer_id"] for e in events(EventType.OFFER_EXPIRING)]

    assert announced_at(now) == [sooner]
    assert announced_at(now + timedelta(hours=12) - timedelta(minutes=1)) == [sooner]
    assert announced_at(now + timedelta(hours=12)) == [sooner, later]
    # 02:36 in Tokyo on the 10th day is still the 9th in UTC: the message says Tokyo's date.
    assert {e.data["offer_id"]: e.data["expires_on"] for e in events(EventType.OFFER_EXPIRING)} == {
        sooner: f"{nine_point_nine:%d/%m/%Y}",
        later: f"{ten_and_a_half:%d/%m/%Y}",
    }
    assert nine_point_nine.date() != nine_point_nine.astimezone(UTC).date()


def test_an_impossible_end_date_is_read_as_none_and_the_scan_goes_on(connection, sandbox):
    first, second = wallet_member(connection, 1), wallet_member(connection, 2)
    for member in (first, second):
        member.refresh_from_db()
    bad = give(first, end_date="2026-13-40")
    bad_time = give(first, end_date="2026-02-30T10:00:00Z")
    good = give(second, days=30)
    counts = scan_offers()
    assert counts["members"] == 2 and counts["passes_completed"] == 1
    assert {o.offer_id: o.redemption_end_date for o in SessionMOffer.objects.all()} == {
        bad: None,
        bad_time: None,
        good: SessionMOffer.objects.get(offer_id=good).redemption_end_date,
    }
    assert sorted(e.data["offer_id"] for e in events(EventType.OFFER_ISSUED)) == sorted([bad, bad_time, good])


def test_an_offer_first_seen_a_month_out_is_announced_expiring_once_when_it_enters_the_window(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    give(member, days=30)
    api = sessionm_api(connection)
    now = timezone.now()
    for days_later in (0, 15, 21, 22, 25):
        offers = api.get_user_offers(member.sessionm_profile.user_id)
        record_wallet(member, offers, 10, now=now + timedelta(days=days_later))
        expected = 0 if days_later < 21 else 1
        assert len(events(EventType.OFFER_EXPIRING)) == expected, days_later
    assert len(events(EventType.OFFER_ISSUED)) == 1


def test_an_offer_redeemed_or_expired_after_it_was_first_seen_is_never_announced_expiring(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    redeemed, lapsed = give(member, days=30), give(member, days=30)
    api = sessionm_api(connection)
    now = timezone.now()
    record_wallet(member, api.get_user_offers(member.sessionm_profile.user_id), 10, now=now)
    simulator.redeem(redeemed)
    offers = {o["id"]: o for o in api.get_user_offers(member.sessionm_profile.user_id)}
    # In the window, but redeemed meanwhile; and a wallet not read again until after the offer ended.
    record_wallet(member, [offers[redeemed]], 10, now=now + timedelta(days=25))
    record_wallet(member, [offers[lapsed]], 10, now=now + timedelta(days=31))
    assert SessionMOffer.objects.get(offer_id=redeemed).redeemed
    assert events(EventType.OFFER_EXPIRING) == [] and len(events(EventType.OFFER_ISSUED)) == 2


def test_eligible_campaigns_by_external_id_when_the_profile_has_no_user_id_yet(connection, sandbox):
    member = new_member(connection.client)
    # Created at SessionM, its answer lost: the portal knows no user id; SessionM knows the external id.
    sandbox.users["u-lost"] = {"id": "u-lost", "external_id": f"portal-{member.pk}"}
    sandbox.by_external_id[f"portal-{member.pk}"] = "u-lost"
    outcome = eligible_campaigns(member)
    assert outcome.ok and "Mobile Tuesdays" in outcome.message and "Snack box promotion" in outcome.message
    [read] = [r for r in sandbox.requests if r["path"].endswith("/campaigns")]
    assert read["path"].endswith(f"/external/users/portal-{member.pk}/campaigns") and read["method"] == "GET"


def test_expired_and_redeemed_offers_are_never_announced(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    give(member, end_date=local_day(connection.client, -1))
    redeemed = give(member, end_date=local_day(connection.client, 3))
    simulator.redeem(redeemed)
    scan_offers()
    assert events(EventType.OFFER_ISSUED) == [] and events(EventType.OFFER_EXPIRING) == []
    assert SessionMOffer.objects.count() == 2


def test_the_expiring_message_states_the_offer_and_the_clients_date(connection, sandbox):
    client = connection.client
    client.time_zone, client.date_format = "America/New_York", "d/m/Y"
    client.save()
    member = wallet_member(connection)
    member.refresh_from_db()
    end = local_day(client, 5)
    give(member, name="Snack box", description="Crunchy", end_date=end)
    sms = ConnectionFactory(client=client, vendor="attentive", status=Connection.Status.ACTIVE)
    MessageTemplate.objects.create(
        client=client,
        event_type=EventType.OFFER_EXPIRING,
        connection=sms,
        text="{offer_name} ({offer_description}) ends {expires_on}",
    )
    scan_offers()
    plan_messages()
    day = timezone.datetime.fromisoformat(end)
    assert OutboundMessage.objects.get().body == f"Snack box (Crunchy) ends {day:%d/%m/%Y}"


def test_a_run_killed_midway_loses_and_repeats_nothing(connection, sandbox):
    members = [wallet_member(connection, n) for n in range(1, 5)]
    for member in members:
        member.refresh_from_db()
        give(member, end_date=local_day(connection.client, 2))
    # SessionM goes down after two wallets: the run stops there; what it recorded is committed with the cursor.
    sandbox.fail_after_reads = 2
    counts = scan_offers()
    assert counts["members"] == 2 and counts["stopped"] == 1
    assert OfferScan.objects.get().last_member_id == members[1].pk
    assert len(events(EventType.OFFER_ISSUED)) == 2
    # A worker killed in the next run leaves its lease behind; once it runs out, the scan goes on from the cursor.
    OfferScan.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    sandbox.fail_after_reads = 0
    scan_offers()
    scan_offers()
    assert len(events(EventType.OFFER_ISSUED)) == 4 and len(events(EventType.OFFER_EXPIRING)) == 4
    assert sorted(e.member_id for e in events(EventType.OFFER_EXPIRING)) == [m.pk for m in members]


def test_overlapping_runs_make_each_event_once(connection, sandbox):
    member = wallet_member(connection)
    member.refresh_from_db()
    give(member, end_date=local_day(connection.client, 4))
    # A second run while the first holds the scan does nothing.
    scan = claim_scan(connection)
    assert scan_connection(connection) == {"busy": 1}
    # Two runs that read the same wallet anyway (a lease that ran out under a slow run) record each event once.
    offers = sessionm_api(connection).get_user_offers(member.sessionm_profile.user_id)
    first = record_wallet(member, offers, 10)
    second = record_wallet(member, offers, 10)
    assert first["issued"] == 1 and first["expiring"] == 1 and second.get("issued", 0) == 0
    assert len(events(EventType.OFFER_ISSUED)) == 1 and len(events(EventType.OFFER_EXPIRING)) == 1
    OfferScan.objects.filter(pk=scan.pk).update(claimed_until=None)
    scan_offers()
    assert len(events(EventType.OFFER_ISSUED)) == 1 and len(events(EventType.OFFER_EXPIRING)) == 1


def test_the_scan_covers_a_client_over_several_runs_at_its_rate(connection, sandbox):
    slow = Connection(settings={"rate_limit_per_second": 0.01}, vendor="sessionm")
    assert members_per_run(slow) == 3  # 300 s of reads at 0.01/s
    for n in range(1, 8):
        member = wallet_member(connection, n)
        member.refresh_from_db()
        give(member, days=30)
    reads = []
    for _ in range(3):
        before = sandbox.wallet_reads
        scan_offers(limit=3)
        reads.append(sandbox.wallet_reads - before)
    assert reads == [3, 3, 1] and OfferScan.objects.get().passes == 1
    assert len(events(EventType.OFFER_ISSUED)) == 7


def test_a_slow_sessionm_stops_the_run_at_its_time_budget_and_the_next_goes_on(connection, sandbox, settings):
    members = [wallet_member(connection, n) for n in range(1, 4)]
    for member in members:
        member.refresh_from_db()
        give(member, days=30)
    settings.SESSIONM_SCAN_SECONDS = 0  # every read is over the budget: one wallet per run
    counts = scan_offers()
    assert counts["members"] == 1 and counts["out_of_time"] == 1 and "passes_completed" not in counts
    assert OfferScan.objects.get().last_member_id == members[0].pk and OfferScan.objects.get().claimed_until is None
    scan_offers()
    scan_offers()
    assert sandbox.wallet_reads == 3 and OfferScan.objects.get().passes == 1
    assert sorted(e.member_id for e in events(EventType.OFFER_ISSUED)) == [m.pk for m in members]


def test_only_members_reachable_by_sms_are_read(connection, sandbox):
    reachable = wallet_member(connection, 1)
    opted_out = in_sync(new_member(connection.client, 2, opted_in=False))
    for member in (reachable, opted_out):
        member.refresh_from_db()
        give(member, days=30)
    scan_offers()
    assert [e.member_id for e in events(EventType.OFFER_ISSUED)] == [reachable.pk]


def test_a_member_deleted_while_its_create_is_in_flight_is_forgotten_right_after(connection, sandbox):
    member = new_member(connection.client)
    profile_of(member)  # the reconciler stored the row and is about to send the create
    in_flight = Member.objects.get(pk=member.pk)
    member.delete()
    # The forget ran first: SessionM held no user yet.
    assert forget_profiles() == {"forgotten": 1, "deferred": 0} and sandbox.users == {}
    result = reconcile_member(connection, in_flight, MemberVendorState(confirmed={}))
    assert sandbox.users == {} and sandbox.forgotten == [result["user_id"]]
    profile = SessionMProfile.objects.get()
    assert profile.user_id == result["user_id"] and profile.forgotten_at and profile.member is None


def test_a_member_never_sent_to_sessionm_is_deleted_without_a_forget(connection, sandbox):
    member = new_member(connection.client)
    member.delete()
    assert not SessionMProfile.objects.exists() and forget_profiles() == {"forgotten": 0, "deferred": 0}


def test_deleting_a_client_takes_its_sessionm_records_along(connection, sandbox):
    in_sync(new_member(connection.client))
    connection.client.delete()
    assert not SessionMProfile.objects.exists()


def test_the_demo_gets_the_three_templates_and_an_opted_in_member_once(client_a):
    ConnectionFactory(client=client_a, vendor="attentive")
    for _ in range(2):
        demo.seed_demo(client_a)
    assert set(MessageTemplate.objects.values_list("event_type", flat=True)) == {
        EventType.SIGNED_UP,
        EventType.OFFER_ISSUED,
        EventType.OFFER_EXPIRING,
    }
    assert Member.objects.get(client=client_a).opted_in


def test_the_drift_report_reads_what_sessionm_holds(connection, sandbox):
    member = in_sync(new_member(connection.client))
    assert sync.drift(connection.client_id, read_vendors=True) == []
    sandbox.users[member.sessionm_profile.user_id]["email"] = "changed-at-sessionm@example.com"
    [found] = sync.drift(connection.client_id, read_vendors=True)
    assert found.vendor == "sessionm" and "email" in found.reason


def test_a_user_sessionm_lost_is_passed_but_a_wrong_store_stops_the_run(connection, sandbox):
    first, second = wallet_member(connection, 1), wallet_member(connection, 2)
    second.refresh_from_db()
    give(second, days=30)
    del sandbox.users[first.sessionm_profile.user_id]
    counts = scan_offers()
    assert counts["unknown_users"] == 1 and counts["issued"] == 1 and counts["passes_completed"] == 1
    connection.settings = {**connection.settings, "store_id": "another-store"}
    connection.save()
    counts = scan_offers()
    assert counts == {"stopped": 1} and OfferScan.objects.get().last_member_id == 0


def test_the_jobs_are_scheduled_and_each_run_is_recorded(connection, sandbox):
    ensure_schedules()
    scan = PeriodicTask.objects.get(task="sessionm.scan_offers")
    assert scan.crontab.minute == "*/15" and PeriodicTask.objects.filter(task="sessionm.forget_profiles").exists()
    member = wallet_member(connection)
    member.refresh_from_db()
    give(member, days=30)
    tasks.scan_offers.apply()
    run = JobRun.objects.get(job="sessionm.scan_offers")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.counts["issued"] == 1
