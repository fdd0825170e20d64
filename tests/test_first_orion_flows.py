"""First Orion flows over real HTTP against the simulator: pushes to segments, members and numbers (dedup,
personalisation, tracing), every documented failure, a push killed midway, lost answers, and the one shared token
(refreshed by exactly one caller, redacted from call rows)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from integrations import connections, http, ratelimit
from integrations.first_orion import destinations, flows
from integrations.first_orion import sandbox as simulator
from integrations.first_orion.api import BadCredentials
from integrations.first_orion.models import AccessToken, Push, PushBatch, PushRecipient
from integrations.models import Connection, JobRun, VendorCall
from integrations.retention import prune_old_records
from members import timeline
from members.models import Member, Segment
from members.segments import add_members


@pytest.fixture
def fo(fo_simulator, fo_connection):
    """Client A's active First Orion connection on the simulator (batches of 2), the simulator reset."""
    return fo_simulator, fo_connection


def member(client, n: int, **fields) -> Member:
    values = {"phone": f"+1404555{n:04d}", "opted_in": True, "first_name": f"Ann{n}", "email": f"m{n}@x.com"}
    return Member.objects.create(client=client, **{**values, **fields})


def planned(push: Push) -> Push:
    """The push's batches built, as its task does before sending them (nothing is sent)."""
    assert flows.claim(push)
    connection = Connection.objects.get(client_id=push.client_id, vendor="first_orion")
    assert flows.build_batches(push, flows.batch_size(connection))
    flows.release(push)
    push.refresh_from_db()
    return push


def control(fo_state) -> dict:
    with fo_state.lock:
        return {"batches": fo_state.batches, "received": dict(fo_state.received), "tokens": fo_state.token_calls}


def test_a_segment_push_skips_and_explains_members_and_sends_each_number_once(fo, content, client_a):
    state, _ = fo
    reachable = [member(client_a, n) for n in range(3)]
    skipped = [
        member(client_a, 10, phone=""),
        member(client_a, 11, phone="+1555"),
        member(client_a, 12, opted_in=False),
        # The same number as the first member, as typed (stored numbers are unique only as written).
        member(client_a, 13, phone="(404) 555-0000"),
    ]
    segment = Segment.objects.create(client=client_a, name="Callers")
    add_members(segment, Member.objects.filter(pk__in=[m.pk for m in reachable + skipped]))

    plan = flows.preview(content, segment=segment)
    assert len(plan.destinations) == 3 and plan.batches(2) == 2
    assert dict(plan.skipped) == {
        destinations.SKIP_NO_PHONE: 1,
        destinations.SKIP_INVALID_PHONE: 1,
        destinations.SKIP_OPTED_OUT: 1,
        destinations.SKIP_DUPLICATE: 1,
    }

    push = flows.create_push(content, segment=segment)
    flows.run_push(push.pk)

    push.refresh_from_db()
    assert (push.status, push.destinations, push.batches_total, push.batches_sent) == ("sent", 3, 2, 2)
    assert push.skipped[destinations.SKIP_DUPLICATE] == 1
    assert state.received == {m.phone: 1 for m in reachable}
    assert sorted(state.tracking_ids) == sorted(f"push-{push.pk}-m{m.pk}" for m in reachable)
    assert state.last_body["aNumbers"] == simulator.DEMO_A_NUMBERS
    assert state.last_body["destinations"][0]["personalization"] == {"MY_VAR": "Hi Ann2"}
    assert state.last_body["ttlSeconds"] == "960" and state.last_body["keepAfterCall"] == "false"
    assert all(b.request_id for b in push.batches.all())
    assert state.token_calls == 1  # one token for the whole push


class StatusAtTheLimit:
    """First Orion's rate limiter for the connection (where api_for finds it), reading the batches' statuses each
    time a call waits there; `during_first_wait` runs once, at the first wait, as another worker would act then."""

    def __init__(self, rate: float, during_first_wait=None) -> None:
        self.rate = rate
        self.seen: list[set[str]] = []
        self.during_first_wait = during_first_wait

    def acquire(self) -> float:
        self.seen.append(set(PushBatch.objects.values_list("status", flat=True)))
        action, self.during_first_wait = self.during_first_wait, None
        if action is not None:
            action()
        return 0.0


