"""The holds of long runs on their work — a Bazaarvoice pull, a SessionM wallet scan — over real HTTP against the
simulators: a run renews its hold as it makes progress, so a live run is never taken over, a killed run blocks the
work for at most one short lease, and a run whose hold was taken over stops rather than both running."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.models import PullState, Review
from integrations.models import Client, Connection
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.sessionm.connection import sessionm_api
from integrations.sessionm.models import OfferScan, SessionMOffer
from integrations.sessionm.offers import (
    ScanTakenOver,
    claim_scan,
    reachable_members,
    read_wallet,
    release_scan,
    scan_offers,
)
from members import sync
from members.models import EventType, LoyaltyEvent, Member, MemberVendorState
from tests.factories import MemberFactory, simulator_connection

pytestmark = pytest.mark.django_db(transaction=True)
# A killed run may block its work this long at most (it held it for 11 to 15 minutes before runs renewed their holds,
# then two minutes; when its run is closed as interrupted, not even that: tests/test_lease_holders.py).
ONE_LEASE = timedelta(seconds=45)


# --- Bazaarvoice pulls ---------------------------------------------------------------------------------------------


@pytest.fixture
def bv(bazaarvoice_connection, settings):
    settings.VENDOR_RETRY_BACKOFF_SECONDS = 0.01
    bazaarvoice_simulator.generate(30, days=1)  # moderated before today: due now
    return bazaarvoice_connection


def credits() -> Counter[str]:
    """How many credits Annex Cloud applied per customId."""
    return Counter(key for key, answer in annex_cloud_simulator.state.points.items() if answer["activity"] == "CREDIT")


def pull_pages(connection: Connection, lease: bazaarvoice.PullLease, now: datetime) -> None:
    """What a claimed run does after settling pending reviews: page from the cursor, renewing its hold."""
    state = PullState.objects.get(pk=lease.state_id)
    context = bazaarvoice.Context.of(connection)
    api = bazaarvoice.bazaarvoice_api(connection)
    bazaarvoice.pull_pages(api, context, state, bazaarvoice.RunCounts(), (now, None), lease)


def test_a_pull_that_renews_its_lease_is_not_taken_over(bv):
    started = datetime.now(UTC)
    lease = bazaarvoice.claim(PullState.objects.create(connection=bv), started)
    claimed_until = lease.until

    pull_pages(bv, lease, started)

    # Each review settled and each page read pushed the hold on: after the end of the hold it claimed with, another
    # run still finds the pull held.
    assert lease.until > claimed_until
    meanwhile = claimed_until + (lease.until - claimed_until) / 2
    assert bazaarvoice.claim(PullState.objects.get(connection=bv), meanwhile) is None
    assert bazaarvoice.pull_reviews(bv, now=meanwhile).counts == {"skipped": 1}
    assert PullState.objects.get(connection=bv).lease_until == lease.until


def test_a_killed_pull_is_taken_over_once_its_lease_runs_out(bv):
    killed_at = datetime.now(UTC)
    killed = bazaarvoice.claim(PullState.objects.create(connection=bv), killed_at)  # and never heard of again

    held = bazaarvoice.pull_reviews(bv, now=killed_at + ONE_LEASE / 2)
    resumed = bazaarvoice.pull_reviews(bv, now=killed_at + ONE_LEASE + timedelta(seconds=1))

    assert killed.until - killed_at <= ONE_LEASE
    assert held.counts == {"skipped": 1}
    assert resumed.outcome.ok, resumed.outcome.message
    assert Review.objects.count() == 30
    awarded = Review.objects.filter(outcome=Review.Outcome.AWARDED)
    assert credits() == Counter({review.award_key: 1 for review in awarded})
    assert PullState.objects.get(connection=bv).lease_until is None


def test_a_pull_that_lost_its_lease_stops_and_leaves_the_pull_to_the_run_that_took_it(bv):
    started = datetime.now(UTC)
    state = PullState.objects.create(connection=bv)
    stalled = bazaarvoice.claim(state, started)
    # The first run went a whole lease without a sign of progress: a second one takes the pull over.
    taker = bazaarvoice.claim(PullState.objects.get(pk=state.pk), stalled.until + timedelta(seconds=1))
    assert taker is not None

    with pytest.raises(bazaarvoice.LeaseLost):
        pull_pages(bv, stalled, started)

    # It stopped at its first renewal (after the review it was settling) and wrote nothing to the pull's state.
    assert Review.objects.count() == 1
    assert not stalled.release(last_run_result="stalled")
    state.refresh_from_db()
    assert (state.cursor, state.lease_until, state.last_run_result) == (None, taker.until, "")
    # The run that took over pulls everything, each reviewer credited once.
    pull_pages(bv, taker, started)
    assert Review.objects.count() == 30
    assert set(credits().values()) == {1}
    assert len(credits()) == Review.objects.filter(outcome=Review.Outcome.AWARDED).count()


# --- SessionM wallet scans -----------------------------------------------------------------------------------------


def sessionm_with_an_offer_in_each_wallet(client: Client) -> Connection:
    """An active SessionM connection and three members opted in with a profile, each wallet holding one offer (the
    simulator must be up: `sessionm_sandbox`)."""
    connection = simulator_connection(client, "sessionm", sessionm_simulator)
    for n in range(1, 4):
        fields = {"phone": f"+1404555{n:04d}", "email": f"m{n}@example.com", "first_name": f"M{n}", "opted_in": True}
        member = MemberFactory(client=client, **fields)
        sync.record_change(member, set(fields), {})
        assert sync.reconcile(member.pk, "sessionm").status == MemberVendorState.Status.IN_SYNC
        member.refresh_from_db()
        sessionm_simulator.add_offer({"user_id": member.sessionm_profile.user_id, "name": "Fries", "days": 30})
    return connection


@pytest.fixture
def scanned(sessionm_sandbox, client_a):
    """An active SessionM connection and three members opted in with a profile, each wallet holding one offer."""
    return sessionm_with_an_offer_in_each_wallet(client_a)


def members_of(connection: Connection) -> list[Member]:
    return reachable_members(connection, 0, 10)


def offer_events() -> int:
    return LoyaltyEvent.objects.filter(event_type=EventType.OFFER_ISSUED).count()


def test_a_scan_that_renews_its_lease_is_not_taken_over(scanned):
    scan = claim_scan(scanned)
    claimed_until = scan.claimed_until
    api = sessionm_api(scanned)

    for member in members_of(scanned)[:2]:
        read_wallet(api, scanned, scan, member, Counter())

    # Each wallet recorded pushed the hold on: after the end of the hold it claimed with, the scan is still held.
    assert scan.claimed_until > claimed_until
    meanwhile = claimed_until + (scan.claimed_until - claimed_until) / 2
    assert claim_scan(scanned, now=meanwhile) is None
    assert OfferScan.objects.get().claimed_until == scan.claimed_until


def test_a_killed_scan_is_taken_over_once_its_lease_runs_out(scanned):
    killed = claim_scan(scanned)  # and never heard of again

    assert scan_offers() == {"busy": 1}
    # One lease and a second later (the kill's hold written that long ago), the next run takes the scan over.
    OfferScan.objects.update(claimed_until=F("claimed_until") - ONE_LEASE - timedelta(seconds=1))
    counts = scan_offers()

    assert killed.claimed_until - timezone.now() <= ONE_LEASE
    assert counts["members"] == 3 and counts["passes_completed"] == 1
    assert SessionMOffer.objects.count() == 3 and offer_events() == 3
    assert OfferScan.objects.get().claimed_until is None


def test_a_scan_that_lost_its_lease_stops_and_commits_nothing(scanned):
    stalled = claim_scan(scanned)
    # The first run went a whole lease without recording a wallet: a second one takes the scan over.
    taker = claim_scan(scanned, now=stalled.claimed_until + timedelta(seconds=1))
    assert taker is not None
    first = members_of(scanned)[0]

    with pytest.raises(ScanTakenOver):
        read_wallet(sessionm_api(scanned), scanned, stalled, first, Counter())

    # The wallet it was recording is not committed, nor its cursor; the hold stays the taker's.
    assert not SessionMOffer.objects.exists() and offer_events() == 0
    release_scan(stalled)
    scan = OfferScan.objects.get()
    assert (scan.last_member_id, scan.claimed_until) == (0, taker.claimed_until)
