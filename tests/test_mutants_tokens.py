"""integrations/first_orion/tokens.py's rules that the flow tests left open (found by `make mutate`): a verify
drops the stored token before proving the credentials, and a token First Orion refused is never handed out again
while another caller fetches the new one. Real HTTP to the First Orion simulator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from integrations import connections
from integrations.first_orion import flows, tokens
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.api import BadCredentials, TokenRefused
from integrations.first_orion.models import AccessToken
from integrations.http import Unavailable
from integrations.models import Connection
from tests.factories import ConnectionFactory
from tests.meanwhile import at_query, statement

# Longer than any poll of the token source (0.05 s steps) on a loaded machine, far shorter than its 35 s deadline.
STILL_WAITING_SECONDS = 2.0


@pytest.fixture
def fo(live_server, settings, client_a):
    """Client A's active First Orion connection on the simulator, the simulator reset."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    simulator.state.__init__()
    connection = ConnectionFactory(
        client=client_a,
        vendor="first_orion",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(simulator.DEMO_SECRETS),
        settings=dict(simulator.DEMO_SETTINGS),
    )
    yield simulator.state, connection
    simulator.state.__init__()


@pytest.mark.django_db
def test_verify_proves_the_credentials_with_a_new_token_while_the_stored_one_is_still_valid(fo):
    state, connection = fo
    stored = flows.token_source(connection).current()
    assert connections.verify(connection).ok
    assert state.token_calls == 2
    row = AccessToken.objects.get(connection=connection)
    assert row.access_token != stored and row.access_token in state.tokens


@pytest.mark.django_db
def test_a_verify_that_first_orion_refuses_leaves_no_token_stored(fo):
    state, connection = fo
    flows.token_source(connection).current()
    connection.secrets = {"client_secret": "rotated-but-mistyped-0000"}
    connection.save()
    assert not connections.verify(connection).ok
    assert state.token_calls == 2
    assert AccessToken.objects.get(connection=connection).access_token == ""


@pytest.mark.django_db(transaction=True)
def test_a_refused_token_is_not_handed_out_while_another_caller_fetches_the_new_one(fo):
    """After a 401 the stored token is dead at once for every caller: one who cannot take the lease (another worker
    is refreshing) waits for the new token instead of sending the refused one again."""
    state, connection = fo
    refused = flows.token_source(connection).current()
    AccessToken.objects.filter(connection=connection).update(
        lease_until=timezone.now() + timedelta(seconds=30), lease_owner="another-worker"
    )
    handed_out: list[str] = []

    def caller_after_a_401() -> None:
        try:
            handed_out.append(flows.token_source(connection).refused(refused))
        finally:
            db.close()

    caller = threading.Thread(target=caller_after_a_401)
    caller.start()
    caller.join(timeout=STILL_WAITING_SECONDS)
    assert caller.is_alive() and handed_out == []  # waiting, not calling with the refused token
    AccessToken.objects.filter(connection=connection).update(lease_until=None, lease_owner="")  # the other died
    caller.join(timeout=30)
    assert not caller.is_alive()
    assert handed_out != [refused] and handed_out[0] in state.tokens and state.token_calls == 2


@pytest.mark.django_db
def test_a_401_to_the_new_token_raises_token_refused_with_first_orions_words_and_status(fo):
    state, connection = fo
    source = flows.token_source(connection)
    with pytest.raises(TokenRefused) as caught:
        source.with_token(lambda token: source.api.token_health(f"revoked-{token}"))  # every token is refused
    refused = caught.value
    assert (refused.vendor, refused.message, refused.status) == ("First Orion", "Unauthorized", 401)
    assert str(refused) == "First Orion: Unauthorized (HTTP 401)"
    assert state.token_calls == 2 and state.health_calls == 2


@pytest.mark.django_db
def test_a_refused_token_expires_only_its_own_connections_row(fo, client_b):
    """Two connections' tokens stored at the same instant: a 401 to one leaves the other's in use."""
    state, connection = fo
    other = ConnectionFactory(
        client=client_b,
        vendor="first_orion",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(simulator.DEMO_SECRETS),
        settings=dict(simulator.DEMO_SETTINGS),
    )
    refused = flows.token_source(connection).current()
    others = flows.token_source(other).current()
    same_instant = AccessToken.objects.get(connection=connection).issued_at
    AccessToken.objects.filter(connection=other).update(issued_at=same_instant)
    flows.token_source(connection).refused(refused)
    assert flows.token_source(other).current() == others and state.token_calls == 3