def limit_for(monkeypatch, connection, during_first_wait=None) -> StatusAtTheLimit:
    # The process's own limiter even when the suite runs with Redis (which would give a shared-window limiter).
    monkeypatch.setattr(ratelimit, "cache_is_shared", lambda: False)
    limit = StatusAtTheLimit(connection.rate_limit_per_second, during_first_wait)
    monkeypatch.setitem(http._buckets, f"connection:{connection.pk}", limit)
    return limit


def test_a_batch_waiting_for_the_rate_limit_is_not_sending_even_when_its_first_token_is_refused(
    fo, content, client_a, monkeypatch
):
    """Slot, token, `sending`, send: a batch is committed `sending` only once the limit let it go, so a worker
    killed while it waits (seconds on a busy connection) leaves it pending, not uncertain; a 401 puts it back to
    pending before its repeat waits again."""
    state, connection = fo
    for n in range(4):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "401", 1
    limit = limit_for(monkeypatch, connection)
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and state.batches == 2
    # Batch 1: its wait, its token's; the 401, then the repeat's wait and its new token's; batch 2: its wait.
    assert len(limit.seen) == 5
    assert all("sending" not in statuses for statuses in limit.seen), limit.seen


def test_a_batch_answered_503_is_pending_while_its_retry_waits(fo, content, client_a, monkeypatch):
    """First Orion did not act on a 503: while the HTTP layer waits to send it again (backoff, then the limit), the
    batch is not `sending`, so a worker killed then leaves nothing uncertain."""
    state, connection = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "503", 1
    limit = limit_for(monkeypatch, connection)
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and state.batches == 1
    assert len(limit.seen) >= 2  # the first attempt's wait and the retry's
    assert all("sending" not in statuses for statuses in limit.seen), limit.seen


class Killed(BaseException):
    """The worker dies (not an exception any code catches)."""