@pytest.mark.django_db(transaction=True)
def test_a_caller_outwaits_a_lease_left_by_a_refresher_that_died_and_takes_it_over(fo, monkeypatch):
    """A caller waits for another's refresh a little longer than a lease lasts, so a refresher that died is taken
    over, never given up on. The lease is shortened to 1 s here (the wait follows it) to keep the test short."""
    state, connection = fo
    monkeypatch.setattr(tokens, "LEASE_SECONDS", 1.0)
    flows.token_source(connection).current()
    past = timezone.now() - timedelta(seconds=1)
    AccessToken.objects.filter(connection=connection).update(
        refresh_at=past,
        expires_at=past,
        lease_until=timezone.now() + timedelta(seconds=tokens.LEASE_SECONDS),
        lease_owner="a-refresher-that-died",
    )
    fresh = flows.token_source(connection).current()
    assert fresh in state.tokens and state.token_calls == 2


@pytest.mark.django_db(transaction=True)
def test_a_caller_gives_up_on_a_refresh_that_outlasts_the_lease_and_says_why(fo, monkeypatch):
    """A lease that never lapses (a refresher stuck, or a clock gone wrong): the caller stops waiting 5 s after a
    lease would have ended (shortened to 0.2 s here) with an error that says so, instead of waiting forever."""
    state, connection = fo
    monkeypatch.setattr(tokens, "LEASE_SECONDS", 0.2)
    flows.token_source(connection).current()
    past = timezone.now() - timedelta(seconds=1)
    AccessToken.objects.filter(connection=connection).update(
        refresh_at=past, expires_at=past, lease_until=timezone.now() + timedelta(hours=1), lease_owner="stuck"
    )
    with pytest.raises(Unavailable) as caught:
        flows.token_source(connection).current()
    assert (caught.value.vendor, caught.value.message) == (
        "First Orion",
        "a token refresh by another worker did not finish in time",
    )
    assert state.token_calls == 1


@pytest.mark.django_db
def test_a_failed_token_call_hands_the_lease_back_at_once(fo):
    """Otherwise every caller would wait out the whole lease (30 s) before anyone tried again."""
    state, connection = fo
    connection.secrets = {"client_secret": "wrong-secret-value"}
    connection.save()
    with pytest.raises(BadCredentials):
        flows.token_source(connection).current()
    row = AccessToken.objects.get(connection=connection)
    assert row.lease_until is None and row.access_token == "" and state.token_calls == 1


@pytest.mark.django_db
def test_a_refresh_leases_only_its_own_connections_row(fo, client_b):
    _, connection = fo
    other = ConnectionFactory(
        client=client_b,
        vendor="first_orion",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(simulator.DEMO_SECRETS),
        settings=dict(simulator.DEMO_SETTINGS),
    )
    AccessToken.objects.create(connection=other)  # no token yet, as this connection's row before its refresh
    flows.token_source(connection).current()
    untouched = AccessToken.objects.get(connection=other)
    assert (untouched.lease_until, untouched.lease_owner, untouched.access_token) == (None, "", "")


# --- Races between callers, made to happen (issue 19) -----------------------------------------------------------
# Another caller (its own connection, in a thread) is let in at the instant between one caller's read of the token
# row and its write, by a wrapper around the test's own queries; the flow itself runs unchanged.


def before_the_write(field_name: str, other: Callable[[], None], nth: int = 1):
    """Runs `other` meanwhile, just before the `nth` UPDATE of the token row naming `field_name`."""
    return at_query(statement("UPDATE", "first_orion_accesstoken", field_name), other, nth=nth)


@pytest.mark.django_db(transaction=True)
def test_a_caller_that_read_the_row_before_another_refreshed_does_not_fetch_a_second_token(fo):
    state, connection = fo
    flows.token_source(connection).current()
    AccessToken.objects.filter(connection=connection).update(refresh_at=timezone.now() - timedelta(seconds=1))
    another = flows.token_source(connection)

    with db.execute_wrapper(before_the_write('"lease_until"', another.current)):
        token = flows.token_source(connection).current()

    assert state.token_calls == 2  # the first token, and the other caller's refresh: not a third
    assert token in state.tokens and AccessToken.objects.get(connection=connection).lease_until is None


@pytest.mark.django_db(transaction=True)
def test_expiring_a_refused_token_never_expires_the_one_another_caller_just_stored(fo):
    state, connection = fo
    old = flows.token_source(connection).current()
    another = flows.token_source(connection)

    with db.execute_wrapper(before_the_write('"expires_at"', lambda: another.refused(old))):
        flows.token_source(connection).expire(old)

    row = AccessToken.objects.get(connection=connection)
    assert row.access_token != old and row.access_token in state.tokens
    assert row.expires_at > timezone.now() and row.refresh_at > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_a_refresher_whose_lease_was_taken_over_stores_nothing_over_the_new_holders_token(fo):
    state, connection = fo
    source = flows.token_source(connection)
    source.current()
    AccessToken.objects.filter(connection=connection).update(refresh_at=timezone.now() - timedelta(seconds=1))
    another = flows.token_source(connection)

    def lease_lapsed_and_taken_over() -> None:
        AccessToken.objects.filter(connection=connection).update(lease_until=timezone.now() - timedelta(seconds=1))
        another.current()

    # Just before this refresher stores its token (its lease lapsed meanwhile), the other takes the lease over,
    # fetches and stores its own.
    with db.execute_wrapper(before_the_write('"issued_at"', lease_lapsed_and_taken_over)):
        mine = source.current()

    row = AccessToken.objects.get(connection=connection)
    assert state.token_calls == 3 and row.access_token != mine and row.access_token in state.tokens
    assert row.lease_until is None


@pytest.mark.django_db(transaction=True)
def test_a_failed_token_call_releases_only_its_own_lease(fo):
    _, connection = fo
    connection.secrets = {**connection.secrets, "client_secret": "mistyped-0000"}  # First Orion refuses the token
    connection.save()
    source = flows.token_source(connection)

    def another_took_the_lapsed_lease() -> None:
        AccessToken.objects.filter(connection=connection).update(
            lease_until=timezone.now() + timedelta(seconds=30), lease_owner="another-worker"
        )

    # The second write naming the lease: after taking it (the first), the release once the token call failed.
    release = before_the_write('"lease_until"', another_took_the_lapsed_lease, nth=2)
    with db.execute_wrapper(release), pytest.raises(BadCredentials):
        source.current()

    row = AccessToken.objects.get(connection=connection)
    assert row.lease_owner == "another-worker" and row.lease_until > timezone.now()


@pytest.mark.django_db(transaction=True)
def test_a_lease_write_sqlite_finds_locked_is_a_lease_not_won(fo):
    """SQLite: another writer holds the database at the instant of the compare-and-set ("database is locked"): this
    caller has not won the lease, so it fetches no token; it hands out the stored one, still valid."""
    if db.vendor != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    state, connection = fo
    stored = flows.token_source(connection).current()
    AccessToken.objects.filter(connection=connection).update(refresh_at=timezone.now() - timedelta(seconds=1))
    holding, release = threading.Event(), threading.Event()

    def another_writer_holds_the_database() -> None:
        try:
            with transaction.atomic():  # BEGIN IMMEDIATE: the write lock, until it commits
                AccessToken.objects.filter(connection=connection).update(lease_owner="")
                holding.set()
                release.wait(10)
        finally:
            db.close()

    writer = threading.Thread(target=another_writer_holds_the_database)

    def locked_at_the_lease(execute, sql, params, many, context):
        if sql.lstrip().startswith("UPDATE") and '"lease_until"' in sql and not writer.is_alive():
            writer.start()
            assert holding.wait(10)
            try:
                return execute(sql, params, many, context)
            finally:
                release.set()
        return execute(sql, params, many, context)

    with db.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout = 100")  # this connection gives up on the lock at once
    try:
        with db.execute_wrapper(locked_at_the_lease):
            token = flows.token_source(connection).current()
    finally:
        release.set()
        writer.join()
        db.close()  # its busy timeout back to the settings' for the next test

    assert token == stored and state.token_calls == 1