def test_a_push_killed_while_its_batch_waits_for_the_limit_sends_that_batch_when_resumed(
    fo, content, client_a, monkeypatch
):
    state, connection = fo
    for n in range(2):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())

    def worker_killed() -> None:
        raise Killed

    limit_for(monkeypatch, connection, during_first_wait=worker_killed)
    with pytest.raises(Killed):
        flows.run_push(push.pk)
    Push.objects.filter(pk=push.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert (push.status, push.batches_sent, push.failures) == ("sent", 1, 0)
    assert state.received == {"+14045550000": 1, "+14045550001": 1}


def test_a_token_refused_while_a_batch_waited_for_the_limit_is_not_the_one_it_carries(
    fo, content, client_a, monkeypatch
):
    """The token is taken after the wait: one another worker saw refused (and replaced) meanwhile is not sent."""
    state, connection = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    stale = flows.token_source(connection).current()

    def another_worker_is_refused_the_token() -> None:
        with state.lock:
            del state.tokens[stale]  # First Orion revokes it; another worker's call gets the 401...
        flows.token_source(connection).refused(stale)  # ...and that worker fetches the new token

    limit_for(monkeypatch, connection, during_first_wait=another_worker_is_refused_the_token)
    flows.run_push(push.pk)
    push.refresh_from_db()
    fresh = AccessToken.objects.get(connection=connection).access_token
    assert push.status == "sent" and fresh != stale
    assert state.batch_calls == [(fresh, 200)]  # no request with the refused token: no extra 401
    assert state.token_calls == 2


def test_a_batch_another_runner_took_over_while_this_one_waited_is_not_sent_by_it(fo, content, client_a, monkeypatch):
    state, connection = fo
    for n in range(4):
        member(client_a, n)
    push = planned(flows.create_push(content, members=Member.objects.all()))
    first = push.batches.get(index=0)

    def claim_lapses_and_another_runner_sends_batch_1() -> None:
        PushBatch.objects.filter(pk=first.pk).update(status="sent", request_id="by-the-other-runner")

    limit_for(monkeypatch, connection, during_first_wait=claim_lapses_and_another_runner_sends_batch_1)
    flows.run_push(push.pk)
    assert state.batches == 1 and sorted(state.received) == sorted(push.batches.get(index=1).numbers)
    assert PushBatch.objects.get(pk=first.pk).request_id == "by-the-other-runner"


def test_a_batch_whose_token_cannot_be_had_never_leaves_and_the_push_waits(fo, content, client_a):
    state, connection = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    connection.secrets = {"client_secret": "revoked-secret-0000"}
    connection.save()
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "waiting" and "refused to grant a token" in push.error
    assert list(push.batches.values_list("status", flat=True)) == ["pending"]
    assert state.batch_calls == [] and state.token_calls == 1


def test_numbers_are_deduplicated_and_traced_by_index(fo, content):
    state, _ = fo
    push = flows.create_push(content, numbers=["+14045550001", "(404) 555-0002", "+14045550001", "12"])
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and push.destinations == 2
    assert push.skipped == {destinations.SKIP_DUPLICATE: 1, destinations.SKIP_INVALID_PHONE: 1}
    assert sorted(state.tracking_ids) == [f"push-{push.pk}-n0", f"push-{push.pk}-n1"]
    # Numbers have no member: a variable that needs one is not sent.
    assert "personalization" not in state.last_body["destinations"][0]


def test_unregistered_a_numbers_fail_the_push_despite_the_200(fo, content, client_a):
    state, _ = fo
    content.a_numbers = [simulator.UNREGISTERED_A_NUMBER]
    content.save()
    for n in range(5):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "failed" and push.batches_sent == 0
    assert "upload these numbers in the branded communication content portal" in push.error.lower()
    statuses = list(push.batches.values_list("status", flat=True))
    assert statuses == ["failed", "cancelled", "cancelled"]
    assert state.batches == 0
    assert push in flows.failed_pushes_since(timezone.now() - timedelta(hours=24))


def test_a_misconfigured_program_is_explained(fo, content, client_a):
    content.program_content_uuid = simulator.MISCONFIGURED_PROGRAM
    content.save()
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "failed" and "program is not set up correctly" in push.error


def test_a_401_refreshes_the_token_once_and_repeats_the_batch_once(fo, content, client_a):
    state, _ = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    source = flows.token_source(fo[1])
    source.current()
    state.tokens.clear()  # First Orion forgets the token (revoked): the stored one is refused with 401
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent"
    assert state.token_calls == 2 and state.batches == 1


def test_an_expired_token_neither_alerts_nor_turns_the_connection_failing(fo, content, client_a, site_admin):
    state, connection = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    flows.token_source(connection).current()
    before = Connection.objects.values("status", "last_check_result", "consecutive_failures").get(pk=connection.pk)
    state.tokens.clear()  # the stored token expired: the batch gets a 401, then succeeds with a new token
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and state.token_calls == 2
    after = Connection.objects.values("status", "last_check_result", "consecutive_failures").get(pk=connection.pk)
    assert after == before == {**before, "status": "active", "consecutive_failures": 0}
    assert mail.outbox == []


def test_a_401_to_a_token_just_granted_leaves_the_push_waiting_and_alerts(fo, content, client_a, site_admin):
    state, connection = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "401", 2  # the stored token and the new one are both refused
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "waiting" and "refused a token it had just granted" in push.error
    assert list(push.batches.values_list("status", flat=True)) == ["pending"]
    assert state.batches == 0 and state.token_calls == 2  # one refresh, no loop
    connection.refresh_from_db()
    assert connection.status == "failing" and len(mail.outbox) == 1


def test_a_lost_answer_makes_the_batch_uncertain_and_it_is_never_resent(fo, content, client_a):
    state, _ = fo
    for n in range(4):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "lose", 1
    flows.run_push(push.pk)
    flows.run_push(push.pk)  # a second run (a redelivered task) resends nothing
    push.refresh_from_db()
    assert push.status == "uncertain" and push.failures == 1 and push.batches_sent == 1
    assert [b.status for b in push.batches.all()] == ["uncertain", "sent"]
    assert set(state.received.values()) == {1} and len(state.received) == 4
    assert push in flows.failed_pushes_since(timezone.now() - timedelta(hours=1))


def test_a_killed_push_resumes_without_resending_and_its_sending_batch_is_uncertain(fo, content, client_a):
    state, _ = fo
    for n in range(6):
        member(client_a, n)
    push = planned(flows.create_push(content, members=Member.objects.all()))
    first, second, third = push.batches.all()
    # As a worker killed during the second batch's call leaves it: the first settled, the second `sending`.
    PushBatch.objects.filter(pk=first.pk).update(status="sent")
    PushBatch.objects.filter(pk=second.pk).update(status="sending")
    Push.objects.filter(pk=push.pk).update(status="sending", batches_sent=1, claimed_until=timezone.now())
    assert flows.resume_pushes() == {"queued": 1}
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert [b.status for b in push.batches.all()] == ["sent", "uncertain", "sent"]
    assert sorted(state.received) == sorted(third.numbers)
    assert push.status == "uncertain" and push.batches_sent == 2


def test_an_outage_defers_the_push_and_it_completes_later_without_duplicates(fo, content, client_a):
    state, _ = fo
    for n in range(4):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "503", 100
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "waiting" and "First Orion" in push.error
    assert list(push.batches.values_list("status", flat=True)) == ["pending", "pending"]
    state.fail_times = 0
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert push.status == "sent" and set(state.received.values()) == {1} and len(state.received) == 4


def test_a_disabled_connection_refuses_a_new_push_and_says_what_to_do(fo, content, client_a):
    Connection.objects.filter(pk=fo[1].pk).update(status="disabled")
    member(client_a, 1)
    with pytest.raises(flows.FirstOrionNotReady, match="verify"):
        flows.create_push(content, members=Member.objects.all())


def test_verify_gets_a_token_and_checks_its_health(fo):
    state, connection = fo
    Connection.objects.filter(pk=connection.pk).update(status="draft")
    connection.refresh_from_db()
    outcome = connections.verify(connection)
    assert outcome.ok and "granted a token" in outcome.message
    assert state.token_calls == 1 and state.health_calls == 1
    connection.refresh_from_db()
    assert connection.status == "active"


def test_verify_with_a_wrong_secret_explains_bad_credentials(fo):
    state, connection = fo
    connection.secrets = {"client_secret": "wrong-secret-value"}
    connection.save()
    outcome = connections.verify(connection)
    assert not outcome.ok and "client secret" in outcome.message and "client id" in outcome.message
    assert state.token_calls == 1


def test_the_token_is_stored_encrypted_refreshed_early_and_redacted_from_call_rows(fo, content, client_a):
    state, connection = fo
    state.token_lifetime = 30
    member(client_a, 1)
    flows.run_push(flows.create_push(content, members=Member.objects.all()).pk)
    row = AccessToken.objects.get(connection=connection)
    assert row.access_token in state.tokens
    assert abs((row.expires_at - row.refresh_at).total_seconds() - 2) < 0.1  # 30 s / 15
    with db.cursor() as cursor:
        cursor.execute("SELECT value FROM first_orion_accesstoken")
        assert row.access_token not in cursor.fetchone()[0]
    calls = json.dumps(list(VendorCall.objects.values("url", "request_headers", "request_body", "response_body")))
    assert row.access_token not in calls and simulator.CLIENT_SECRET not in calls


@pytest.mark.parametrize(
    "change",
    [{"secrets": {"client_secret": "another-secret-9f3c"}}, {"settings": {"client_id": "another-client-id"}}],
)
def test_a_token_granted_for_old_credentials_is_not_used_once_they_change(fo, change):
    state, connection = fo
    flows.token_source(connection).current()
    for name, value in change.items():
        setattr(connection, name, {**getattr(connection, name), **value})
    connection.save()
    with pytest.raises(BadCredentials):
        flows.token_source(connection).current()  # the new credentials are proven (and refused), not skipped
    assert state.token_calls == 2


def test_while_another_caller_refreshes_the_still_valid_old_token_is_used(fo):
    state, connection = fo
    old = flows.token_source(connection).current()
    now = timezone.now()
    AccessToken.objects.filter(connection=connection).update(
        refresh_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(seconds=30),
        lease_until=now + timedelta(seconds=30),
    )
    assert flows.token_source(connection).current() == old
    assert state.token_calls == 1


def test_a_lease_left_by_a_refresher_that_died_is_taken_over(fo):
    state, connection = fo
    old = flows.token_source(connection).current()
    past = timezone.now() - timedelta(seconds=1)
    AccessToken.objects.filter(connection=connection).update(refresh_at=past, expires_at=past, lease_until=past)
    new = flows.token_source(connection).current()
    assert new != old and state.token_calls == 2


@pytest.mark.django_db(transaction=True)
def test_threads_with_an_expired_token_make_exactly_one_token_request(fo):
    state, connection = fo
    flows.token_source(connection).current()
    AccessToken.objects.filter(connection=connection).update(
        refresh_at=timezone.now() - timedelta(seconds=5), expires_at=timezone.now() - timedelta(seconds=1)
    )
    state.token_calls = 0
    barrier = threading.Barrier(6)
    tokens: list[str] = []
    errors: list[Exception] = []

    def use_token() -> None:
        try:
            barrier.wait()
            tokens.append(flows.token_source(connection).current())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=use_token) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert state.token_calls == 1
    assert len(set(tokens)) == 1 and tokens[0] in state.tokens


@pytest.mark.django_db(transaction=True)
def test_an_answer_that_arrives_after_another_runner_took_over_keeps_the_counts_true(fo, content, client_a):
    state, _ = fo
    member(client_a, 1)
    push = flows.create_push(content, members=Member.objects.all())
    state.latency_ms = 1500  # the first runner's call is slow...

    def first_runner() -> None:
        try:
            flows.run_push(push.pk)
        finally:
            db.close()

    slow = threading.Thread(target=first_runner)
    slow.start()
    deadline = time.monotonic() + 5
    while not PushBatch.objects.filter(push=push, status="sending").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    # ...its claim expires meanwhile: a second runner takes the push over and finds the batch `sending`.
    Push.objects.filter(pk=push.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    flows.run_push(push.pk)
    assert PushBatch.objects.get(push=push).status == "uncertain"
    slow.join()
    push.refresh_from_db()
    batch = PushBatch.objects.get(push=push)
    assert batch.status == "sent" and batch.request_id  # First Orion's answer is the truth
    assert (push.status, push.batches_sent, push.failures) == ("sent", 1, 0)
    assert state.batches == 1


def test_a_queued_push_runs_as_a_recorded_job(fo, content, client_a, eager_celery, django_capture_on_commit_callbacks):
    state, _ = fo
    member(client_a, 1)
    with django_capture_on_commit_callbacks(execute=True):
        push = flows.create_push(content, members=Member.objects.all())
    push.refresh_from_db()
    assert push.status == "sent" and state.batches == 1
    run = JobRun.objects.get(job="first_orion.run_push")
    assert run.client == client_a and run.counts["batches_sent"] == 1


def test_a_site_admin_resends_uncertain_batches_after_checking(fo, content, client_a, admin_http, alice_http):
    state, _ = fo
    for n in range(2):
        member(client_a, n)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "lose", 1
    flows.run_push(push.pk)
    url = reverse("admin:first_orion_push_changelist")
    data = {"action": "resend_uncertain_batches", "_selected_action": [push.pk]}
    alice_http.post(url, {**data, "confirm": "yes"})
    assert PushBatch.objects.get(push=push).status == "uncertain"  # client users cannot
    page = admin_http.post(url, data).content.decode()
    assert "may already have pushed them" in page
    admin_http.post(url, {**data, "confirm": "yes"})
    assert PushBatch.objects.get(push=push).status == "pending"
    flows.run_push(push.pk)
    push.refresh_from_db()
    assert (push.status, push.failures, push.batches_sent) == ("sent", 0, 1)
    assert set(state.received.values()) == {2}  # sent twice: exactly what the admin chose, after checking


def test_a_members_timeline_shows_the_pushes_that_reached_them_and_what_came_of_each_batch(fo, content, client_a):
    """The timeline finds a member's pushes through the members each batch was planned for (PushRecipient), one
    indexed query, with the batch's outcome: here one batch sent, the other's answer lost (uncertain)."""
    state, _ = fo
    reached = [member(client_a, n) for n in range(4)]
    left_out = member(client_a, 9, opted_in=False)
    push = flows.create_push(content, members=Member.objects.all())
    state.fail, state.fail_times = "lose", 1
    flows.run_push(push.pk)
    first_batch, second_batch = push.batches.order_by("index")
    recipients = {(r.batch_id, r.member_id) for r in PushRecipient.objects.all()}
    planned_for = {(b.pk, destinations.member_pk_of(d)) for b in (first_batch, second_batch) for d in b.destinations}
    assert recipients == planned_for and len(recipients) == len(reached)
    from integrations.first_orion.timeline import timeline_entries

    with CaptureQueriesContext(db) as queries:
        list(timeline_entries(reached[0], 50))
    assert len(queries) == 1  # one indexed query, the batches' destinations left unread
    assert '"first_orion_pushbatch"."destinations"' not in queries[0]["sql"]
    for someone in reached:
        [entry] = [entry for entry in timeline.timeline(someone) if entry.kind == "push"]
        batch = first_batch if (first_batch.pk, someone.pk) in recipients else second_batch
        assert (entry.vendor, entry.title) == ("First Orion ENGAGE", f"Branded call “{content.name}”")
        assert entry.status == batch.status and entry.url == reverse("admin:first_orion_push_change", args=[push.pk])
        assert entry.detail.startswith(f"{batch} (2 destinations).")
    assert {e.status for m in reached for e in timeline.timeline(m) if e.kind == "push"} == {"sent", "uncertain"}
    assert not [entry for entry in timeline.timeline(left_out) if entry.kind == "push"]


def test_a_pushed_number_of_no_member_and_a_member_deleted_after_planning_leave_no_recipient(fo, content, client_a):
    assert destinations.member_pk_of({"customTrackingId": "push-7-n3"}) is None
    assert destinations.member_pk_of({"customTrackingId": "push-7-m42"}) == 42
    someone, gone = member(client_a, 1), member(client_a, 2)
    push = planned(flows.create_push(content, members=Member.objects.all()))
    gone.delete()
    assert list(PushRecipient.objects.values_list("member_id", flat=True)) == [someone.pk]
    assert push.batches.count() == 1


def test_finished_pushes_are_pruned_after_their_period_with_their_batches_but_an_uncertain_one_is_kept(
    fo, content, client_a, settings
):
    settings.FIRST_ORION_PUSH_RETENTION_DAYS = 90
    for n in range(3):
        member(client_a, n)
    old_sent, recent_sent, old_uncertain = (
        planned(flows.create_push(content, members=Member.objects.all())) for _ in range(3)
    )
    Push.objects.filter(pk=old_sent.pk).update(status="sent", finished_at=timezone.now() - timedelta(days=91))
    Push.objects.filter(pk=recent_sent.pk).update(status="sent", finished_at=timezone.now() - timedelta(days=89))
    Push.objects.filter(pk=old_uncertain.pk).update(status="uncertain", finished_at=timezone.now() - timedelta(days=91))
    # Failed by one batch while another's answer was lost: its uncertain batch is still evidence.
    failed_with_uncertain = planned(flows.create_push(content, members=Member.objects.all()))
    Push.objects.filter(pk=failed_with_uncertain.pk).update(
        status="failed", finished_at=timezone.now() - timedelta(days=91)
    )
    failed_with_uncertain.batches.update(status="uncertain")
    assert prune_old_records()["first_orion_pushes"] == 1  # the push, not its batches and recipients as well
    kept = {recent_sent.pk, old_uncertain.pk, failed_with_uncertain.pk}
    assert set(Push.objects.values_list("pk", flat=True)) == kept
    assert not PushBatch.objects.filter(push_id=old_sent.pk).exists()
    assert set(PushRecipient.objects.values_list("batch__push_id", flat=True)) == kept
